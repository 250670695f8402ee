#!/usr/bin/env bash
# The quick start's main job: installs dependencies, builds a release and runs
# what this release provides. Today that is the protocol library with its
# programs' --version; as the relay and agent land, this starts a relay with
# an enrolled agent on loopback and prints how a technician connects.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc)" >/dev/null

bin=build/release
echo
for prog in tierline-relay tierline-agent tierline; do
    "$bin/$prog" --version
done
echo
echo "Built: $bin/tierline-relay, $bin/tierline-agent, $bin/tierline"
echo "This release holds the protocol library (framing, messages, channel"
echo "multiplexing, TLS 1.3 transport, keys); the relay and agent commands come next."
