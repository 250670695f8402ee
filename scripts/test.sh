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
if [ "$mode" = sanitize ]; then
    cmake -S . -B build/sanitize -DCMAKE_BUILD_TYPE=Debug -DTIERLINE_SANITIZE=ON
    build=build/sanitize
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
else
    cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release
    build=build/release
fi
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs"
