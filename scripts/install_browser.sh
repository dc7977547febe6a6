#!/usr/bin/env bash
# Chromium for the browser tests of the agent console (Playwright drives Debian's chromium;
# Playwright's own browser download does not work on these machines).
set -euo pipefail
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  echo "chromium: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
  "$CHROMIUM" --version
else
  cat >&2 <<'MSG'
warning: chromium is not installed, so the browser tests of the agent console cannot run.
Install it (Debian/Ubuntu: sudo apt install chromium) or set CHROMIUM=/path/to/chromium.
MSG
fi
