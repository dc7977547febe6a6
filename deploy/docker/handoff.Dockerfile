# syntax=docker/dockerfile:1
# The handoff service and agent console (FastAPI, Python 3.11; its own environment, as in
# .venv-handoff): `python -m handoff` on HANDOFF_HOST:HANDOFF_PORT (0.0.0.0:8000 here).
#
#   docker build -f deploy/docker/handoff.Dockerfile -t helder-handoff .
#
# Several instances may run side by side: they share Redis (state, sessions) and read the event
# stream as one consumer group; pushes to consoles go over Redis pub/sub.
#
# The insights page (GET /insights) draws its charts with Chart.js, which the service itself serves
# at /vendor/chart.umd.min.js (no CDN): the `chartjs` stage installs it from the npm registry exactly
# as web/package-lock.json says, and only its dist file (and licence) goes into the image, at the
# path the service looks for by default (web/node_modules/chart.js/dist/chart.umd.min.js next to
# handoff/, as after scripts/install_web.sh locally), so HANDOFF_CHARTJS_PATH need not be set.
#
# Prometheus metrics at GET /metrics on the same port, for a scraper with
# `Authorization: Bearer $HANDOFF_METRICS_TOKEN` (unset: nobody can scrape; deploy/prometheus/).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Chart.js from the npm registry (the same lock file as the demo shop's socket.io-client).
FROM node:20-bookworm-slim AS chartjs
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && test -s node_modules/chart.js/dist/chart.umd.min.js

FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements/handoff.txt requirements/handoff-lock.txt /tmp/requirements/
# Everything above the "# tests" block of requirements/handoff.txt: the service's own pins, without
# pytest, schemathesis, playwright, ruff and mypy (if the marker goes, everything is installed);
# their dependencies at the versions of the lock file, as scripts/install_handoff.sh installs them.
RUN sed '/^# tests/,$d' /tmp/requirements/handoff.txt > /tmp/requirements/runtime.txt \
 && pip install --upgrade pip \
 && pip install -r /tmp/requirements/runtime.txt -c /tmp/requirements/handoff-lock.txt \
 && python -c 'import fastapi, redis, pydantic, uvicorn, prometheus_client; print("fastapi", fastapi.__version__)'

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home app
COPY --from=deps /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    HANDOFF_HOST=0.0.0.0 \
    HANDOFF_PORT=8000
WORKDIR /app
COPY handoff/ handoff/
# What the service shares with the assistant (standard library only): the context packet, the
# escalation reasons, slot and channel names, Redis keys, retention, the WhatsApp window, the
# date wording and the log masking. Nothing of bot/ or actions/.
COPY contract/ contract/
# Chart.js for the insights page: the one file the service serves, plus its MIT licence.
COPY --from=chartjs /web/node_modules/chart.js/dist/chart.umd.min.js web/node_modules/chart.js/dist/chart.umd.min.js
COPY --from=chartjs /web/node_modules/chart.js/LICENSE.md web/node_modules/chart.js/LICENSE.md
COPY deploy/docker/healthcheck.py /usr/local/bin/healthcheck.py
USER app
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "/usr/local/bin/healthcheck.py", "http://127.0.0.1:8000/health"]
CMD ["python", "-m", "handoff"]
