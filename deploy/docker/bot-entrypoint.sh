#!/bin/sh
# Entrypoint of the bot image (deploy/docker/bot.Dockerfile): `rasa`, `actions`, or any command.
# The environment is the one scripts/stack.py gives the local processes: REDIS_HOST, REDIS_PORT,
# REDIS_DB, REDIS_PASSWORD and ACTION_ENDPOINT_URL (endpoints.yml), WHATSAPP_* (credentials.yml),
# RASA_JWT_SECRET (Rasa's HTTP API); HANDOFF_URL, HANDOFF_API_TOKEN, SHOP_TOKEN_SECRET (actions).
# Optional for actions: ACTIONS_METRICS_PORT and ACTIONS_METRICS_HOST (Prometheus metrics, actions/metrics.py).
set -eu

command=${1:-rasa}
[ "$#" -gt 0 ] && shift

case "$command" in
  rasa)
    : "${RASA_JWT_SECRET:?RASA_JWT_SECRET must be set (the HTTP API would be open otherwise)}"
    if [ ! -s "$RASA_MODEL" ] && [ ! -d "$RASA_MODEL" ]; then
      echo "bot-entrypoint: no model at RASA_MODEL=$RASA_MODEL (build the default target, or mount one)" >&2
      exit 2
    fi
    # --cors as in scripts/stack.py: the widget on the shop's origin posts to the REST webhook and
    # socket.io; Rasa's HTTP API is JWT-protected and not routed by the customer-facing proxy.
    # bot.server is `rasa run` with the assistant's changes to Rasa (bot/server.py); it refuses
    # to start on a Rasa release they are not written for.
    exec python -m bot.server run --model "$RASA_MODEL" --port "${RASA_PORT:-5005}" \
      --enable-api --jwt-secret "$RASA_JWT_SECRET" --jwt-method HS256 \
      --credentials credentials.yml --endpoints endpoints.yml --cors "${RASA_CORS:-*}" "$@"
    ;;
  actions)
    # Demo data only when asked: against a real KLANTCONTACT_DB_URL nothing is seeded.
    if [ "${KLANTCONTACT_SEED_DEMO:-0}" = "1" ]; then
      python -m actions.backend.seed --if-empty
    fi
    exec python -m rasa_sdk --actions actions --port "${ACTIONS_PORT:-5055}" "$@"
    ;;
  *)
    exec "$command" "$@"
    ;;
esac
