# `scripts/bench.sh --large`, sourced by scripts/bench.sh after its setup: its settings, its
# small database (with the bench user), its helpers (start_server, measure, run, table,
# replace_section) are this file's.
#
# The scenarios whose cost may grow with the database (the protected GET, verify, refresh with
# rotation, login, logout) on two servers side by side: one on the bench's small database, one
# on a large one. The checking scenarios alternate round by round, the others run back to back,
# and each large figure is given as a ratio to the small one of the same run.

[ "$smoke" = 1 ] && large_scale=1000
prepared=$large_prepared
small_url=$DATABASE_URL
seconds=${duration%s}
logout_seconds=$(( seconds / 2 > 0 ? seconds / 2 : 1 ))
mint_seconds=$(( logout_seconds * 2 ))

# The large database: a copy of the prepared one, or made now.
load_start=$(date +%s.%N)
if [ "$backend" = postgres ]; then
  large_db="tollgate_bench_$$_large"
  if [ -n "$prepared" ]; then
    # CREATE DATABASE … TEMPLATE copies the files: the prepared database stays as it was.
    template=${prepared##*/}; template=${template%%\?*}
    psql "$pg_admin" -qc "CREATE DATABASE $large_db TEMPLATE $template" >/dev/null
  else
    psql "$pg_admin" -qc "CREATE DATABASE $large_db" >/dev/null
  fi
  pg_dbs+=("$large_db")
  large_url="${pg_admin%/*}/$large_db"
  count_users() { psql "$large_url" -Atqc "SELECT count(*) FROM users"; }
else
  large_url="sqlite://$work/large.db"
  if [ -n "$prepared" ]; then
    cp "$prepared" "$work/large.db"
    if [ -f "$prepared-wal" ]; then cp "$prepared-wal" "$work/large.db-wal"; fi
  fi
  count_users() { sqlite3 "$work/large.db" "SELECT count(*) FROM users"; }
fi
if [ -n "$prepared" ]; then
  generated="a copy of $prepared"
else
  BENCH_BINARY="$binary" scripts/bench-large-data.sh --scale "$large_scale" "$large_url" 2>"$work/generated.txt" \
    || { cat "$work/generated.txt" >&2; exit 1; }
  cat "$work/generated.txt" >&2
  generated="made by \`scripts/bench-large-data.sh --scale $large_scale\`"
fi
load_seconds=$(awk -v a="$load_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
large_users=$(count_users)
[ "$large_users" -ge 10 ] || { echo "the large database holds $large_users users" >&2; exit 1; }
DATABASE_URL="$large_url" TOLLGATE_USER_PASSWORD=bench-password \
  "$binary" createuser --username bench --no-input >/dev/null

# An API key on each database, to have tokens issued for the logout scenario.
api_key() { DATABASE_URL="$1" "$binary" apikey create --name bench --scope tokens:issue 2>/dev/null; }
small_key=$(api_key "$small_url")
large_key=$(api_key "$large_url")

start_server small DATABASE_URL="$small_url"
start_start=$(date +%s.%N)
start_server large DATABASE_URL="$large_url" TOLLGATE_REDIS_KEY_PREFIX="${TOLLGATE_REDIS_KEY_PREFIX:-}large:"
redis_fill=""
if [ "$backend" = postgres ]; then
  # The large server copies every live blacklisted jti into Redis before it trusts Redis; until
  # then its blacklist checks go to PostgreSQL. Measured from its start.
  for prefix in "$TOLLGATE_REDIS_KEY_PREFIX" "${TOLLGATE_REDIS_KEY_PREFIX}large:"; do
    for _ in $(seq 1 6000); do
      [ "$(redis-cli -u "$redis_url" EXISTS "${prefix}denylist:synced")" = 1 ] && break
      sleep 0.1
    done
    [ "$(redis-cli -u "$redis_url" EXISTS "${prefix}denylist:synced")" = 1 ] \
      || { echo "Redis was not filled for $prefix within 600 s" >&2; exit 1; }
  done
  redis_fill=$(awk -v a="$start_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
fi

login='{"username":"bench","password":"bench-password"}'
access_of() {
  curl -sf -X POST "$1/api/token/" -H 'Content-Type: application/json' -d "$login" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])'
}
small_access=$(access_of "$small")
large_access=$(access_of "$large")
# Two rotation chains per connection, each of its own user: on the small database users
# registered now (as the usual bench does); on the large one generated users spread over the
# whole id range, even ids (argon2id hashes: logging them in rehashes nothing).
python3 - "$small" "$large" $((connections * 2)) "$large_users" "$work" <<'PY'
import json, sys, urllib.request
small, large, chains, users, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def post(base, path, body):
    request = urllib.request.Request(base + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)
with open(f"{work}/tokens-small.txt", "w") as out:
    for n in range(chains):
        credentials = {"username": f"bench-{n}", "password": "bench-password"}
        post(small, "/api/users/", credentials)
        print(post(small, "/api/token/", credentials)["refresh"], file=out)
with open(f"{work}/tokens-large.txt", "w") as out:
    for n in range(chains):
        user = 2 * max(1, (n * users // chains) // 2)
        credentials = {"username": f"user{user}", "password": "correct horse battery staple"}
        print(post(large, "/api/token/", credentials)["refresh"], file=out)
PY

for round in $(seq 1 "$rounds"); do
  # Each pair in the other order every other round, so that a drifting machine favours neither.
  order=(small large); [ $((round % 2)) = 0 ] && order=(large small)
  for db in "${order[@]}"; do
    base_url=${!db}; access_var="${db}_access"
    run_duration=$round_duration measure "protected GET, $db" "$round" -H "Authorization: Bearer ${!access_var}" "$base_url/api/index/"
  done
  for db in "${order[@]}"; do
    base_url=${!db}; access_var="${db}_access"
    BENCH_BODY="{\"token\":\"${!access_var}\"}" run_duration=$round_duration measure "verify, $db" "$round" -s scripts/bench/post.lua "$base_url/api/token/verify/"
  done
done
for db in small large; do
  BENCH_TOKENS="$work/tokens-$db.txt" run "refresh (rotate + blacklist), $db" -s scripts/bench/refresh.lua "${!db}/api/token/refresh/"
done
for db in small large; do
  BENCH_BODY="$login" run "login (argon2id default cost), $db" -s scripts/bench/post.lua "${!db}/api/token/"
done
# Logout spends a token of its own session on every request: sessions are opened first with
# the API key (small: the registered users; large: any user), then logged out.
for db in small large; do
  key_var="${db}_key"; ids="2-$((connections * 2 + 1))"
  [ "$db" = large ] && ids="1-$large_users"
  BENCH_API_KEY=${!key_var} BENCH_USER_IDS=$ids BENCH_OUT="$work/logout-$db" \
    wrk -t"$threads" -c"$connections" -d"${mint_seconds}s" -s scripts/bench/issue.lua "${!db}/api/token/issue/" >/dev/null
  echo "sessions opened for logout, $db: $(cat "$work/logout-$db".* | wc -l)" >&2
done
for db in small large; do
  BENCH_TOKENS="$work/logout-$db" run_duration="${logout_seconds}s" measure "logout, $db" 1 -s scripts/bench/logout.lua "${!db}/api/token/blacklist/" \
    || { echo "(a logout refused: the tokens opened in ${mint_seconds} s ran out; a thread sends \"exhausted\" then)" >&2; exit 1; }
done
table

# Large over small: the median of the rounds' ratios for the checking scenarios (each round's
# pair side by side), the one ratio for the others.
large_ratio() { # scenario name without its database
  python3 - "${rps["$1, large"]}" "${rps["$1, small"]}" <<'PY'
import statistics, sys
large, small = ([float(x) for x in arg.split()] for arg in sys.argv[1:])
ratios = [l / s for l, s in zip(large, small)]
spread = f" (rounds: {', '.join(f'{r * 100:.0f} %' for r in ratios)})" if len(ratios) > 1 else ""
print(f"{statistics.median(ratios) * 100:.0f} %{spread}")
PY
}
refresh_p99_ratio=$(awk -v l="${p99_ms["refresh (rotate + blacklist), large#1"]}" -v s="${p99_ms["refresh (rotate + blacklist), small#1"]}" \
  'BEGIN { printf "%.2f× (%.2f ms against %.2f ms)", l / s, l, s }')
{
  echo "Large database: $(thousands "$large_users") users, $generated ($load_seconds s, loading included)."
  if [ -n "$redis_fill" ]; then
    echo "The large server's start, with its Redis denylist filled from the database: $redis_fill s."
  fi
  echo
  cat "$results"
  echo
  echo "Large / small (target: within 20 %, i.e. at least 80 %):"
  echo
  echo "- protected GET: $(large_ratio "protected GET")"
  echo "- verify: $(large_ratio "verify")"
  echo "- refresh (rotate + blacklist): $(large_ratio "refresh (rotate + blacklist)")"
  echo "- login: $(large_ratio "login (argon2id default cost)")"
  echo "- logout: $(large_ratio "logout")"
  echo "- refresh p99, large / small (target: under 2×): $refresh_p99_ratio"
} | tee "$work/summary.md"
if [ -f "$work/generated.txt" ]; then
  { echo; echo "Loading, by table:"; echo; echo '```'; cat "$work/generated.txt"; echo '```'; } >>"$work/summary.md"
fi

if [ "$smoke" = 0 ]; then
  cp "$work/summary.md" "target/bench-large-$backend.md"
  if [ "$backend" = postgres ]; then
    title="Large database, PostgreSQL + Redis (\`scripts/bench.sh --large --postgres\`)"
  else
    title="Large database, embedded SQLite (\`scripts/bench.sh --large\`)"
  fi
  {
    echo "## $title, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "$(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), wrk -t$threads -c$connections on" \
      "loopback; two servers side by side, one on the bench's small database and one on the large one;" \
      "$rounds alternating rounds of $round_duration for the protected GET and verify, $duration for refresh" \
      "and login, ${logout_seconds} s for logout (on sessions opened just before with an API key)."
    echo
    cat "$work/summary.md"
  } >"$work/section.md"
  replace_section "large-$backend" "$work/section.md"
  echo "results written to target/bench-large-$backend.md and BENCHMARKS.md" >&2
fi
