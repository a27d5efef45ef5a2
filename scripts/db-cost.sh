#!/usr/bin/env bash
# What each operation costs PostgreSQL (and Redis): statements, transactions, rows written, WAL
# records, full-page images and bytes, per operation, from counters read around a counted run
# of each operation with nothing else on the database server; and the CPU time per operation
# of the Tollgate server and of PostgreSQL's processes.
#
#   scripts/db-cost.sh [--ops M] [--scale S]      default 1000 operations of each kind on
#                                                 scripts/bench-large-data.sh --scale 100
#                                                 (10,000 users, 100,000 tokens)
#
# Counting needs a database server of its own: WAL and pg_stat_statements are per server, and
# pg_stat_statements needs shared_preload_libraries, so the script runs a private PostgreSQL
# (initdb in a temporary directory, as the postgres user when run as root; autovacuum off so
# that nothing but the operations writes) and a private Redis, on free ports, and removes both
# at the end. Settings: the defaults plus ROTATE_REFRESH_TOKENS and BLACKLIST_AFTER_ROTATION,
# with the Redis denylist, as scripts/bench.sh --postgres.
#
# Statements are pg_stat_statements' top-level calls, BEGIN and COMMIT included: each is one
# round trip from the server (sqlx pipelines a statement's parse, bind and execute); sqlx also
# sends a ping before handing out a pooled connection, not counted here: one round trip per
# connection acquired. Nested statements are those that triggers and foreign-key checks run
# inside a statement: work, but no round trip. Rows written are pg_stat_database's tup_inserted + tup_updated +
# tup_deleted. Its counters reach the view up to 10 s after a transaction on an idle
# connection, so each reading waits 11 s after its run.
set -euo pipefail
cd "$(dirname "$0")/.."

ops=1000; scale=100
while [ $# -gt 0 ]; do
  case "$1" in
    --ops) ops=${2:?}; shift 2 ;;
    --scale) scale=${2:?}; shift 2 ;;
    *) echo "usage: scripts/db-cost.sh [--ops M] [--scale S]" >&2; exit 2 ;;
  esac
done
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pgbin/initdb" ] || { echo "PostgreSQL's server binaries are required (initdb, pg_ctl)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is required" >&2; exit 1; }
cargo build --release --quiet
binary="$PWD/target/release/tollgate"

