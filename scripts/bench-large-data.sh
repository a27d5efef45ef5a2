#!/usr/bin/env bash
# Fills a Tollgate database with the data of a large deployment, made by the database itself
# (PostgreSQL's generate_series, SQLite's recursive CTE, INSERT ... SELECT), not row by row:
#
#   N users             user1 … userN, ids 1 … N, all with the password "correct horse battery
#                       staple": odd ids a Django PBKDF2-SHA256 hash (600,000 iterations, made by
#                       Django 4.2: scripts/django_hash_fixtures.py), even ids an argon2id hash
#                       at Tollgate's default cost (made once by `tollgate createuser`); each
#                       hash is copied, not computed, per row
#   N sessions          one per user, started 46 h ago and refreshed 5 h apart since; every
#                       tenth (ids divisible by 10) logged out a minute after its last refresh
#   10×N tokens         ten refresh tokens per session, issued 5 h apart with the default
#                       REFRESH_TOKEN_LIFETIME (1 day): the five oldest expired, the five newest
#                       live; the tokens of the logged-out sessions blacklisted (a tenth)
#   10×N login events   ten per user, 18 days apart over 180 days: half older than the default
#                       LOGIN_EVENTS_RETENTION (90 days); one in seven a wrong password
#
# The rows are what Tollgate writes with ROTATE_REFRESH_TOKENS on and BLACKLIST_AFTER_ROTATION
# off (simplejwt's defaults when rotating): each refresh records its new token in the session,
# nothing is blacklisted until a logout, which blacklists the session's live tokens until the
# session expires. jtis and session ids are version-7 UUIDs in 32-hex form whose time is the
# row's own, so indexes grow in time order as in production; foreign keys hold; ids are in
# time order. `tollgate flushexpiredtokens` then deletes the 5×N expired outstanding tokens and
# the 5×N old login events, and a server logs these users in, refreshes and logs them out.
#
#   scripts/bench-large-data.sh [--scale S] DATABASE_URL
#
#   DATABASE_URL   sqlite://PATH (created) or postgres://… (an existing, empty database);
#                  migrated first with the binary. Refused if it holds users already.
#   --scale S      divides every count: N = 1,000,000 / S (default 1: a million users)
#
# The binary is $BENCH_BINARY, or target/release/tollgate (built if missing). Prints how long
# each table took, and the tables' sizes.
set -euo pipefail
cd "$(dirname "$0")/.."

scale=1; url=
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale=${2:?--scale needs a number}; shift 2 ;;
    --scale=*) scale=${1#--scale=}; shift ;;
    -*) echo "usage: scripts/bench-large-data.sh [--scale S] DATABASE_URL" >&2; exit 2 ;;
    *) url=$1; shift ;;
  esac
done
[ -n "$url" ] || { echo "usage: scripts/bench-large-data.sh [--scale S] DATABASE_URL" >&2; exit 2; }
case "$scale" in ''|*[!0-9]*|0) echo "--scale takes a positive whole number" >&2; exit 2 ;; esac
users=$((1000000 / scale))
[ "$users" -ge 10 ] || { echo "--scale $scale leaves fewer than 10 users" >&2; exit 2; }

binary="${BENCH_BINARY:-$PWD/target/release/tollgate}"
[ -x "$binary" ] || cargo build --release --quiet
case "$url" in
  postgres://*|postgresql://*) backend=postgres; command -v psql >/dev/null || { echo "psql is required" >&2; exit 1; } ;;
  sqlite://*|sqlite:*) backend=sqlite; command -v sqlite3 >/dev/null || { echo "sqlite3 is required (apt-get install sqlite3)" >&2; exit 1; } ;;
  *) echo "DATABASE_URL must be sqlite://PATH or postgres://…" >&2; exit 2 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TOLLGATE_LOG=warn
password="correct horse battery staple"

# The two hashes every row copies. Django's comes from the fixtures Django itself wrote.
pbkdf2=$(python3 - <<'PY'
import json
fixtures = json.load(open("crates/tollgate-core/src/password/fixtures/django_hashes.json"))["hashes"]
print(next(h["encoded"] for h in fixtures
           if h["encoded"].startswith("pbkdf2_sha256$600000$") and h["password"] == "correct horse battery staple"))
PY
)
quietly() { "$@" >"$work/command.log" 2>&1 || { cat "$work/command.log" >&2; exit 1; }; }
quietly env DATABASE_URL="sqlite://$work/hash.db" "$binary" migrate
quietly env DATABASE_URL="sqlite://$work/hash.db" TOLLGATE_USER_PASSWORD="$password" \
  "$binary" createuser --username template --no-input
