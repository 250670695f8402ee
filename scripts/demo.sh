#!/usr/bin/env bash
# The quick start's main job: installs dependencies, builds a release, then
# runs a relay and an enrolled agent on loopback with the embedded SQLite
# store, opens a demo ticket with the machine's diagnostics, and prints how
# to look at it. Runs until Ctrl-C; with --once it stops after the demo.
#   scripts/demo.sh [--once] [--dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

once=0
dir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --once) once=1 ;;
        --dir) dir=$2; shift ;;
        *) echo "usage: scripts/demo.sh [--once] [--dir DIR]" >&2; exit 2 ;;
    esac
    shift
done

bash scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc)" >/dev/null
bin=$PWD/build/release/bin

[ -n "$dir" ] || dir=$(mktemp -d /tmp/tierline-demo.XXXXXX)
mkdir -p "$dir"
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
ssh_port=$(free_port)
relay_dir=$dir/relay
agent_dir=$dir/agent
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo "== relay: init and serve on 127.0.0.1:$port, technicians' SSH on 127.0.0.1:$ssh_port (data in $relay_dir)"
"$bin/tierline-relay" init --data "$relay_dir" --listen "127.0.0.1:$port"
echo "== the knowledge base: the articles Tierline ships"
"$bin/tierline-relay" kb add kb/*.md --data "$relay_dir"
echo "== a technician account: alice (tier2), with a new SSH key"
ssh-keygen -q -t ed25519 -N "" -C alice@demo -f "$dir/alice"
"$bin/tierline-relay" user add alice --role tier2 --key "$dir/alice.pub" --data "$relay_dir"
"$bin/tierline-relay" serve --data "$relay_dir" --ssh-listen "127.0.0.1:$ssh_port" 2>"$dir/relay.log" &
pids+=($!)
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$ssh_port") 2>/dev/null && break
    sleep 0.1
done

echo "== agent: enroll with a one-time code, then run"
string=$("$bin/tierline-relay" enroll-code --data "$relay_dir" --ttl 10m --note demo 2>/dev/null)
"$bin/tierline-agent" enroll "$string" --state "$agent_dir"
"$bin/tierline-agent" run --state "$agent_dir" 2>"$dir/agent.log" &
pids+=($!)
for _ in $(seq 100); do
    "$bin/tierline-agent" status --state "$agent_dir" --json 2>/dev/null | grep -q '"connected": true' && break
    sleep 0.1
done

echo "== user: asks for help"
ticket=$("$bin/tierline-agent" help "Demo: the printer says it is offline" --state "$agent_dir")

echo
"$bin/tierline-relay" ticket show "$ticket" --data "$relay_dir"
echo
"$bin/tierline-relay" audit-verify --data "$relay_dir"
"$bin/tierline-relay" host-key --data "$relay_dir" --known-hosts "127.0.0.1:$ssh_port" >"$dir/known_hosts"
ssh_opts=(-i "$dir/alice" -p "$ssh_port" -o UserKnownHostsFile="$dir/known_hosts" -o StrictHostKeyChecking=yes -o BatchMode=yes)
echo
echo "== technician: alice lists the tickets over SSH"
ssh "${ssh_opts[@]}" alice@127.0.0.1 tickets
cat <<INFO

Tierline is running: relay on 127.0.0.1:$port, device enrolled, ticket $ticket open.
A technician connects with the stock OpenSSH client ($dir/known_hosts pins
the relay's host key, written by \`tierline-relay host-key --known-hosts\`):
  ssh ${ssh_opts[*]} alice@127.0.0.1 help
  ssh ${ssh_opts[*]} alice@127.0.0.1 ticket show $ticket
An admin on the relay host reads the store directly:
  $bin/tierline-relay tickets --data $relay_dir
  $bin/tierline-relay ticket show $ticket --data $relay_dir
  $bin/tierline-relay devices --data $relay_dir
The user opens more tickets with:
  $bin/tierline-agent help "what is wrong" --state $agent_dir
Logs: $dir/relay.log, $dir/agent.log
INFO

if [ "$once" -eq 1 ]; then
    exit 0
fi
echo "Press Ctrl-C to stop."
wait
