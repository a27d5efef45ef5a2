#!/usr/bin/env bash
# How long `tollgate flushexpiredtokens` takes, on SQLite or PostgreSQL.
#
#   scripts/bench-flush.sh [--postgres] [ROWS]
#       over ROWS expired outstanding tokens (default 1000000; a quarter of them also
#       blacklisted) beside ROWS/10 live ones, nothing else running
#   scripts/bench-flush.sh --under-load [--postgres] [--scale S] [--smoke]
#       on the data of scripts/bench-large-data.sh --scale S (default 1: 5,000,000 expired
#       tokens, 5,000,000 login events past their retention) while a server refreshes with
#       rotation under wrk -t2 -c32: first the tokens (LOGIN_EVENTS_RETENTION off), then the
#       login events (a second run, with the default retention); for each, how long, and the
#       refresh p99 during it against the p99 without; sizes of tables and indexes and dead
#       rows before and after. --smoke: --scale 1000, 2 s of refresh without a flush.
#   scripts/bench-flush.sh --under-load --postgres --autovacuum [--observe SECONDS] ...
#       the same with the server's autovacuum turned on for the run (ALTER SYSTEM; the
#       previous setting is restored on exit, also on failure), and after the flushes the
#       refresh load goes on for SECONDS (default 120; 20 with --smoke) while dead rows,
#       autovacuums and sizes of outstanding_tokens, blacklisted_tokens and login_events are
#       sampled every tenth of it: whether autovacuum reclaims what the flush left.
#       It changes the setting for the whole server, so for every database on it.
#       --observe SECONDS without --autovacuum: the same sampling, the server's setting as it
#       is (to compare with a server whose autovacuum is off).
# The flushes run with the defaults, FLUSH_BATCH_SIZE (2,000) and FLUSH_BATCH_PAUSE (40 ms)
# included; set TOLLGATE_FLUSH_BATCH_SIZE and TOLLGATE_FLUSH_BATCH_PAUSE in the environment to
# see them otherwise (10000 and 0: as fast as the database goes).
set -euo pipefail
cd "$(dirname "$0")/.."
backend=sqlite; rows=1000000; under_load=0; scale=1; quiet_seconds=10
autovacuum=0; observe=0; observe_seconds=""
usage="usage: scripts/bench-flush.sh [--postgres] [ROWS] | --under-load [--postgres [--autovacuum] [--observe SECONDS]] [--scale S] [--smoke]"
while [ $# -gt 0 ]; do
  case "$1" in
    --postgres) backend=postgres ;;
    --under-load) under_load=1 ;;
    --scale) scale=${2:?}; shift ;;
    --smoke) scale=1000; quiet_seconds=2; observe_seconds=${observe_seconds:-20} ;;
    --autovacuum) autovacuum=1; observe=1 ;;
    --observe) observe=1; observe_seconds=${2:?}; shift ;;
    *[!0-9]*) echo "$usage" >&2; exit 2 ;;
    *) rows=$1 ;;
  esac
  shift
done
observe_seconds=${observe_seconds:-120}
if [ "$observe" = 1 ] && { [ "$backend" != postgres ] || [ "$under_load" = 0 ]; }; then
  echo "--autovacuum and --observe are for --under-load --postgres" >&2; exit 2
fi
case "$observe_seconds" in ''|*[!0-9]*|0) echo "--observe takes a positive whole number of seconds" >&2; exit 2 ;; esac
cargo build --release --quiet
binary="$PWD/target/release/tollgate"
work=$(mktemp -d)
server_pid=""
# How to put the server's autovacuum back, once it has been changed.
restore_autovacuum=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; fi
  if [ -n "$restore_autovacuum" ]; then
    if psql "$pg_admin" -q -c "$restore_autovacuum" -c "SELECT pg_reload_conf()" >/dev/null; then
      echo "autovacuum restored: $restore_autovacuum"
    else
      echo "could not restore autovacuum; run: $restore_autovacuum; SELECT pg_reload_conf()" >&2
    fi
  fi
  if [ "$backend" = postgres ]; then psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
