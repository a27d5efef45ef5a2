#!/usr/bin/env bash
# The refresh cookie and sessions in a real browser (e2e/cookie-flow.mjs): headless Chromium logs
# in on a small page, calls a protected endpoint, reloads and refreshes from the cookie, logs out,
# then logs in from two browsers, lists the sessions and logs out everywhere. Then password reset
# by mail (e2e/reset-flow.mjs): the browser asks for a link on a reset page, the mail is read
# from the Maildir of a real SMTP server (aiosmtpd), the browser opens the link, sets a new
# password and logs in with it; `tollgate events` lists the reset. Then passkeys
# (e2e/passkey-flow.mjs): with a virtual authenticator, a passkey is registered, signs in alone,
# and answers a password login's second step. Last, the web console (e2e/admin-flow.mjs): an
# ordinary user is refused; a staff member signs in, finds a user, revokes a session and
# deactivates them (the API refuses their tokens), reads the audit log, creates an account; a
# staff member signs in with a passkey as the second factor; no page raises a CSP violation,
# and the pages are photographed into docs/images/.
#
#   scripts/browser-test.sh
#
# Installs what is missing: Debian's chromium (apt-get), playwright-core (npm, in e2e/; it
# downloads no browser) and aiosmtpd (pip). Uses the debug binary that `cargo test` builds (or builds it).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
fi
[ -d e2e/node_modules/playwright-core ] || (cd e2e && npm install --no-audit --no-fund --silent)
python3 -c 'import aiosmtpd' 2>/dev/null || python3 -m pip install -q --no-cache-dir aiosmtpd
[ -x target/debug/tollgate ] || cargo build --quiet -p tollgate
binary="$PWD/target/debug/tollgate"
work=$(mktemp -d)
server_pid="" smtp_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  [ -n "$smtp_pid" ] && kill "$smtp_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The SMTP server Tollgate sends through; it stores every message in a Maildir.
export E2E_MAILDIR="$work/maildir"
smtp_port=$(free_port)
python3 -m aiosmtpd -n -l "127.0.0.1:$smtp_port" -c aiosmtpd.handlers.Mailbox "$E2E_MAILDIR" \
  >"$work/smtp.log" 2>&1 &
smtp_pid=$!
# The pages' port, known before Tollgate starts: the reset link names it.
E2E_PAGE_PORT=$(free_port)
export E2E_PAGE_PORT

export DATABASE_URL="sqlite://$work/tollgate.db" TOLLGATE_LOG=warn
export TOLLGATE_SIGNING_KEY="browser-test-signing-key-0123456789abcdef0123456789abcdef0123"
export TOLLGATE_ARGON2_MEMORY_KIB=1024 TOLLGATE_ARGON2_ITERATIONS=1
export TOLLGATE_REFRESH_COOKIE=true
export TOLLGATE_ROTATE_REFRESH_TOKENS=true TOLLGATE_BLACKLIST_AFTER_ROTATION=true
export TOLLGATE_SMTP_URL="smtp://127.0.0.1:$smtp_port"
export TOLLGATE_PASSWORD_RESET_URL="http://127.0.0.1:$E2E_PAGE_PORT/password/reset/confirm/{uid}/{token}"
# Tollgate's port, known before it starts: passkeys name the console's origin.
port=$(free_port)
# Passkeys need a domain: the passkey page and the console are served at localhost.
export TOLLGATE_PASSKEY_RP_ID=localhost
export TOLLGATE_PASSKEY_ORIGINS="http://localhost:$E2E_PAGE_PORT,http://localhost:$port"
export TOLLGATE_PASSKEY_LOGIN=true
export E2E_USERNAME=e2e E2E_PASSWORD=e2e-password E2E_EMAIL=e2e@example.com
TOLLGATE_USER_PASSWORD="$E2E_PASSWORD" "$binary" createuser --create --username "$E2E_USERNAME" \
  --email "$E2E_EMAIL" --no-input >/dev/null
export E2E_PASSKEY_USERNAME=passkey-user
TOLLGATE_USER_PASSWORD="$E2E_PASSWORD" "$binary" createuser --username "$E2E_PASSKEY_USERNAME" \
  --email passkey@example.com --no-input >/dev/null
# The console's accounts: a staff member, and the ordinary user they act on.
export E2E_CONSOLE_STAFF=console-staff E2E_CONSOLE_TARGET=console-target
TOLLGATE_USER_PASSWORD="$E2E_PASSWORD" "$binary" createuser --username "$E2E_CONSOLE_STAFF" \
  --email staff@example.com --staff --no-input >/dev/null
TOLLGATE_USER_PASSWORD="$E2E_PASSWORD" "$binary" createuser --username "$E2E_CONSOLE_TARGET" \
  --email target@example.com --first-name Casey --last-name Morgan --no-input >/dev/null
# A staff member whose second factor will be a passkey.
export E2E_CONSOLE_PASSKEY_STAFF=console-passkey
TOLLGATE_USER_PASSWORD="$E2E_PASSWORD" "$binary" createuser --username "$E2E_CONSOLE_PASSKEY_STAFF" \
  --email passkey-staff@example.com --staff --no-input >/dev/null
export E2E_TOLLGATE_URL="http://127.0.0.1:$port"
"$binary" serve --bind "127.0.0.1:$port" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 100); do curl -sf "$E2E_TOLLGATE_URL/healthz" >/dev/null && break; sleep 0.1; done
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$smtp_port") 2>/dev/null && break; sleep 0.1; done

failed() {
  echo "--- tollgate log" >&2
  cat "$work/server.log" >&2
  echo "--- smtp log" >&2
  cat "$work/smtp.log" >&2
  exit 1
}
timeout 120 node e2e/cookie-flow.mjs || failed
timeout 120 node e2e/reset-flow.mjs || failed
timeout 120 node e2e/passkey-flow.mjs || failed
timeout 120 node e2e/admin-flow.mjs || failed

# The reset is in the user's login history.
events=$("$binary" events --user "$E2E_USERNAME")
if ! grep -q ' password_reset ' <<<"$events"; then
  echo "tollgate events lists no password_reset:" >&2
  echo "$events" >&2
  exit 1
fi
echo "tollgate events lists the reset"
