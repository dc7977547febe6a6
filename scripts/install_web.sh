#!/usr/bin/env bash
# The chat widget's JavaScript dependency (socket.io-client v4) from the npm registry into
# web/node_modules, exactly as web/package-lock.json pins it (npm ci). No CDN: web/server.py serves
# it at /widget/vendor/socket.io.min.js. Idempotent: does nothing when node_modules already
# matches the lock file.
set -euo pipefail
cd "$(dirname "$0")/../web"
VENDOR=node_modules/socket.io-client/dist/socket.io.min.js
STAMP=node_modules/.helder-lock.sha256
if ! command -v npm >/dev/null 2>&1; then
  cat >&2 <<'MSG'
error: npm is not installed, so the chat widget's socket.io client cannot be installed.
Install Node.js 18+ with npm (Debian/Ubuntu: sudo apt install nodejs npm), then run scripts/install_web.sh.
MSG
  exit 1
fi
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$VENDOR" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "web: socket.io-client $(node -p 'require("./node_modules/socket.io-client/package.json").version' 2>/dev/null || echo '?') (up to date)"
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
[ -f "$VENDOR" ] || { echo "error: npm ci did not install $VENDOR" >&2; exit 1; }
echo "$want" > "$STAMP"
echo "web: socket.io-client $(node -p 'require("./node_modules/socket.io-client/package.json").version') installed"
