#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a bounded time.
#   scripts/fuzz.sh [TOTAL_SECONDS [TARGET...]]
# TOTAL_SECONDS (default 120) is shared evenly by the targets run (every
# target by default, at least 5 s each), so adding a target does not make CI
# longer. `scripts/fuzz.sh 3600 audit` fuzzes one target for an hour.
# New inputs go to a scratch corpus under build/fuzz, seeded from the
# committed corpus in tests/fuzz/corpus; crashes are kept under build/fuzz.
# docs/fuzzing.md lists the targets and how to run them for longer.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every tests/fuzz/fuzz_NAME.c is a target (tests/CMakeLists.txt registers each).
all_targets=()
for source in tests/fuzz/fuzz_*.c; do
    name=${source#tests/fuzz/fuzz_}
    all_targets+=("${name%.c}")
done

total=${1:-120}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=("${all_targets[@]}")
fi
for target in "${targets[@]}"; do
    if [ ! -f "tests/fuzz/fuzz_$target.c" ]; then
        echo "fuzz.sh: no fuzz target '$target' (known: ${all_targets[*]})" >&2
        exit 2
    fi
done
seconds=$(( total / ${#targets[@]} ))
if [ "$seconds" -lt 5 ]; then
    seconds=5
fi

bash scripts/deps.sh

launcher=()
if command -v ccache > /dev/null; then
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build/fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DTIERLINE_FUZZ=ON \
    "${launcher[@]}"
cmake --build build/fuzz -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

status=0
for target in "${targets[@]}"; do
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
