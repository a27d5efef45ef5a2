#!/usr/bin/env bash
# The refresh cookie and sessions in a real browser (e2e/cookie-flow.mjs): headless Chromium logs
# in on a small page, calls a protected endpoint, reloads and refreshes from the cookie, logs out,
# then logs in from two browsers, lists the sessions and logs out everywhere.
#
#   scripts/browser-test.sh
#
# Installs what is missing: Debian's chromium (apt-get) and playwright-core (npm, in e2e/; it
# downloads no browser). Uses the debug binary that `cargo test` builds (or builds it).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
fi
[ -d e2e/node_modules/playwright-core ] || (cd e2e && npm install --no-audit --no-fund --silent)
[ -x target/debug/tollgate ] || cargo build --quiet -p tollgate
binary="$PWD/target/debug/tollgate"
work=$(mktemp -d)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

export DATABASE_URL="sqlite://$work/tollgate.db" TOLLGATE_LOG=warn
export TOLLGATE_SIGNING_KEY="browser-test-signing-key-0123456789abcdef0123456789abcdef0123"
export TOLLGATE_ARGON2_MEMORY_KIB=1024 TOLLGATE_ARGON2_ITERATIONS=1
export TOLLGATE_REFRESH_COOKIE=true
export TOLLGATE_ROTATE_REFRESH_TOKENS=true TOLLGATE_BLACKLIST_AFTER_ROTATION=true
export E2E_USERNAME=e2e E2E_PASSWORD=e2e-password
TOLLGATE_USER_PASSWORD="$E2E_PASSWORD" "$binary" createuser --create --username "$E2E_USERNAME" --no-input >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export E2E_TOLLGATE_URL="http://127.0.0.1:$port"
"$binary" serve --bind "127.0.0.1:$port" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 100); do curl -sf "$E2E_TOLLGATE_URL/healthz" >/dev/null && break; sleep 0.1; done

if ! timeout 120 node e2e/cookie-flow.mjs; then
  echo "--- tollgate log" >&2
  cat "$work/server.log" >&2
  exit 1
fi