# Interrupted, the script exits, so that cleanup (and the restore) runs.
trap 'exit 130' INT
trap 'exit 143' TERM
export TOLLGATE_LOG=warn TOLLGATE_SIGNING_KEY=bench-flush-signing-key-0123456789abcdef0123456789abcdef0123
if [ "$backend" = postgres ]; then
  pg_admin="${TOLLGATE_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  pg_db="tollgate_flush_$$"
  psql "$pg_admin" -qc "CREATE DATABASE $pg_db" >/dev/null
  export DATABASE_URL="${pg_admin%/*}/$pg_db"
  if [ "$autovacuum" = 1 ]; then
    # A value set with ALTER SYSTEM before is set again; otherwise the entry is removed, and
    # the configuration files' value (or the default) applies again.
    IFS='|' read -r previous source_file < <(psql "$pg_admin" -Atqc \
      "SELECT setting, COALESCE(sourcefile, '') FROM pg_settings WHERE name = 'autovacuum'")
    case "$source_file" in
      */postgresql.auto.conf) restore_autovacuum="ALTER SYSTEM SET autovacuum = '$previous'" ;;
      *) restore_autovacuum="ALTER SYSTEM RESET autovacuum" ;;
    esac
    psql "$pg_admin" -q -c "ALTER SYSTEM SET autovacuum = on" -c "SELECT pg_reload_conf()" >/dev/null
    # The reload is signalled, not waited for: new sessions see it once the server has read it.
    for _ in $(seq 1 50); do
      [ "$(psql "$pg_admin" -Atqc 'SHOW autovacuum')" = on ] && break; sleep 0.1
    done
    [ "$(psql "$pg_admin" -Atqc 'SHOW autovacuum')" = on ] || { echo "autovacuum did not turn on" >&2; exit 1; }
    echo "autovacuum on for this run (was $previous)"
  fi
else
  export DATABASE_URL="sqlite://$work/tollgate.db"
fi
seconds_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }

if [ "$under_load" = 0 ]; then
  live=$((rows / 10)); blacklisted=$((rows / 4))
  seed_sql="
  INSERT INTO outstanding_tokens (jti, user_id, created_at, expires_at)
    SELECT 'expired-' || n, NULL, 0, 1000 FROM series WHERE n <= $rows;
  INSERT INTO outstanding_tokens (jti, user_id, created_at, expires_at)
    SELECT 'live-' || n, NULL, 0, 99999999999 FROM series WHERE n <= $live;
  INSERT INTO blacklisted_tokens (jti, blacklisted_at, expires_at)
    SELECT 'expired-' || n, 0, 1000 FROM series WHERE n <= $blacklisted;"
  "$binary" migrate >/dev/null
  if [ "$backend" = postgres ]; then
    psql "$DATABASE_URL" -q -v ON_ERROR_STOP=1 \
      -c "CREATE TEMP TABLE series AS SELECT generate_series(1, $rows) AS n; $seed_sql ANALYZE;" >/dev/null
  else
    python3 - "$work/tollgate.db" "$rows" "$seed_sql" <<'PY'
import sqlite3, sys
db, rows, sql = sys.argv[1], int(sys.argv[2]), sys.argv[3]
con = sqlite3.connect(db)
con.execute(f"CREATE TEMP TABLE series AS WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {rows}) SELECT n FROM c")
con.executescript("BEGIN;" + sql + "COMMIT; ANALYZE;")
con.close()
PY
  fi
  start=$(date +%s.%N)
  output=$("$binary" flushexpiredtokens)
  took=$(seconds_since "$start")
  echo "$output"
  echo "flushexpiredtokens on $backend over $rows expired rows: $took s"
  expected="deleted $rows expired outstanding and $blacklisted expired blacklisted tokens"
  [ "$output" = "$expected" ] || { echo "expected: $expected" >&2; exit 1; }
  exit 0
fi

command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
BENCH_BINARY="$binary" scripts/bench-large-data.sh --scale "$scale" "$DATABASE_URL"
users=$((1000000 / scale))
export TOLLGATE_ROTATE_REFRESH_TOKENS=true TOLLGATE_BLACKLIST_AFTER_ROTATION=true

