#!/usr/bin/env bash
# `tollgate import-django` at scale: a Django SQLite database with N `auth_user` rows (the
# hashes of scripts/bench-large-data.sh: Django PBKDF2 and argon2id, copied) and N live
# simplejwt tokens, a tenth of them blacklisted, made by SQLite itself; then the import into a
# new Tollgate database, timed, with its peak memory (/usr/bin/time -v).
#
#   scripts/bench-import.sh [--postgres] [USERS]      default 1000000
set -euo pipefail
cd "$(dirname "$0")/.."
backend=sqlite; users=1000000
for arg in "$@"; do
  case "$arg" in
    --postgres) backend=postgres ;;
    *[!0-9]*) echo "usage: scripts/bench-import.sh [--postgres] [USERS]" >&2; exit 2 ;;
    *) users=$arg ;;
  esac
done
[ -x /usr/bin/time ] || { echo "/usr/bin/time is required (apt-get install time)" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "sqlite3 is required" >&2; exit 1; }
cargo build --release --quiet
binary="$PWD/target/release/tollgate"
work=$(mktemp -d)
cleanup() {
  if [ "$backend" = postgres ]; then psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
export TOLLGATE_LOG=warn
if [ "$backend" = postgres ]; then
  pg_admin="${TOLLGATE_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  pg_db="tollgate_import_$$"
  psql "$pg_admin" -qc "CREATE DATABASE $pg_db" >/dev/null
  export DATABASE_URL="${pg_admin%/*}/$pg_db"
else
  export DATABASE_URL="sqlite://$work/tollgate.db"
fi
"$binary" migrate >/dev/null

# Two hashes to copy, as scripts/bench-large-data.sh takes them.
pbkdf2=$(python3 -c 'import json; print(next(h["encoded"] for h in json.load(open("crates/tollgate-core/src/password/fixtures/django_hashes.json"))["hashes"] if h["encoded"].startswith("pbkdf2_sha256$600000$")))')
argon2=$(python3 -c 'import json; print(next(h["encoded"] for h in json.load(open("crates/tollgate-core/src/password/fixtures/django_hashes.json"))["hashes"] if h["encoded"].startswith("argon2$argon2id$")))')

# Django 4.2's tables as its migrations make them on SQLite; datetimes as Django writes them.
start=$(date +%s.%N)
sqlite3 -bail "$work/django.db" <<SQL
PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
CREATE TABLE "auth_user" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "password" varchar(128) NOT NULL,
  "last_login" datetime NULL, "is_superuser" bool NOT NULL, "username" varchar(150) NOT NULL UNIQUE,
  "last_name" varchar(150) NOT NULL, "email" varchar(254) NOT NULL, "is_staff" bool NOT NULL,
  "is_active" bool NOT NULL, "date_joined" datetime NOT NULL, "first_name" varchar(150) NOT NULL);
CREATE TABLE "token_blacklist_outstandingtoken" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,
  "token" text NOT NULL, "created_at" datetime NULL, "expires_at" datetime NOT NULL,
  "user_id" integer NULL REFERENCES "auth_user" ("id") DEFERRABLE INITIALLY DEFERRED,
  "jti" varchar(255) NOT NULL UNIQUE);
CREATE TABLE "token_blacklist_blacklistedtoken" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,
  "blacklisted_at" datetime NOT NULL,
  "token_id" bigint NOT NULL UNIQUE REFERENCES "token_blacklist_outstandingtoken" ("id") DEFERRABLE INITIALLY DEFERRED);
BEGIN;
CREATE TEMP TABLE series AS WITH RECURSIVE c(u) AS (SELECT 1 UNION ALL SELECT u + 1 FROM c WHERE u < $users) SELECT u FROM c;
INSERT INTO auth_user SELECT u, CASE WHEN u % 2 = 0 THEN '$argon2' ELSE '$pbkdf2' END,
  datetime('now', '-' || (u % 30) || ' days'), 0, 'user' || u, 'Number ' || u, 'user' || u || '@example.com',
  0, 1, datetime('now', '-' || (u % 1000) || ' days'), 'User' FROM series;
-- simplejwt keeps the whole token beside its jti: a stand-in of a refresh token's length.
INSERT INTO token_blacklist_outstandingtoken SELECT u, 'eyJ' || hex(randomblob(110)),
  datetime('now', '-1 hours'), datetime('now', '+23 hours'), u, lower(hex(randomblob(16))) FROM series;
INSERT INTO token_blacklist_blacklistedtoken SELECT u / 10, datetime('now', '-30 minutes'), u FROM series WHERE u % 10 = 0;
COMMIT;
SQL
echo "Django database with $users users and $users live tokens made in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s" >&2

/usr/bin/time -v "$binary" import-django --database "$work/django.db" >"$work/out.txt" 2>"$work/time.txt" \
  || { cat "$work/out.txt" "$work/time.txt" >&2; exit 1; }
grep -v '^\s*$' "$work/out.txt" | tail -3
elapsed=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$work/time.txt")
peak_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time.txt")
cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { print u + s }' "$work/time.txt")
awk -v n="$users" -v e="$elapsed" -v kb="$peak_kb" -v cpu="$cpu" -v backend="$backend" 'BEGIN {
  printf "import-django into %s: %d users and %d tokens in %.1f s (%.0f users/s counting the tokens'"'"' time too), %.1f s of CPU, peak RSS %.0f MB\n",
    backend, n, n, e, n / e, cpu, kb / 1024 }'