argon2=$(sqlite3 "$work/hash.db" "SELECT password FROM users WHERE username = 'template'")
case "$argon2" in 'argon2$argon2id$'*) ;; *) echo "unexpected hash from createuser: $argon2" >&2; exit 1 ;; esac

quietly env DATABASE_URL="$url" "$binary" migrate
now=$(date +%s)
seed=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
echo "generating $users users, $users sessions, $((users * 10)) tokens, $((users * 10)) login events ($backend)" >&2

# The statements are the same in both dialects but for the row source (`series`) and the
# version-7 ids (`v7 TIME USER NUMBER`). Version-7 UUID text: 12 hex digits of the
# millisecond time, '7', 3 random digits, the variant digit, 15 random digits.
user_agents="CASE u % 4 WHEN 0 THEN 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/133.0' \
  WHEN 1 THEN 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Safari/604.1' \
  WHEN 2 THEN 'okhttp/4.12.0' ELSE 'Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0' END"
sql_for() { # dialect: prints the whole load as SQL
  local d=$1 series v7 k
  if [ "$d" = postgres ]; then
    series="generate_series(1, $users) AS g(u)"
    # md5 of (seed, user, number): distinct for every row of a run, different between runs.
    v7() { echo "lpad(to_hex(CAST($1 AS BIGINT) * 1000 + $2 % 1000), 12, '0') || '7' \
      || substr(md5('$seed:' || $2 || ':' || $3), 1, 3) || substr('89ab', 1 + CAST(($2 + $3) % 4 AS INTEGER), 1) \
      || substr(md5('$seed:' || $2 || ':' || $3), 4, 15)"; }
  else
    series="series"
    v7() { echo "printf('%012x', CAST($1 AS BIGINT) * 1000 + $2 % 1000) || '7' || substr(lower(hex(randomblob(2))), 1, 3) \
      || substr('89ab', 1 + CAST(($2 + $3) % 4 AS INTEGER), 1) || substr(lower(hex(randomblob(8))), 1, 15)"; }
  fi
  echo "-- users"
  echo "INSERT INTO users (id, username, email, first_name, last_name, password, is_active, \
    is_staff, is_superuser, date_joined, last_login, profile, identified_since, email_verified_at) \
    SELECT u, 'user' || u, 'user' || u || '@example.com', 'User', 'Number ' || u, \
      CASE WHEN u % 2 = 0 THEN '$argon2' ELSE '$pbkdf2' END, TRUE, FALSE, FALSE, \
      $now - 86400 * (u % 1000) - 200000, $now - 3600 - (u % 3600), '{}', 0, $now - 86400 * (u % 1000) - 200000 \
    FROM $series;"
  [ "$d" = postgres ] && echo "SELECT setval(pg_get_serial_sequence('users', 'id'), $users);"
  echo "-- sessions"
  # Started at `c` (46 h ago, minus up to an hour), refreshed every 5 h since: the last
  # refresh 45 h after the start, and the session lasts a day past it.
  local c="($now - 46 * 3600 - u % 3600)"
  echo "INSERT INTO sessions (id, user_id, created_at, last_used_at, client_addr, user_agent, \
    expires_at, revoked_at, amr) \
    SELECT $(v7 "$c" u -1), u, $c, $c + 45 * 3600, \
      '10.' || ((u / 65536) % 256) || '.' || ((u / 256) % 256) || '.' || (u % 256), $user_agents, \
      $c + 45 * 3600 + 86400, CASE WHEN u % 10 = 0 THEN $c + 45 * 3600 + 60 END, 'pwd' \
    FROM $series ORDER BY $c;"
  echo "-- outstanding_tokens"
  # One statement per token number, so that ids follow time across users as they do when
  # tokens are issued.
  for k in 0 1 2 3 4 5 6 7 8 9; do
    local at="(s.created_at + $k * 18000)"
    echo "INSERT INTO outstanding_tokens (jti, user_id, created_at, expires_at, session_id) \
      SELECT $(v7 "$at" s.user_id "$k"), s.user_id, $at, $at + 86400, s.id \
      FROM sessions s ORDER BY $at;"
  done
  echo "-- blacklisted_tokens"
  # As a logout's session revocation writes them: kept until the session expires.
  echo "INSERT INTO blacklisted_tokens (jti, blacklisted_at, expires_at) \
    SELECT o.jti, s.revoked_at, s.expires_at FROM sessions s \
    JOIN outstanding_tokens o ON o.session_id = s.id \
    WHERE s.revoked_at IS NOT NULL ORDER BY s.user_id, o.id;"
  echo "-- login_events"
  for k in 9 8 7 6 5 4 3 2 1 0; do
    local at="($now - $k * 18 * 86400 - 3600 - u % 86400)"
    echo "INSERT INTO login_events (user_id, succeeded, reason, client_addr, user_agent, at) \
      SELECT u, (u + $k) % 7 <> 0, CASE WHEN (u + $k) % 7 = 0 THEN 'wrong_password' END, \
        '10.' || ((u / 65536) % 256) || '.' || ((u / 256) % 256) || '.' || (u % 256), $user_agents, $at \
      FROM $series ORDER BY $at;"
  done
}

