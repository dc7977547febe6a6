# Helder klantcontact: a bilingual (nl/en) customer-support assistant on Rasa 3.6.
# `make help` lists the targets.

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
HPY := .venv-handoff/bin/python
RASA := PYTHONPATH=$(CURDIR) TF_CPP_MIN_LOG_LEVEL=2 RASA_TELEMETRY_ENABLED=false SQLALCHEMY_SILENCE_UBER_WARNING=1 $(PY) -m rasa
BENCH := PYTHONPATH=$(CURDIR) TF_CPP_MIN_LOG_LEVEL=2 RASA_TELEMETRY_ENABLED=false SQLALCHEMY_SILENCE_UBER_WARNING=1 $(PY)
PYTEST := PYTHONPATH=$(CURDIR) TF_CPP_MIN_LOG_LEVEL=2 RASA_TELEMETRY_ENABLED=false SQLALCHEMY_SILENCE_UBER_WARNING=1 $(PY) -m pytest
# What mypy checks in each environment: the scripts that import handoff/ run in .venv-handoff.
HANDOFF_SCRIPTS := scripts/insights.py scripts/bench_consumer.py
MYPY_BOT := bot actions contract $(filter-out $(HANDOFF_SCRIPTS),$(wildcard scripts/*.py))
MYPY_HANDOFF := handoff contract tests/fakes $(HANDOFF_SCRIPTS)

.DEFAULT_GOAL := help
.PHONY: help install train run shell seed validate bench erase insights retention lint test test-unit test-handoff test-browser test-nlu test-stories test-e2e chaos clean

help: ## List the targets with a one-line description
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## Create the bot (Python 3.10) and handoff (3.11+) environments, chromium for tests; idempotent
	@scripts/install.sh
	@scripts/install_handoff.sh
	@scripts/install_web.sh
	@scripts/install_browser.sh

$(PY):
	@echo "The bot environment is missing: run 'make install' first." >&2; exit 1

train: $(PY) ## Train a model unless one matches the current data and config
	@$(PY) scripts/model.py

run: $(PY) ## Train if needed; start Redis (if none), handoff service + console, actions, Rasa; Ctrl-C stops all
	@$(PY) scripts/stack.py

shell: $(PY) ## Chat in the terminal (uses the running stack, or starts one)
	@$(PY) scripts/chat.py

seed: $(PY) ## Create or refresh the demo backend data (SQLite in var/, or KLANTCONTACT_DB_URL)
	@PYTHONPATH=$(CURDIR) $(PY) -m actions.backend.seed

validate: $(PY) ## Check domain, data and config for inconsistencies
	@$(RASA) data validate --domain domain --data data --config config.yml 2>&1 \
	  | grep -v "is not used in any story or rule" ; exit $${PIPESTATUS[0]}

lint: $(PY) ## ruff over the tree; mypy on each environment's packages (settings in pyproject.toml)
	@$(PY) -m ruff check --quiet .
	@$(PY) -m mypy $(MYPY_BOT)
	@$(HPY) -m mypy $(MYPY_HANDOFF)

test: $(PY) ## The whole suite: lint, validation, unit, handoff API, browser, NLU hold-out, stories, end to end, faults
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory validate
	@$(MAKE) --no-print-directory test-unit
	@$(MAKE) --no-print-directory test-handoff
	@$(MAKE) --no-print-directory test-browser
	@$(MAKE) --no-print-directory train
	@$(MAKE) --no-print-directory test-nlu
	@$(MAKE) --no-print-directory test-stories
	@$(MAKE) --no-print-directory test-e2e
	@$(MAKE) --no-print-directory chaos

test-unit: $(PY) ## Unit tests: language, tokenizer, actions, domain, WhatsApp channel; the backend on SQLite and PostgreSQL
	@$(PYTEST) tests/unit tests/backend tests/channels -q

test-nlu: $(PY) ## Intent F1 per language on the held-out sets (fails below 0.90)
	@$(PY) scripts/nlu_report.py --min-f1 0.90

test-stories: $(PY) ## Test stories per language with --fail-on-prediction-errors
	@mkdir -p results; for lang in nl en; do \
	  echo "test stories ($$lang)"; \
	  $(RASA) test core --model $$($(PY) scripts/model.py) --stories tests/test_stories_$$lang.yml \
	    --out results/stories_$$lang --fail-on-prediction-errors --no-plot > results/stories_$$lang.log 2>&1 \
	    || { tail -40 results/stories_$$lang.log; exit 1; }; \
	  grep -h "Correct:\|Accuracy" results/stories_$$lang.log | head -4; \
	done

test-handoff: ## Handoff service API tests (real Redis; Rasa faked at its HTTP edge)
	@PYTHONPATH=$(CURDIR) $(HPY) -m pytest tests/handoff -q

test-browser: ## The agent console in headless Chromium (Playwright)
	@PYTHONPATH=$(CURDIR) $(HPY) -m pytest tests/browser -q

test-e2e: $(PY) ## End-to-end conversations against real Rasa, actions, handoff service and Redis
	@$(PYTEST) tests/e2e -q

chaos: $(PY) ## Fault injection against the real stack: Redis restarts, Rasa killed, two replicas, services down
	@$(PYTEST) tests/chaos -q

bench: $(PY) ## All benchmarks next to same-run baselines (about 25 min); writes docs/benchmarks.md
	@$(PY) scripts/model.py > /dev/null
	@$(BENCH) scripts/bench_turns.py
	@$(BENCH) scripts/bench_handoff.py
	@$(BENCH) scripts/bench_profile.py
	@$(BENCH) scripts/bench_understanding.py
	@$(BENCH) scripts/bench_report.py

erase: $(PY) ## Erase one customer everywhere (AVG/GDPR): make erase CUSTOMER=48213377 [PHONE=+31612345678]
	@test -n "$(CUSTOMER)" || { echo "usage: make erase CUSTOMER=<customer number> [PHONE=<phone number>]" >&2; exit 2; }
	@PYTHONPATH=$(CURDIR) $(PY) -m scripts.erase_customer --customer "$(CUSTOMER)" $(if $(PHONE),--phone "$(PHONE)")

insights: ## What customers contact us about, outcomes, repeats, waits, promises: make insights [PERIOD=30d] [CSV=file.csv] [LANGUAGE=nl] [CHANNEL=whatsapp]
	@PYTHONPATH=$(CURDIR) $(HPY) -m scripts.insights --period "$(or $(PERIOD),7d)" $(if $(CSV),--csv "$(CSV)") \
	  $(if $(filter command line,$(origin LANGUAGE)),--language "$(LANGUAGE)") $(if $(CHANNEL),--channel "$(CHANNEL)")

retention: ## Delete transcripts and closed cases older than RETENTION_DAYS now (the service also does it hourly)
	@PYTHONPATH=$(CURDIR) $(HPY) -m handoff.erasure sweep

clean: ## Remove models, results and local state (var/)
	rm -rf models results var