# Sizes of the tables the flush deletes from, their indexes apart, and their dead rows.
sizes() { # label
  echo "$1:"
  if [ "$backend" = postgres ]; then
    psql "$DATABASE_URL" -Atq -F ' | ' -c "SELECT 'pg_stat_clear_snapshot', pg_stat_clear_snapshot()" -c "
      SELECT c.relname, pg_size_pretty(pg_relation_size(c.oid)) AS heap,
        pg_size_pretty(pg_indexes_size(c.oid)) AS indexes, pg_size_pretty(pg_total_relation_size(c.oid)) AS total,
        s.n_live_tup, s.n_dead_tup, COALESCE(s.last_autovacuum::text, 'never'), s.autovacuum_count
      FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid
      WHERE c.relname IN ('outstanding_tokens', 'blacklisted_tokens', 'sessions', 'login_events')
      ORDER BY c.relname" | grep -v '^pg_stat_clear_snapshot' \
      | sed 's/^/  /; 1i\  table | heap | indexes | total | live rows | dead rows | last autovacuum | autovacuums'
  else
    local file=${DATABASE_URL#sqlite://}
    sqlite3 -separator ' | ' "$file" "SELECT m.tbl_name, printf('%.1f MB', SUM(d.pgsize) / 1048576.0) FROM dbstat d \
      JOIN sqlite_master m ON m.name = d.name WHERE m.tbl_name IN ('outstanding_tokens', 'blacklisted_tokens', \
      'sessions', 'login_events') GROUP BY m.tbl_name ORDER BY m.tbl_name" | sed 's/^/  /; 1i\  table and its indexes | size'
    echo "  file $(du -m "$file" | cut -f1) MB, $(sqlite3 "$file" 'PRAGMA freelist_count') free pages"
  fi
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
"$binary" serve --bind "127.0.0.1:$port" 2>>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
# Rotation chains of generated users spread over the ids (even ids: argon2id hashes), new ones
# for every load: a load spends the tokens it starts from.
chains() {
  python3 - "$base" 64 "$users" >"$work/tokens.txt" <<'PY'
import json, sys, urllib.request
base, chains, users = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for n in range(chains):
    body = {"username": f"user{2 * max(1, (n * users // chains) // 2)}", "password": "correct horse battery staple"}
    request = urllib.request.Request(base + "/api/token/", json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        print(json.load(response)["refresh"])
PY
}
# The refresh load for `seconds` (or until wrk is interrupted: it then prints what it did).
refresh_load() { # seconds, output file
  chains
  BENCH_THREADS=2 BENCH_TOKENS="$work/tokens.txt" wrk -t2 -c32 -d"$1s" --latency \
    -s scripts/bench/refresh.lua "$base/api/token/refresh/" >"$2"
}
figures() { # wrk output: requests/s and p99
  awk '/^Requests\/sec:/ {r = $2} $1 == "99%" {p = $2} /Non-2xx/ {e = $5} END { printf "%s req/s, p99 %s%s", r, p, (e ? ", " e " non-2xx" : "") }' "$1"
}
p99_ms() {
  awk '$1 == "99%" { v = $2 + 0; if ($2 ~ /us$/) v /= 1000; else if ($2 ~ /[0-9]s$/) v *= 1000; print v }' "$1"
}

sizes "before"
# The generation leaves gigabytes of dirty pages that PostgreSQL's checkpointer would write
# out under the first loads (a p99 of 150 ms "without a flush" at --scale 2): written now.
if [ "$backend" = postgres ]; then psql "$DATABASE_URL" -qc CHECKPOINT; fi
# A freshly made database answers its first requests from cold caches (a p99 some 40 times a
# warm one's at the full scale): the same load first, not counted, so that "without a flush"
# is the warm figure the flush is compared with.
refresh_load "$quiet_seconds" "$work/warm-up.txt"
echo "refresh while the caches warm up (not compared): $(figures "$work/warm-up.txt")"
refresh_load "$quiet_seconds" "$work/quiet1.txt"
echo "refresh without a flush: $(figures "$work/quiet1.txt")"
# One flush under the refresh load: the load runs until the flush is done.
flush_under_load() { # label, then environment for the flush as NAME=value words
  local label=$1 load start took; shift
  chains
  # Started directly, so that $! is wrk itself, which stops on SIGINT and reports.
  BENCH_THREADS=2 BENCH_TOKENS="$work/tokens.txt" wrk -t2 -c32 -d3600s --latency \
    -s scripts/bench/refresh.lua "$base/api/token/refresh/" >"$work/during-$label.txt" &
  load=$!
  sleep 1
  local checkpoints_before=""
  [ "$backend" = postgres ] && checkpoints_before=$(checkpoints)
  start=$(date +%s.%N)
  env "$@" "$binary" flushexpiredtokens >"$work/flush-$label.txt"
  took=$(seconds_since "$start")
  flush_ended=$(date +%s)
  # Stopped as soon as the flush ends: the figures are those of the flush and the 1 s before.
  kill -INT "$load"; wait "$load" || true
  echo "flush of $label under the refresh load, ended $(date +%T): $took s; $(tr '\n' ';' <"$work/flush-$label.txt" | sed 's/;$//; s/;/; /g')"
  echo "  refresh meanwhile (1 s before, then during): $(figures "$work/during-$label.txt"); p99 during / without: $(awk -v d="$(p99_ms "$work/during-$label.txt")" -v q="$(p99_ms "$work/quiet1.txt")" 'BEGIN { printf "%.2f", d / q }')"
  if [ -n "$checkpoints_before" ]; then
    echo "  checkpoints during it (timed, requested because max_wal_size filled): $(paste -d' ' <(echo "$checkpoints_before" | tr ' ' '\n') <(checkpoints | tr ' ' '\n') | awk '{ printf "%s%d", (NR > 1 ? ", " : ""), $2 - $1 }')"
  fi
}
# PostgreSQL's checkpoints so far: timed, then requested (pg_stat_bgwriter, PostgreSQL 15).
checkpoints() {
  psql "$DATABASE_URL" -Atqc "SELECT checkpoints_timed || ' ' || checkpoints_req FROM pg_stat_bgwriter"
}
# Dead rows, autovacuums and sizes of the tables the flush deletes from, one line per table.
sample_tables() {
  psql "$DATABASE_URL" -Atq -F ' | ' -c "
    SELECT '$(( $(date +%s) - flush_ended )) s', to_char(now(), 'HH24:MI:SS'), s.relname, s.n_live_tup, s.n_dead_tup,
      COALESCE(to_char(s.last_autovacuum, 'HH24:MI:SS'), 'never'), s.autovacuum_count,
      pg_size_pretty(pg_total_relation_size(s.relid))
    FROM pg_stat_user_tables s
    WHERE s.relname IN ('outstanding_tokens', 'blacklisted_tokens', 'login_events')
    ORDER BY s.relname" | sed 's/^/  /'
}
# After the flushes, the refresh load goes on while autovacuum (if on) reclaims the dead rows:
# does it, and do the tables stop growing?
observe_autovacuum() {
  local load step=$((observe_seconds / 10)) elapsed=0 started
  [ "$step" -ge 1 ] || step=1
  echo "after the flushes, refresh load for $observe_seconds s, sampled every $step s (autovacuum $(psql "$DATABASE_URL" -Atqc 'SHOW autovacuum')):"
  echo "  since flush | time | table | live rows | dead rows | last autovacuum | autovacuums | total size"
  sample_tables
  chains
  BENCH_THREADS=2 BENCH_TOKENS="$work/tokens.txt" wrk -t2 -c32 -d"${observe_seconds}s" --latency \
    -s scripts/bench/refresh.lua "$base/api/token/refresh/" >"$work/observe.txt" &
  load=$!
  started=$(date +%s)
  while [ "$elapsed" -lt "$observe_seconds" ]; do
    sleep "$step"
    elapsed=$(( $(date +%s) - started ))
    sample_tables
  done
  wait "$load" || true
  echo "  refresh meanwhile: $(figures "$work/observe.txt")"
}
flush_under_load tokens TOLLGATE_LOGIN_EVENTS_RETENTION=0
flush_under_load "login events" TOLLGATE_LOGIN_EVENTS_RETENTION=90d
if [ "$observe" = 1 ]; then observe_autovacuum; fi
refresh_load "$quiet_seconds" "$work/quiet2.txt"
echo "refresh without a flush, after: $(figures "$work/quiet2.txt")"
sizes "after"
if [ "$backend" = postgres ]; then
  echo "autovacuum during the run: $(psql "$DATABASE_URL" -Atqc 'SHOW autovacuum')"
fi
