#!/usr/bin/env bash
# The guides of docs/protecting-services.md, run as written: starts `tollgate serve` with an
# ES256 key pair, logs in, extracts each service from the guide, starts it, and checks that it
# accepts the access token and refuses a tampered token, a refresh token and no token.
#
#   scripts/guides.sh
#
# Installs what is missing (PyJWT with its crypto extra, FastAPI and uvicorn, Django, Django REST
# framework and simplejwt, jose) into a temporary directory, with
# no package cache, removed at the end. Uses the debug binary that `cargo test` builds (or
# builds it).
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x target/debug/tollgate ] || cargo build --quiet -p tollgate
binary="$PWD/target/debug/tollgate"
guide="$PWD/docs/protecting-services.md"
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for() {
  for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "nothing answers at $1" >&2
  return 1
}

# Each code block that follows a `<!-- guide: PATH -->` line, written to $work/PATH.
python3 - "$guide" "$work" <<'PY'
import pathlib, re, sys
text = pathlib.Path(sys.argv[1]).read_text()
blocks = re.findall(r"<!-- guide: (\S+) -->\n```\w*\n(.*?)```", text, re.S)
assert blocks, "no guide code found"
for path, code in blocks:
    target = pathlib.Path(sys.argv[2]) / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(code)
PY

# Tollgate, signing with ES256.
export DATABASE_URL="sqlite://$work/tollgate.db" TOLLGATE_LOG=warn
export TOLLGATE_ARGON2_MEMORY_KIB=1024 TOLLGATE_ARGON2_ITERATIONS=1
"$binary" keygen --alg ES256 --out "$work/keys" 2>/dev/null
export TOLLGATE_ALGORITHM=ES256
export TOLLGATE_SIGNING_KEY_FILE="$work/keys/signing_key.pem"
export TOLLGATE_VERIFYING_KEY_FILE="$work/keys/verifying_key.pem"
TOLLGATE_USER_PASSWORD=guide-password "$binary" createuser --create --username guide --no-input \
  >/dev/null 2>&1
port=$(free_port)
export TOLLGATE_URL="http://127.0.0.1:$port"
"$binary" serve --bind "127.0.0.1:$port" 2>"$work/tollgate.log" &
pids+=($!)
wait_for "$TOLLGATE_URL/readyz"

tokens=$(curl -sf -X POST "$TOLLGATE_URL/api/token/" -d username=guide -d password=guide-password)
access=$(echo "$tokens" | jq -r .access)
refresh=$(echo "$tokens" | jq -r .refresh)
user_id=$(curl -sf "$TOLLGATE_URL/api/index/" -H "Authorization: Bearer $access" | jq -r .id)
# The same signature over a payload naming another user.
tampered=$(python3 - "$access" <<'PY'
import base64, json, sys
header, payload, signature = sys.argv[1].split(".")
claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
claims["user_id"] = str(int(claims["user_id"]) + 1)
forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
print(f"{header}.{forged}.{signature}")
PY
)

# Checks the service at $1 (named $2): the access token lets in its user; the tampered token,
# the refresh token and no token get 401.
check_service() {
  local url=$1 name=$2 answer status
  answer=$(curl -s "$url/hello" -H "Authorization: Bearer $access")
  if [ "$(echo "$answer" | jq -r .user_id)" != "$user_id" ]; then
    echo "$name: the access token was not accepted: $answer" >&2
    return 1
  fi
  for token in "$tampered" "$refresh" ""; do
    status=$(curl -s -o /dev/null -w '%{http_code}' "$url/hello" -H "Authorization: Bearer $token")
    if [ "$status" != 401 ]; then
      echo "$name: a token that must be refused got $status" >&2
      return 1
    fi
  done
  echo "$name: accepts the access token, refuses tampered, refresh and missing tokens"
}

# Python.
if ! python3 -c 'import jwt, cryptography' 2>/dev/null; then
  pip install --quiet --no-cache-dir --disable-pip-version-check --root-user-action=ignore --target "$work/python-packages" \
    'pyjwt[crypto]>=2.8,<3'
  export PYTHONPATH="$work/python-packages"
fi
port=$(free_port)
PORT=$port python3 "$work/python/service.py" 2>"$work/python.log" &
pids+=($!)
wait_for "http://127.0.0.1:$port/hello"
check_service "http://127.0.0.1:$port" "Python (PyJWT)" || { cat "$work/python.log" >&2; exit 1; }

# FastAPI, with the same PyJWT check as a dependency.
if ! python3 -c 'import fastapi, uvicorn, jwt, cryptography' 2>/dev/null; then
  pip install --quiet --no-cache-dir --disable-pip-version-check --root-user-action=ignore \
    --target "$work/fastapi-packages" 'fastapi>=0.100' 'uvicorn>=0.23' 'pyjwt[crypto]>=2.8,<3'
fi
port=$(free_port)
PYTHONPATH="$work/fastapi-packages${PYTHONPATH:+:$PYTHONPATH}" PORT=$port \
  python3 "$work/python/fastapi_service.py" 2>"$work/fastapi.log" &
pids+=($!)
wait_for "http://127.0.0.1:$port/hello"
check_service "http://127.0.0.1:$port" "FastAPI (PyJWT)" || { cat "$work/fastapi.log" >&2; exit 1; }

# Django REST framework, with simplejwt verifying through the key set.
if ! python3 -c 'import django, rest_framework, rest_framework_simplejwt, jwt, cryptography' 2>/dev/null; then
  pip install --quiet --no-cache-dir --disable-pip-version-check --root-user-action=ignore \
    --target "$work/django-packages" 'Django>=4.2,<6' 'djangorestframework>=3.14' \
    'djangorestframework-simplejwt[crypto]>=5.3' 'pyjwt[crypto]>=2.8,<3'
fi
port=$(free_port)
PYTHONPATH="$work/django-packages${PYTHONPATH:+:$PYTHONPATH}" PORT=$port \
  python3 "$work/python/django_service.py" 2>"$work/django.log" &
pids+=($!)
wait_for "http://127.0.0.1:$port/hello"
check_service "http://127.0.0.1:$port" "Django REST framework (simplejwt)" \
  || { cat "$work/django.log" >&2; exit 1; }

# Node.
(cd "$work/node" && echo '{"private": true, "type": "module"}' >package.json \
  && npm install --silent --no-audit --no-fund --cache "$work/npm-cache" 'jose@^6' >/dev/null)
port=$(free_port)
PORT=$port node "$work/node/service.mjs" 2>"$work/node.log" &
pids+=($!)
wait_for "http://127.0.0.1:$port/hello"
check_service "http://127.0.0.1:$port" "Node (jose)" || { cat "$work/node.log" >&2; exit 1; }
