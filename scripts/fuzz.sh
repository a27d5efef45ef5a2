#!/usr/bin/env bash
# Runs the randomized properties of the token decoder and of the login body parser for a time
# budget each (default 60 s) with a fresh seed, and fails on the first panic or wrong answer.
# A failure prints its seed; replay it with TOLLGATE_FUZZ_SEED=<seed>.
#
#   scripts/fuzz.sh            # 60 s per target
#   scripts/fuzz.sh 10         # 10 s per target
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
seed="${TOLLGATE_FUZZ_SEED:-$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}"
export TOLLGATE_FUZZ_SECONDS="$seconds" TOLLGATE_FUZZ_SEED="$seed"
echo "fuzzing for ${seconds}s per target, seed ${seed}"
cargo test -p tollgate-core --test decoder_properties -- --nocapture
cargo test -p tollgate --lib api::body::tests::no_login_body_panics_or_fails_internally -- --nocapture
