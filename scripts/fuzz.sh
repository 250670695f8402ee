#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a bounded time.
#   scripts/fuzz.sh [SECONDS]   default 60 per target
# New inputs go to a scratch corpus under build/fuzz, seeded from the
# committed corpus in tests/fuzz/corpus; crashes are kept under build/fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
seconds=${1:-60}

cmake -S . -B build/fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DTIERLINE_FUZZ=ON
cmake --build build/fuzz -j "$(nproc)" --target fuzz_frame fuzz_msg

status=0
for target in frame msg; do
    work=build/fuzz/corpus-$target
    mkdir -p "$work" build/fuzz/artifacts
    echo "== fuzz_$target for ${seconds}s"
    if ! build/fuzz/bin/fuzz_$target -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix=build/fuzz/artifacts/ \
        "$work" tests/fuzz/corpus/$target; then
        echo "fuzz_$target FAILED: see build/fuzz/artifacts" >&2
        status=1
    fi
done
exit "$status"
