#!/usr/bin/env bash
# How long `tollgate flushexpiredtokens` takes over N expired outstanding tokens (a quarter of
# them also blacklisted) beside N/10 live ones, on SQLite or PostgreSQL.
#
#   scripts/bench-flush.sh [--postgres] [ROWS]     default 1000000 rows
set -euo pipefail
cd "$(dirname "$0")/.."
backend=sqlite; rows=1000000
for arg in "$@"; do
  case "$arg" in
    --postgres) backend=postgres ;;
    *[!0-9]*) echo "usage: scripts/bench-flush.sh [--postgres] [ROWS]" >&2; exit 2 ;;
    *) rows=$arg ;;
  esac
done
cargo build --release --quiet
binary="$PWD/target/release/tollgate"
work=$(mktemp -d)
cleanup() {
  if [ "$backend" = postgres ]; then psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
export TOLLGATE_LOG=warn TOLLGATE_SIGNING_KEY=bench-flush-signing-key-0123456789abcdef0123456789abcdef0123
live=$((rows / 10)); blacklisted=$((rows / 4))
seed_sql="
INSERT INTO outstanding_tokens (jti, user_id, created_at, expires_at)
  SELECT 'expired-' || n, NULL, 0, 1000 FROM series WHERE n <= $rows;
INSERT INTO outstanding_tokens (jti, user_id, created_at, expires_at)
  SELECT 'live-' || n, NULL, 0, 99999999999 FROM series WHERE n <= $live;
INSERT INTO blacklisted_tokens (jti, blacklisted_at, expires_at)
  SELECT 'expired-' || n, 0, 1000 FROM series WHERE n <= $blacklisted;"
if [ "$backend" = postgres ]; then
  pg_admin="${TOLLGATE_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  pg_db="tollgate_flush_$$"
  psql "$pg_admin" -qc "CREATE DATABASE $pg_db" >/dev/null
  export DATABASE_URL="${pg_admin%/*}/$pg_db"
  "$binary" migrate >/dev/null
  psql "$DATABASE_URL" -q -v ON_ERROR_STOP=1 \
    -c "CREATE TEMP TABLE series AS SELECT generate_series(1, $rows) AS n; $seed_sql ANALYZE;" >/dev/null
else
  export DATABASE_URL="sqlite://$work/tollgate.db"
  "$binary" migrate >/dev/null
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
end=$(date +%s.%N)
echo "$output"
python3 -c "print(f'flushexpiredtokens on $backend over $rows expired rows: {$end - $start:.2f} s')"
expected="deleted $rows expired outstanding and $blacklisted expired blacklisted tokens"
[ "$output" = "$expected" ] || { echo "expected: $expected" >&2; exit 1; }
