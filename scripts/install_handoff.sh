#!/usr/bin/env bash
# Creates (or updates) the handoff service environment in .venv-handoff with Python 3.11 or newer
# (current FastAPI, pydantic 2, redis-py; kept apart from Rasa's Python 3.10 pins), at the versions of
# requirements/handoff-lock.txt. Idempotent: does nothing when the environment already matches both files.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${HANDOFF_VENV:-.venv-handoff}
STAMP="$VENV/.installed"
REQUIREMENTS=requirements/handoff.txt
LOCK=requirements/handoff-lock.txt
IS_311_PLUS='import sys; sys.exit(sys.version_info[:2] < (3, 11))'

find_python311_plus() {
  local candidate path
  for candidate in "${PYTHON311:-}" python3 python3.11 python3.12 python3.13 \
      "$HOME"/.pyenv/versions/3.1[1-3]*/bin/python3 /usr/bin/python3.1[1-3] /usr/local/bin/python3.1[1-3]; do
    for path in $candidate; do
      if [ -n "$path" ] && command -v "$path" >/dev/null 2>&1 \
          && "$path" -c "$IS_311_PLUS" 2>/dev/null \
          && "$path" -c 'import venv, ensurepip' 2>/dev/null; then
        command -v "$path"
        return 0
      fi
    done
  done
  return 1
}

if ! PY=$(find_python311_plus); then
  cat >&2 <<'MSG'
error: the handoff service needs Python 3.11 or newer (with venv and ensurepip), and none was found.
Install one, then run this script again, for example:
  sudo apt install python3.11-venv  (Debian/Ubuntu)
  pyenv install 3.11                (with pyenv)
or point PYTHON311=/path/to/python3.11 at an existing interpreter.
MSG
  exit 1
fi

want=$(cat "$REQUIREMENTS" "$LOCK" | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
    && "$VENV/bin/python" -c "$IS_311_PLUS" 2>/dev/null; then
  echo "handoff environment $VENV is up to date ($("$VENV/bin/python" --version))"
  exit 0
fi

if [ -d "$VENV" ] && ! "$VENV/bin/python" -c "$IS_311_PLUS" 2>/dev/null; then
  echo "recreating $VENV (not a Python 3.11+ environment)"
  rm -rf "$VENV"
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
echo "installing the handoff environment into $VENV with $PY"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r "$REQUIREMENTS" -c "$LOCK"
"$VENV/bin/python" -c 'import fastapi, redis, pydantic; print("fastapi", fastapi.__version__, "redis-py", redis.__version__, "pydantic", pydantic.VERSION)'
echo "$want" > "$STAMP"