# Runs the load, printing each table's time as its statements finish.
timed() { # label, then the command reading SQL on standard input
  local label=$1 start end; shift
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  awk -v label="$label" -v a="$start" -v b="$end" 'BEGIN { printf "%-22s %8.1f s\n", label, b - a }' >&2
}
split_sql() { # the SQL of one part (users, sessions, …) of the dialect's load
  sql_for "$1" | awk -v part="$2" '/^-- / {on = ($2 == part); next} on' 
}

total_start=$(date +%s.%N)
if [ "$backend" = postgres ]; then
  existing=$(psql "$url" -Atqc "SELECT count(*) FROM users")
  [ "$existing" = 0 ] || { echo "the database holds $existing users already" >&2; exit 1; }
  for part in users sessions outstanding_tokens blacklisted_tokens login_events; do
    # One transaction per table; synchronous_commit off only in this session (nothing is
    # answered before the end anyway).
    timed "$part" psql "$url" -q -v ON_ERROR_STOP=1 -c "SET synchronous_commit = off" \
      -c "BEGIN" -f <(split_sql postgres "$part") -c "COMMIT" >/dev/null
  done
  # A database in service has been vacuumed: visibility map and hint bits set, statistics
  # gathered.
  timed "VACUUM ANALYZE" psql "$url" -q -v ON_ERROR_STOP=1 -c "VACUUM ANALYZE" >/dev/null
  sizes=$(psql "$url" -Atq -F ' ' -c "SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) \
    FROM pg_class WHERE relname IN ('users', 'sessions', 'outstanding_tokens', 'blacklisted_tokens', 'login_events') ORDER BY relname")
else
  file=${url#sqlite:}; file=${file#//}; file=${file%%\?*}
  existing=$(sqlite3 "$file" "SELECT count(*) FROM users")
  [ "$existing" = 0 ] || { echo "the database holds $existing users already" >&2; exit 1; }
  # No journal and no syncs while loading: a failed load is thrown away, not recovered.
  # Tollgate's WAL mode is restored at the end.
  sqlite3 "$file" "PRAGMA journal_mode = DELETE" >/dev/null
  run_sqlite() { # part
    { echo "PRAGMA synchronous = OFF; PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY; PRAGMA foreign_keys = ON; BEGIN;"
      # The row source, a table of this connection.
      echo "CREATE TEMP TABLE series AS WITH RECURSIVE c(u) AS (SELECT 1 UNION ALL SELECT u + 1 FROM c WHERE u < $users) SELECT u FROM c;"
      split_sql sqlite "$1"
      echo "COMMIT;"; } | sqlite3 -bail "$file"
  }
  for part in users sessions outstanding_tokens blacklisted_tokens login_events; do
    timed "$part" run_sqlite "$part"
  done
  timed "ANALYZE" sqlite3 "$file" "ANALYZE; PRAGMA journal_mode = WAL;" >/dev/null
  sizes=$(sqlite3 -separator ' ' "$file" "SELECT m.tbl_name, printf('%.0f MB', SUM(d.pgsize) / 1048576.0) \
    FROM dbstat d JOIN sqlite_master m ON m.name = d.name WHERE m.tbl_name IN ('users', 'sessions', \
    'outstanding_tokens', 'blacklisted_tokens', 'login_events') GROUP BY m.tbl_name ORDER BY m.tbl_name")
fi
total_end=$(date +%s.%N)
awk -v a="$total_start" -v b="$total_end" 'BEGIN { printf "%-22s %8.1f s\n", "total", b - a }' >&2
echo "sizes, indexes included:" >&2
echo "$sizes" | sed 's/^/  /' >&2
