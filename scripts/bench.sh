#!/usr/bin/env bash
# Load benchmark of a release build of Tollgate on loopback, with wrk.
#
#   scripts/bench.sh              full run: the request-checking scenarios (healthz, the protected
#                                 GETs, verify) in five alternating rounds of 3 s, then refresh,
#                                 login and the login flood for 10 s each; replaces its own
#                                 section of BENCHMARKS.md and writes target/bench-sqlite.md
#   scripts/bench.sh --smoke      1 s per scenario, one round, checks that every scenario works,
#                                 writes nothing
#   scripts/bench.sh --postgres   the same on PostgreSQL (TOLLGATE_BENCH_POSTGRES_URL, default the
#                                 local server) with the Redis denylist (TOLLGATE_BENCH_REDIS_URL,
#                                 default the local Redis) instead of the embedded SQLite
#   scripts/bench.sh --large      the protected GET, verify, refresh, login and logout on a large
#                                 database (scripts/bench-large-data.sh: a million users, ten
#                                 million tokens; TOLLGATE_BENCH_LARGE_SCALE divides the counts)
#                                 beside the same on the small one, in one run, as ratios; or on
#                                 a copy of the prepared database TOLLGATE_BENCH_LARGE_DATABASE
#                                 (a SQLite file, or with --postgres a database name or URL on the
#                                 same server, used as a template). With --smoke, 1,000 users.
#
# Needs wrk (Debian: apt-get install wrk). The load generator shares the machine with the
# server, as in the reference measurements of Django + simplejwt (wrk -t2 -c32 -d5s).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10s; round_duration=3s; rounds=5; smoke=0; backend=sqlite; large=0
for arg in "$@"; do
  case "$arg" in
    --smoke) duration=1s; round_duration=1s; rounds=1; smoke=1 ;;
    --postgres) backend=postgres ;;
    --large) large=1 ;;
    *) echo "usage: scripts/bench.sh [--smoke] [--postgres] [--large]" >&2; exit 2 ;;
  esac
done
threads=2; connections=32
# The smoke mode checks that every scenario works, not how fast: with fewer connections its
# one-second runs depend less on what else the machine is doing.
[ "$smoke" = 1 ] && connections=8
# Read here and taken out of the environment, where the commands would warn about them.
large_scale=${TOLLGATE_BENCH_LARGE_SCALE:-1}; large_prepared=${TOLLGATE_BENCH_LARGE_DATABASE:-}
unset TOLLGATE_BENCH_LARGE_SCALE TOLLGATE_BENCH_LARGE_DATABASE
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }

