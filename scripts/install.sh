#!/usr/bin/env bash
# Creates (or updates) the bot environment in .venv with Python 3.10. Idempotent: does nothing
# when the environment already matches requirements/.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
STAMP="$VENV/.installed"

find_python310() {
  local candidate
  for candidate in "${PYTHON310:-}" python3.10 \
      "$(command -v pyenv >/dev/null 2>&1 && echo "$(pyenv root)/versions/3.10*/bin/python3.10")" \
      "$HOME"/.pyenv/versions/3.10*/bin/python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10; do
    for path in $candidate; do
      if [ -n "$path" ] && command -v "$path" >/dev/null 2>&1 \
          && "$path" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
        command -v "$path"
        return 0
      fi
    done
  done
  return 1
}

if ! PY=$(find_python310); then
  cat >&2 <<'MSG'
error: Python 3.10 is required (Rasa 3.6.21 supports nothing newer) and was not found.
Install it, then run `make install` again, for example:
  pyenv install 3.10.13            (with pyenv)
  sudo apt install python3.10-venv (Debian/Ubuntu with the deadsnakes PPA)
or point PYTHON310=/path/to/python3.10 at an existing interpreter.
MSG
  exit 1
fi

want=$(cat requirements/bot.txt requirements/bot-lock.txt | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
    && "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then
  echo "bot environment $VENV is up to date ($("$VENV/bin/python" --version))"
else
  if [ -d "$VENV" ] && ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
    echo "recreating $VENV (not a Python 3.10 environment)"
    rm -rf "$VENV"
  fi
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  echo "installing the bot environment into $VENV with $PY (2-3 minutes the first time)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip wheel 'setuptools<71'
  "$VENV/bin/python" -m pip install --quiet -r requirements/bot.txt -c requirements/bot-lock.txt
  "$VENV/bin/python" -c 'import rasa, spacy, spacy_lookups_data, langdetect; print("rasa", rasa.__version__, "spacy", spacy.__version__)'
  echo "$want" > "$STAMP"
fi

if ! command -v redis-server >/dev/null 2>&1; then
  if ! "$VENV/bin/python" scripts/redis_check.py >/dev/null 2>&1; then
    cat >&2 <<'MSG'
warning: no Redis server is reachable at REDIS_URL and `redis-server` is not installed.
`make run` and `make test` start their own Redis when `redis-server` is on the PATH:
  sudo apt install redis-server    (Debian/Ubuntu)
  brew install redis               (macOS)
or set REDIS_URL=redis://host:port/db to a Redis you already run.
MSG
  fi
fi
