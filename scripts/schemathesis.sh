#!/usr/bin/env bash
# Property-based checks of the API against its own OpenAPI description, with schemathesis:
# no 5xx, and every response matches the description (status, content type, body schema).
#
#   scripts/schemathesis.sh [MAX_EXAMPLES]     default 30 examples per operation
#
# Installs schemathesis from PyPI when missing. Uses the debug binary that `cargo test` builds
# (or builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-30}

command -v schemathesis >/dev/null || python3 -m pip install -q schemathesis
[ -x target/debug/tollgate ] || cargo build --quiet
binary="$PWD/target/debug/tollgate"
work=$(mktemp -d)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

export DATABASE_URL="sqlite://$work/tollgate.db" TOLLGATE_LOG=warn
export TOLLGATE_SIGNING_KEY="schemathesis-signing-key-0123456789abcdef0123456789abcdef0123"
export TOLLGATE_ARGON2_MEMORY_KIB=1024 TOLLGATE_ARGON2_ITERATIONS=1
export TOLLGATE_ROTATE_REFRESH_TOKENS=true TOLLGATE_BLACKLIST_AFTER_ROTATION=true
TOLLGATE_USER_PASSWORD=st-password "$binary" createuser --create --username st --no-input >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
"$binary" serve --bind "127.0.0.1:$port" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
access=$(curl -sf -X POST "$base/api/token/" -d username=st -d password=st-password \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])')

schemathesis run "$base/api/schema/" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples "$examples" --seed 1 --workers 1 \
  --header "Authorization: Bearer $access" \
  --suppress-health-check all