cargo build --release --quiet
binary="$PWD/target/release/tollgate"
work=$(mktemp -d)
server_pids=()
pg_dbs=()
cleanup() {
  local pid db
  for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  for db in "${pg_dbs[@]}"; do
    psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
  if [ -n "${redis_url:-}" ]; then
    redis-cli -u "$redis_url" --scan --pattern "$TOLLGATE_REDIS_KEY_PREFIX*" \
      | xargs -r redis-cli -u "$redis_url" DEL >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

export TOLLGATE_SIGNING_KEY="bench-signing-key-0123456789abcdef0123456789abcdef0123456789abcdef"
export TOLLGATE_ROTATE_REFRESH_TOKENS=true TOLLGATE_BLACKLIST_AFTER_ROTATION=true TOLLGATE_LOG=warn
# The refresh scenario registers its users through the API from one address, more than
# REGISTRATIONS_PER_ADDRESS allows an hour; no scenario measures registration.
export TOLLGATE_REGISTRATIONS_PER_ADDRESS=0
if [ "$backend" = postgres ]; then
  pg_admin="${TOLLGATE_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  pg_db="tollgate_bench_$$"
  psql "$pg_admin" -qc "CREATE DATABASE $pg_db" >/dev/null
  pg_dbs+=("$pg_db")
  export DATABASE_URL="${pg_admin%/*}/$pg_db"
  redis_url="${TOLLGATE_BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}"
  command -v redis-cli >/dev/null || { echo "redis-cli is required for --postgres" >&2; exit 1; }
  redis-cli -u "$redis_url" ping >/dev/null || { echo "Redis at $redis_url does not answer" >&2; exit 1; }
  export TOLLGATE_REDIS_URL="$redis_url" TOLLGATE_REDIS_KEY_PREFIX="tollgate_bench_$$:"
else
  export DATABASE_URL="sqlite://$work/tollgate.db"
fi

TOLLGATE_USER_PASSWORD=bench-password "$binary" createuser --create --username bench --no-input >/dev/null
start_server() { # base URL variable, then extra environment for the server as NAME=value words
  local var=$1 port; shift
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  printf -v "$var" 'http://127.0.0.1:%s' "$port"
  env "$@" "$binary" serve --bind "127.0.0.1:$port" 2>>"$work/server.log" &
  server_pids+=($!)
  for _ in $(seq 1 100); do curl -sf "${!var}/healthz" >/dev/null && break; sleep 0.1; done
  curl -sf "${!var}/healthz" >/dev/null || { echo "the server did not start; $work/server.log:" >&2; cat "$work/server.log" >&2; exit 1; }
}
results="$work/results.md"
printf '| scenario | requests/s | p50 | p99 | errors |\n|---|---:|---:|---:|---:|\n' >"$results"
# One table row per scenario, and its requests/s by round: the ratios to healthz are taken
# round by round (each beside the healthz run just before it), then their median is reported,
# so that the machine's drift over a run does not decide them.
declare -A rps row p99_ms
scenarios=()
thousands() { awk '{ n = sprintf("%.0f", $1); while (n ~ /[0-9]{4}/) sub(/[0-9]{3}($|,)/, ",&", n); print n }' <<<"$1"; }
in_ms() { # wrk's latency (812.00us, 2.59ms, 1.02s) in milliseconds
  awk '{ v = $1 + 0; if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /[0-9]s$/) v *= 1000; printf "%.2f ms", v }' <<<"$1"
}
measure() { # name, round, then wrk arguments after the common ones
  local name=$1 round=$2; shift 2
  local out
  out=$(BENCH_THREADS=$threads wrk -t"$threads" -c"$connections" -d"$run_duration" --latency "$@")
  local r p50 p99 non2xx sockerr
  r=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
  sockerr=$(awk '/Socket errors:/ {s=0; for (i=3;i<=NF;i+=2) s+=$(i+1); print s}' <<<"$out" | tr -d ',')
  [ -n "${rps[$name]:-}" ] || scenarios+=("$name")
  rps[$name]="${rps[$name]:-} $r"
  local errors=$(( ${non2xx:-0} + ${sockerr:-0} ))
  [ "$name" = "protected GET, invalid token" ] && errors="401s by design"
  row[$name#$round]="$(thousands "$r") | $(in_ms "$p50") | $(in_ms "$p99") | $errors"
  p99_ms[$name#$round]=$(in_ms "$p99" | cut -d' ' -f1)
  echo "$name (round $round): $r req/s, p50 $p50, p99 $p99, non-2xx ${non2xx:-0}, socket errors ${sockerr:-0}" >&2
  if [ "$name" != "protected GET, invalid token" ] && [ "${non2xx:-0}" != 0 ]; then
    echo "scenario '$name' had non-2xx responses; the servers' log ends with:" >&2
    tail -n 20 "$work/server.log" >&2
    return 1
  fi
}
run() { run_duration=$duration measure "$1" 1 "${@:2}"; }
median_round() { # name: the round whose requests/s is the median of the scenario's rounds
  tr ' ' '\n' <<<"${rps[$1]}" | awk 'NF {n++; print n, $1}' | sort -k2 -g | awk '{r[NR]=$1} END {print r[int((NR+1)/2)]}'
}
table() {
  local name
  for name in "${scenarios[@]}"; do
    printf '| %s | %s |\n' "$name" "${row[$name#$(median_round "$name")]}" >>"$results"
  done
}

# BENCHMARKS.md's section between the markers of `key`, replaced whole by the file `section`.
replace_section() { # key, section file
  python3 - BENCHMARKS.md "$1" "$2" <<'PY'
import sys
path, key, section = sys.argv[1], sys.argv[2], open(sys.argv[3]).read()
begin, end = f"<!-- scripts/bench.sh {key}: begin -->\n", f"<!-- scripts/bench.sh {key}: end -->"
text = open(path).read()
if begin not in text or end not in text:
    sys.exit(f"{path} has no {begin.strip()} ... {end} markers")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(head + begin + section + end + tail)
PY
}

if [ "$large" = 1 ]; then
  . scripts/bench/large.sh
  exit 0
fi

# Three servers on one database: the defaults; simplejwt's own behaviour (the user read from
# the database on every request); and the stateless token user (no database read at all), with
# access revocation on (an in-memory check). All three run throughout, so that every checking
# scenario alternates with healthz round by round; only the one measured has work.
start_server base
rss_kb() { awk -v key="$1" '$1 == key":" {print $2}' "/proc/${server_pids[0]}/status"; }
idle_rss=$(rss_kb VmRSS)
start_server uncached TOLLGATE_USER_CACHE_TTL=0
start_server stateless TOLLGATE_AUTHENTICATION_CLASSES=jwt_stateless TOLLGATE_ACCESS_TOKEN_REVOCATION=true

login='{"username":"bench","password":"bench-password"}'
access=$(curl -sf -X POST "$base/api/token/" -H 'Content-Type: application/json' -d "$login" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])')
# Two rotation chains per connection (one alone breaks when wrk retries a connection), each
# of its own user, registered through the API: as in a deployment, every rotation's writes go
# to a different user's entries.
python3 - "$base" $((connections * 2)) >"$work/tokens.txt" <<'PY'
import json, sys, urllib.request
base, users = sys.argv[1], int(sys.argv[2])
def post(path, body):
    request = urllib.request.Request(base + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)
for n in range(users):
    credentials = {"username": f"bench-{n}", "password": "bench-password"}
    post("/api/users/", credentials)
    print(post("/api/token/", credentials)["refresh"])
PY

for round in $(seq 1 "$rounds"); do
  run_duration=$round_duration measure "healthz (no auth)" "$round" "$base/healthz"
  run_duration=$round_duration measure "protected GET, valid token" "$round" -H "Authorization: Bearer $access" "$base/api/index/"
  run_duration=$round_duration measure "protected GET, invalid token" "$round" -H "Authorization: Bearer abc.def.ghi" "$base/api/index/"
  BENCH_BODY="{\"token\":\"$access\"}" run_duration=$round_duration measure "verify" "$round" -s scripts/bench/post.lua "$base/api/token/verify/"
  run_duration=$round_duration measure "protected GET, valid token, jwt_stateless" "$round" -H "Authorization: Bearer $access" "$stateless/api/index/"
  run_duration=$round_duration measure "protected GET, valid token, USER_CACHE_TTL=0" "$round" -H "Authorization: Bearer $access" "$uncached/api/index/"
  BENCH_BODY="{\"token\":\"$access\"}" run_duration=$round_duration measure "verify, USER_CACHE_TTL=0" "$round" -s scripts/bench/post.lua "$uncached/api/token/verify/"
done
BENCH_TOKENS="$work/tokens.txt" run "refresh (rotate + blacklist)" -s scripts/bench/refresh.lua "$base/api/token/refresh/"
BENCH_BODY="$login" run "login (argon2id default cost)" -s scripts/bench/post.lua "$base/api/token/"
# Token checks must not starve while password hashes are hammered (hashes run on their own
# threads): the protected GET at half the connections, beside a login flood at the other half.
BENCH_BODY="$login" wrk -t1 -c$((connections / 2)) -d"$duration" -s scripts/bench/post.lua "$base/api/token/" >"$work/flood.txt" &
flood=$!
connections=$((connections / 2)) threads=1 run "protected GET during a login flood" -H "Authorization: Bearer $access" "$base/api/index/"
wait "$flood"
flood_rps=$(awk '/^Requests\/sec:/ {print $2}' "$work/flood.txt")
peak_rss=$(rss_kb VmHWM)
table

# The median over rounds of each round's ratio of `name` to healthz (a scenario run once is
# compared with the median healthz).
ratio() {
  local name=$1
  python3 - "${rps[$name]}" "${rps["healthz (no auth)"]}" <<'PY'
import statistics, sys
values, healthz = ([float(x) for x in arg.split()] for arg in sys.argv[1:])
if len(values) == len(healthz):
    ratios = [v / h for v, h in zip(values, healthz)]
    spread = f" (rounds: {', '.join(f'{r * 100:.0f} %' for r in ratios)})" if len(ratios) > 1 else ""
    print(f"{statistics.median(ratios) * 100:.0f} %{spread}")
else:
    print(f"{statistics.median(values) / statistics.median(healthz) * 100:.0f} %")
PY
}
{
  cat "$results"
  echo
  echo "- protected GET / healthz: $(ratio "protected GET, valid token")"
  echo "- protected GET with USER_CACHE_TTL=0 / healthz: $(ratio "protected GET, valid token, USER_CACHE_TTL=0")"
  echo "- protected GET with jwt_stateless / healthz: $(ratio "protected GET, valid token, jwt_stateless")"
  echo "- verify / healthz: $(ratio "verify")"
  echo "- verify with USER_CACHE_TTL=0 / healthz: $(ratio "verify, USER_CACHE_TTL=0")"
  echo "- refresh / healthz: $(ratio "refresh (rotate + blacklist)")"
  echo "- protected GET during a login flood / protected GET alone: $(python3 -c 'import statistics, sys; print(f"{float(sys.argv[1]) / statistics.median(map(float, sys.argv[2].split())) * 100:.0f} %")' "${rps["protected GET during a login flood"]}" "${rps["protected GET, valid token"]}") (logins meanwhile: $flood_rps/s)"
  echo "- RSS: idle $((idle_rss / 1024)) MB, peak under load $((peak_rss / 1024)) MB"
} | tee "$work/summary.md"

if [ "$smoke" = 0 ]; then
  cp "$work/summary.md" "target/bench-$backend.md"
  # The run's own section of BENCHMARKS.md, between its markers, replaced whole.
  if [ "$backend" = postgres ]; then
    title="PostgreSQL + Redis (\`scripts/bench.sh --postgres\`)"
  else
    title="Embedded SQLite (\`scripts/bench.sh\`)"
  fi
  {
    echo "## $title, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "$(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), wrk -t$threads -c$connections on" \
      "loopback; $rounds rounds of $round_duration for the request-checking scenarios, $duration for the others;" \
      "$((connections * 2)) rotation chains for refresh, each of its own user."
    echo
    cat "$work/summary.md"
  } >"$work/section.md"
  replace_section "$backend" "$work/section.md"
  echo "results written to target/bench-$backend.md and BENCHMARKS.md" >&2
fi