work=$(mktemp -d)
chmod 755 "$work"
as_pg=()
[ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pg_port=$(free_port); redis_port=$(free_port); http_port=$(free_port)
server_pid=""; redis_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
  [ -d "$work/pg" ] && "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

mkdir "$work/pg" "$work/socket"
[ ${#as_pg[@]} -gt 0 ] && chown postgres "$work/pg" "$work/socket"
"${as_pg[@]}" "$pgbin/initdb" -D "$work/pg" -U postgres -A trust --no-sync >/dev/null
# The defaults of a Debian cluster, but for: pg_stat_statements loaded; no autovacuum and no
# timed checkpoint during the runs (each run starts after a CHECKPOINT instead, see below).
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg/server.log" -w -o "-p $pg_port -k $work/socket \
  -c listen_addresses=127.0.0.1 -c shared_preload_libraries=pg_stat_statements \
  -c pg_stat_statements.track=all -c autovacuum=off -c checkpoint_timeout=1h -c max_wal_size=8GB" start >/dev/null
admin="postgres://postgres@127.0.0.1:$pg_port/postgres"
psql "$admin" -qc "CREATE DATABASE tollgate" >/dev/null
url="postgres://postgres@127.0.0.1:$pg_port/tollgate"
# The view is read from the admin database, so that the readings stay out of the counts.
psql "$admin" -qc "CREATE EXTENSION pg_stat_statements" >/dev/null
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$work/redis.log" &
redis_pid=$!

export TOLLGATE_LOG=warn DATABASE_URL="$url"
export TOLLGATE_SIGNING_KEY="db-cost-signing-key-0123456789abcdef0123456789abcdef0123456789abcdef"
export TOLLGATE_ROTATE_REFRESH_TOKENS=true TOLLGATE_BLACKLIST_AFTER_ROTATION=true
export TOLLGATE_REDIS_URL="redis://127.0.0.1:$redis_port/0" TOLLGATE_REDIS_KEY_PREFIX="cost:"
BENCH_BINARY="$binary" scripts/bench-large-data.sh --scale "$scale" "$url" 2>"$work/generated.txt" \
  || { cat "$work/generated.txt" >&2; exit 1; }
users=$(psql "$url" -Atqc "SELECT count(*) FROM users")
[ $((users / 2)) -ge $((ops * 3)) ] || { echo "$users users are too few for 3 × $ops operations on distinct users: lower --scale" >&2; exit 1; }
api_key=$("$binary" apikey create --name cost --scope tokens:issue 2>/dev/null)

"$binary" serve --bind "127.0.0.1:$http_port" 2>>"$work/server.log" &
server_pid=$!
base="http://127.0.0.1:$http_port"
for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
for _ in $(seq 1 600); do [ "$(redis-cli -p "$redis_port" EXISTS cost:denylist:synced)" = 1 ] && break; sleep 0.1; done
postmaster=$(head -1 "$work/pg/postmaster.pid")

# One reading of every counter, as name=value lines: the database's, the server's WAL, Redis's
# commands, and CPU ticks of the Tollgate server and of PostgreSQL's processes.
snapshot() {
  psql "$admin" -Atq -F= -v ON_ERROR_STOP=1 -c "
    SELECT 'xacts', xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'tollgate'
    UNION ALL SELECT 'inserted', tup_inserted FROM pg_stat_database WHERE datname = 'tollgate'
    UNION ALL SELECT 'updated', tup_updated FROM pg_stat_database WHERE datname = 'tollgate'
    UNION ALL SELECT 'deleted', tup_deleted FROM pg_stat_database WHERE datname = 'tollgate'
    UNION ALL SELECT 'statements', COALESCE(SUM(calls) FILTER (WHERE toplevel), 0)::bigint
      FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'tollgate'
    UNION ALL SELECT 'nested', COALESCE(SUM(calls) FILTER (WHERE NOT toplevel), 0)::bigint
      FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'tollgate'
    UNION ALL SELECT 'wal_bytes', pg_current_wal_lsn() - '0/0'::pg_lsn
    UNION ALL SELECT 'wal_records', wal_records FROM pg_stat_wal
    UNION ALL SELECT 'wal_fpi', wal_fpi FROM pg_stat_wal"
  redis-cli -p "$redis_port" INFO commandstats | tr -d '\r' \
    | awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" { n += $3 } END { print "redis=" n }'
  awk '{ print "server_ticks=" $14 + $15 }' "/proc/$server_pid/stat"
  # The postmaster's children: the backends and PostgreSQL's own workers.
  local pid sum=0
  for pid in $(pgrep -P "$postmaster"); do
    sum=$(( sum + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0) ))
  done
  echo "pg_ticks=$sum"
}

# Runs the requests of a JSON-lines file (method, path, token, body) with `concurrency`
# clients, each on one kept-alive connection as behind a load balancer; each answer's JSON is
# written to `out`, one a line. Fails on any non-2xx answer.
drive() { # requests file, concurrency, answers file
  python3 - "$base" "$1" "$2" "$3" <<'PY'
import http.client, json, sys, threading
from urllib.parse import urlsplit
base, path, concurrency, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
host, port = urlsplit(base).hostname, urlsplit(base).port
requests = [json.loads(line) for line in open(path)]
answers = [None] * len(requests)
failures = []
def worker(start):
    connection = http.client.HTTPConnection(host, port)
    for i in range(start, len(requests), concurrency):
        r = requests[i]
        headers = {"Content-Type": "application/json"}
        if r.get("token"):
            headers["Authorization"] = r["token"]
        data = json.dumps(r["body"]).encode() if r.get("body") is not None else None
        for attempt in (1, 2):
            try:
                connection.request(r["method"], r["path"], body=data, headers=headers)
                response = connection.getresponse()
                body = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                # The server closed a kept-alive connection: once more on a new one.
                connection.close()
                connection = http.client.HTTPConnection(host, port)
                if attempt == 2:
                    raise
        if response.status >= 300:
            failures.append(f"{r['method']} {r['path']}: {response.status} {body[:200]!r}")
        else:
            answers[i] = json.loads(body)
threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
for t in threads: t.start()
for t in threads: t.join()
if failures:
    sys.exit(f"{len(failures)} failed, first: {failures[0]}")
with open(out, "w") as f:
    for a in answers:
        print(json.dumps(a), file=f)
PY
}
# Requests built from the answers of an earlier step: `jq`-free, a Python expression per line.
requests() { # answers file (or - for user ids), expression of `a` (an answer) or `u` (a user id), output
  python3 - "$@" <<'PY'
import json, sys
source, expression, out, first, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
if source == "-":
    items = [{"u": first + 2 * n} for n in range(count)]
else:
    items = [{"a": json.loads(line)} for line in open(source)]
with open(out, "w") as f:
    for item in items:
        print(json.dumps(eval(expression, {}, item)), file=f)
PY
}

password="correct horse battery staple"
declare -A before after
read_into() { # array name
  local name value count=0
  snapshot >"$work/snapshot.txt"
  while IFS== read -r name value; do eval "$1[\$name]=\$value"; count=$((count + 1)); done <"$work/snapshot.txt"
  [ "$count" = 12 ] || { echo "a reading of the counters failed:" >&2; cat "$work/snapshot.txt" >&2; exit 1; }
}
rows_table="$work/table.md"
printf '| operation | statements (round trips) | nested statements | transactions | rows written (ins/upd/del) | WAL records | WAL FPIs | WAL bytes | Redis commands | Tollgate CPU | PostgreSQL CPU |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n' >"$rows_table"
tick_us=$(( 1000000 / $(getconf CLK_TCK) ))
# Reads the counters around `drive`, then adds the operation's row, per operation.
counted() { # label, requests file, concurrency, answers file
  local label=$1 start end
  # Each run starts at a checkpoint: the first change of each page after it writes the whole
  # page to the WAL (the FPI column), as it does after every checkpoint of a server in service.
  psql "$admin" -qc "CHECKPOINT" >/dev/null
  psql "$admin" -Atqc "SELECT pg_stat_statements_reset()" >/dev/null
  redis-cli -p "$redis_port" CONFIG RESETSTAT >/dev/null
  sleep 11
  read_into before
  start=$(date +%s.%N)
  drive "$2" "$3" "$4"
  end=$(date +%s.%N)
  # Which statements and Redis commands, per operation (the background's are a few in all).
  {
    echo "- **$label**: statements $(psql "$admin" -Atq -F ' ' -c "SELECT round(s.calls::numeric / $ops, 2) || ' × ' \
      || CASE WHEN s.toplevel THEN '' ELSE '(nested) ' END || regexp_replace(left(s.query, 70), '\s+', ' ', 'g') FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
      WHERE d.datname = 'tollgate' AND s.calls >= $ops / 10 ORDER BY s.calls DESC" | sed 's/^/`/; s/$/`/' | paste -sd ';' - | sed 's/;/; /g');" \
      "Redis $(redis-cli -p "$redis_port" INFO commandstats | tr -d '\r' | awk -F'[:=,]' -v ops="$ops" \
      '/^cmdstat_/ && $1 != "cmdstat_info" && $1 != "cmdstat_config" && $3 >= ops / 10 { sub("cmdstat_", "", $1); printf "%s%s %.2f", sep, toupper($1), $3 / ops; sep = ", " }')"
  } >>"$work/details.md"
  sleep 11
  read_into after
  python3 - "$label" "$ops" "$tick_us" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" \
    "$(declare -p before)" "$(declare -p after)" "$idle_per_s" >>"$rows_table" <<'PY'
import re, sys
label, ops, tick_us, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
def parse(decl):
    return {k: int(v) for k, v in re.findall(r'\[([a-z_]+)\]="(-?\d+)"', decl)}
before, after, idle = parse(sys.argv[5]), parse(sys.argv[6]), parse(sys.argv[7])
window = seconds + 11 + 0.0
def per_op(key):
    # Less what the idle server does meanwhile (its background tasks), per second of window.
    return (after[key] - before[key] - idle.get(key, 0) / 1000 * window) / ops
ins, upd, dele = per_op("inserted"), per_op("updated"), per_op("deleted")
print(f"| {label} | {per_op('statements'):.2f} | {per_op('nested'):.2f} | {per_op('xacts'):.2f} | {ins + upd + dele:.2f} "
      f"({ins:.2f}/{upd:.2f}/{dele:.2f}) | {per_op('wal_records'):.1f} | {per_op('wal_fpi'):.2f} | "
      f"{per_op('wal_bytes'):,.0f} | {per_op('redis'):.2f} | {per_op('server_ticks') * tick_us:.0f} µs | "
      f"{per_op('pg_ticks') * tick_us:.0f} µs |")
PY
  echo "$label: done in $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s" >&2
}

# What the idle server does in a window: its background tasks (outbox, revocations, change
# feed), subtracted from every run, in thousandths per second.
read_into before
sleep 20
read_into after
idle_per_s=$(python3 - "$(declare -p before)" "$(declare -p after)" <<'PY'
import re, sys
parse = lambda d: {k: int(v) for k, v in re.findall(r'\[([a-z_]+)\]="(-?\d+)"', d)}
b, a = parse(sys.argv[1]), parse(sys.argv[2])
print("declare -A idle=(" + " ".join(f'[{k}]="{round((a[k] - b[k]) * 1000 / 20)}"' for k in a) + ")")
PY
)
echo "idle server, per second (thousandths): $idle_per_s" >&2

# Distinct users for each step that needs its own: even ids (argon2id hashes).
requests - "{'method': 'POST', 'path': '/api/token/', 'body': {'username': f'user{u}', 'password': '$password'}}" "$work/login.req" 2 "$ops"
counted "login (argon2id)" "$work/login.req" 4 "$work/login.ans"
requests "$work/login.ans" "{'method': 'GET', 'path': '/api/index/', 'token': 'Bearer ' + a['access']}" "$work/get.req" 0 0
counted "protected GET" "$work/get.req" 4 "$work/get.ans"
requests "$work/login.ans" "{'method': 'POST', 'path': '/api/token/verify/', 'body': {'token': a['access']}}" "$work/verify.req" 0 0
counted "verify" "$work/verify.req" 4 "$work/verify.ans"
requests "$work/login.ans" "{'method': 'POST', 'path': '/api/token/refresh/', 'body': {'refresh': a['refresh']}}" "$work/refresh1.req" 0 0
counted "refresh, rotation, one at a time" "$work/refresh1.req" 1 "$work/refresh1.ans"
requests "$work/refresh1.ans" "{'method': 'POST', 'path': '/api/token/refresh/', 'body': {'refresh': a['refresh']}}" "$work/refresh32.req" 0 0
counted "refresh, rotation, 32 at once" "$work/refresh32.req" 32 "$work/refresh32.ans"
requests "$work/refresh32.ans" "{'method': 'POST', 'path': '/api/token/blacklist/', 'body': {'refresh': a['refresh']}}" "$work/logout.req" 0 0
counted "logout" "$work/logout.req" 4 "$work/logout.ans"
# Tokens for the next two from the API key (not counted), for users of their own.
requests - "{'method': 'POST', 'path': '/api/token/issue/', 'token': 'Api-Key $api_key', 'body': {'user_id': u}}" "$work/issue.req" $((2 * ops + 2)) $((2 * ops))
drive "$work/issue.req" 4 "$work/issue.ans"
head -n "$ops" "$work/issue.ans" >"$work/everywhere.ans"; tail -n "$ops" "$work/issue.ans" >"$work/password.ans"
requests "$work/everywhere.ans" "{'method': 'POST', 'path': '/api/token/blacklist/all/', 'token': 'Bearer ' + a['access']}" "$work/everywhere.req" 0 0
counted "logout everywhere" "$work/everywhere.req" 4 "$work/everywhere.ans2"
requests "$work/password.ans" "{'method': 'POST', 'path': '/api/user/password/', 'token': 'Bearer ' + a['access'], 'body': {'old_password': '$password', 'new_password': 'another horse battery staple 2'}}" "$work/password.req" 0 0
# Each answer waits for the next second (see service/accounts.rs), hence more clients.
counted "password change (2 argon2id)" "$work/password.req" 32 "$work/password.ans2"

{
  echo "PostgreSQL $(psql "$admin" -Atqc 'SHOW server_version'), a private server; $(printf "%'d" "$users" 2>/dev/null || echo "$users") users (scripts/bench-large-data.sh --scale $scale); $ops operations of each kind; per operation:"
  echo
  cat "$rows_table"
  echo
  echo "What they are (statements run at least once per ten operations; PostgreSQL's own text):"
  echo
  cat "$work/details.md"
} | tee "$work/result.md"
mkdir -p target && cp "$work/result.md" target/db-cost.md
# BENCHMARKS.md's section of this script, between its markers, replaced whole.
python3 - BENCHMARKS.md "$work/result.md" "$(date -u '+%Y-%m-%d %H:%M UTC')" <<'PY'
import sys
path, result, when = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3]
begin, end = "<!-- scripts/db-cost.sh: begin -->\n", "<!-- scripts/db-cost.sh: end -->"
text = open(path).read()
if begin not in text or end not in text:
    sys.exit(f"{path} has no {begin.strip()} ... {end} markers")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(head + begin + f"## Database cost per operation (`scripts/db-cost.sh`), {when}\n\n" + result + end + tail)
PY
echo "written to target/db-cost.md and BENCHMARKS.md" >&2
