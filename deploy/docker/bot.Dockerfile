# syntax=docker/dockerfile:1
# The bot image: Rasa server AND action server (one Python 3.10 environment, as in .venv).
#
#   docker build -f deploy/docker/bot.Dockerfile -t helder-bot .                 # model trained in the build
#   docker build -f deploy/docker/bot.Dockerfile --target runtime -t helder-bot . # no model: mount one
#
# Default target `bot`: the `train` stage runs `rasa train` on the repo's config, domain and data,
# and the final image carries exactly that model at /app/models/helder.tar.gz, so every replica
# built from one image answers with the same model and nothing is trained at start-up.
# Target `runtime`: the same image without a model; mount a directory with a model trained
# elsewhere (`make train` → models/) at /app/models and set RASA_MODEL to the file.
#
# Commands (deploy/docker/bot-entrypoint.sh):
#   rasa      python -m bot.server run --model $RASA_MODEL --enable-api --jwt-secret $RASA_JWT_SECRET ...
#             (port 5005): `rasa run` with the assistant's changes to Rasa (bot/server.py)
#   actions   python -m rasa_sdk --actions actions (port 5055); seeds the demo backend first
#             when KLANTCONTACT_SEED_DEMO=1
#   anything else is executed as given (e.g. `python -m actions.backend.seed`).
#
# Metrics (actions/metrics.py, prometheus-client from requirements/bot.txt): the action server
# serves Prometheus metrics on a separate port only when ACTIONS_METRICS_PORT is set (9102 in
# docker-compose.yml and deploy/k8s/actions.yaml), bound to ACTIONS_METRICS_HOST (default
# 127.0.0.1, which no other container can reach: set 0.0.0.0 in a container network). The port is
# deliberately not EXPOSEd (`docker run -P` would publish it): it is internal, scraped only from
# inside the network (deploy/prometheus/). Rasa itself has no metrics port.

ARG PYTHON_IMAGE=python:3.10-slim-bookworm

# --- dependencies, in a virtualenv that the runtime stage copies (no compilers at run time) ---
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements/bot.txt requirements/bot-lock.txt /tmp/requirements/
# The same two steps as scripts/install.sh (exact versions from the lock file), for what comes before
# the "# tests" block of requirements/bot.txt only: no pytest, hypothesis, ruff or mypy in the image.
RUN sed -i '/^# tests/,$d' /tmp/requirements/bot.txt \
 && pip install --upgrade pip wheel 'setuptools<71' \
 && pip install -r /tmp/requirements/bot.txt -c /tmp/requirements/bot-lock.txt \
 && python -c 'import rasa, rasa_sdk, spacy, spacy_lookups_data, langdetect, prometheus_client; print("rasa", rasa.__version__)'

# --- the code, no model ---
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home app
COPY --from=deps /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    RASA_TELEMETRY_ENABLED=false \
    SQLALCHEMY_SILENCE_UBER_WARNING=1 \
    RASA_MODEL=/app/models/helder.tar.gz \
    KLANTCONTACT_DB_URL=sqlite:////app/var/helder.db
WORKDIR /app
COPY contract/ contract/
COPY bot/ bot/
COPY actions/ actions/
COPY domain/ domain/
COPY data/ data/
COPY config.yml endpoints.yml credentials.yml ./
COPY deploy/docker/bot-entrypoint.sh /usr/local/bin/bot-entrypoint
COPY deploy/docker/healthcheck.py /usr/local/bin/healthcheck.py
RUN chmod 0755 /usr/local/bin/bot-entrypoint \
 && mkdir -p /app/models /app/var /app/.rasa \
 && chown -R app:app /app/models /app/var /app/.rasa
USER app
EXPOSE 5005 5055
ENTRYPOINT ["bot-entrypoint"]
CMD ["rasa"]

# --- training (build time only) ---
FROM runtime AS train
RUN python -m rasa train --config config.yml --domain domain --data data \
      --out /app/models --fixed-model-name helder \
 && test -s /app/models/helder.tar.gz

# --- default: the runtime with the model trained above ---
FROM runtime AS bot
COPY --from=train --chown=app:app /app/models/helder.tar.gz /app/models/helder.tar.gz
