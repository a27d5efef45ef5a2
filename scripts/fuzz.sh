#!/usr/bin/env bash
# Fuzzes the token decoder and the login body parser for a time budget each (default 60 s), in
# two ways, and fails on the first panic or wrong answer:
#
# 1. The seeded properties of `cargo test` (crates/tollgate-core/tests/decoder_properties.rs and
#    body::tests), run for the budget with a fresh seed. A failure prints its seed; replay it
#    with TOLLGATE_FUZZ_SEED=<seed>.
# 2. The coverage-guided libFuzzer targets in fuzz/ (token_decoder, login_body), starting from
#    the kept corpus in fuzz/corpus/<target>; what they find is merged back into it, minimized
#    (libFuzzer's -merge=1), so the corpus grows with coverage, not with runs. A crash leaves
#    its input in fuzz/artifacts/<target>/; replay it with
#    fuzz/target/x86_64-unknown-linux-gnu/release/<target> <file>.
#
#   scripts/fuzz.sh            # 60 s per target and per way
#   scripts/fuzz.sh 10         # 10 s each
#
# The targets build with stable Rust (the instrumentation flags cargo-fuzz passes, without a
# sanitizer); `cargo fuzz run token_decoder` works as well where cargo-fuzz is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
seed="${TOLLGATE_FUZZ_SEED:-$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}"
export TOLLGATE_FUZZ_SECONDS="$seconds" TOLLGATE_FUZZ_SEED="$seed"
echo "== seeded properties: ${seconds}s per target, seed ${seed}"
cargo test -p tollgate-core --test decoder_properties -- --nocapture
cargo test -p tollgate-core --lib body::tests::no_login_body_panics_or_fails_internally -- --nocapture
unset TOLLGATE_FUZZ_SECONDS TOLLGATE_FUZZ_SEED

echo "== libFuzzer targets: ${seconds}s each"
target_triple="$(rustc -vV | sed -n 's/^host: //p')"
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
  cargo build --release --bins --manifest-path fuzz/Cargo.toml --target "$target_triple"
for target in token_decoder login_body; do
  binary="fuzz/target/$target_triple/release/$target"
  corpus="fuzz/corpus/$target"
  found="$(mktemp -d)"
  merged="$(mktemp -d)"
  mkdir -p "$corpus" "fuzz/artifacts/$target"
  echo "-- $target"
  log="$(mktemp)"
  if ! "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="fuzz/artifacts/$target/" "$found" "$corpus" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "$target failed; its input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
  rm -f "$log"
  "$binary" -merge=1 "$merged" "$corpus" "$found" >/dev/null 2>&1
  rm -rf "$corpus" "$found"
  mv "$merged" "$corpus"
  echo "$target: no crash; corpus $(ls "$corpus" | wc -l) inputs"
done
