#!/usr/bin/env bash
# Installs dependencies, builds and runs the whole test suite.
#   scripts/test.sh             release build (-Werror), build/release
#   scripts/test.sh --sanitize  AddressSanitizer + UBSan build, build/sanitize
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

mode=release
case "${1:-}" in
    "") ;;
    --sanitize) mode=sanitize ;;
    *) echo "usage: scripts/test.sh [--sanitize]" >&2; exit 2 ;;
esac

jobs=$(nproc)
# One test case at a time per core (TL_TEST_JOBS overrides): several integration cases time
# their waits for processes started under load, so more at once is not worth a flaky run.
test_jobs=$jobs
# ccache, when installed, makes a rebuild of unchanged sources a copy.
launcher=()
if command -v ccache > /dev/null; then
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
if [ "$mode" = sanitize ]; then
    cmake -S . -B build/sanitize -DCMAKE_BUILD_TYPE=Debug -DTIERLINE_SANITIZE=ON "${launcher[@]}"
    build=build/sanitize
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
else
    cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release "${launcher[@]}"
    build=build/release
fi
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "${TL_TEST_JOBS:-$test_jobs}"
