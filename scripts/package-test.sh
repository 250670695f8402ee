#!/usr/bin/env bash
# The Debian packages, installed for real: builds them (cpack in the release
# build, prefix /usr), makes a fresh Debian 12 root with debootstrap (minbase,
# from this machine's apt mirror; the root is kept as build/debian12-root.tar.gz
# so later runs only unpack it), installs tierline-relay, tierline-agent and
# tierline there with `apt-get install ./….deb`, checks the installed units
# with systemd-analyze verify, runs the relay and the agent as their units
# would (ExecStart, as the unit's user, with setpriv) on loopback, enrolls
# the agent, opens a ticket, reads it with the stock ssh, then purges the
# packages and checks that nothing is left: no user, no /var/lib/tierline,
# no /etc/tierline. Needs root (debootstrap, chroot, mount).
#   scripts/package-test.sh [--keep]     --keep leaves the root in build/package-root
set -euo pipefail
cd "$(dirname "$0")/.."

keep=0
case "${1:-}" in
    "") ;;
    --keep) keep=1 ;;
    *) echo "usage: scripts/package-test.sh [--keep]" >&2; exit 2 ;;
esac
if [ "$(id -u)" -ne 0 ]; then
    echo "package-test: needs root (debootstrap, chroot, mount)" >&2
    exit 2
fi
start=$(date +%s)
bash scripts/deps.sh

echo "== packages: cpack in build/release (prefix /usr)"
build=build/release
# Only what the packages hold is built here; cpack's own "preinstall" pass over every target
# (the tests' too) is skipped, which on a busy machine took longer than the rest of the test.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
    -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target tierline-relay tierline-agent tierline \
    tierline-man >/dev/null
rm -rf "$build/packages"
(cd "$build" && cpack -G DEB >/dev/null)
debs=("$build"/packages/*.deb)
[ "${#debs[@]}" -eq 3 ] || { echo "package-test: expected 3 packages, got: ${debs[*]}" >&2; exit 1; }
printf '   %s\n' "${debs[@]##*/}"

# ---- the root ---------------------------------------------------------------------------------
# The mirror this machine's apt uses for bookworm (deb822 .sources or one-line .list).
mirror() {
    local uri
    uri=$(awk '/^URIs:/ {uri=$2} /^Suites:/ && / bookworm( |$)/ {print uri; exit}' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    if [ -z "$uri" ]; then
        uri=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

tarball=build/debian12-root.tar.gz
root=$PWD/build/package-root
mounted=()
pids=()
keys=""
cleanup() {
    local status=$?
    [ -z "$keys" ] || rm -rf "$keys"
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    # Innermost first; a busy mount is detached rather than left behind.
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" 2>/dev/null || true
    done
    if [ "$keep" -eq 0 ] && ! grep -q " $root/" /proc/mounts; then
        rm -rf "$root"
    fi
    exit "$status"
}
trap cleanup EXIT INT TERM
mount_in_root() { # TYPE SOURCE TARGET [OPTIONS]
    mkdir -p "$root$3"
    mount ${4:+-o "$4"} -t "$1" "$2" "$root$3"
    mounted+=("$root$3")
}

# What the packages will need from the archive, installed once in the cached root so that a
# run downloads nothing: the libraries dpkg-shlibdeps named, adduser, init-system-helpers.
root_packages=adduser,init-system-helpers,libssl3,libssh-4,libuv1,libsqlite3-0,libjansson4,zlib1g
if [ ! -f "$tarball" ]; then
    echo "== a Debian 12 root (debootstrap minbase from $(mirror)), kept as $tarball"
    rm -rf "$root" "$root.new"
    debootstrap --variant=minbase --include="$root_packages" bookworm "$root.new" "$(mirror)" \
        >build/debootstrap.log 2>&1 || { tail -20 build/debootstrap.log >&2; exit 1; }
    tar -C "$root.new" -czf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root.new"
fi
echo "== the root: unpack $tarball"
rm -rf "$root"
mkdir -p "$root"
tar -C "$root" -xzf "$tarball"
mount_in_root proc proc /proc
mount_in_root sysfs sysfs /sys
mount_in_root devtmpfs udev /dev
mount_in_root devpts devpts /dev/pts newinstance,ptmxmode=0666
mount_in_root tmpfs tmpfs /run mode=0755
# A command in the root, with a clean environment. Programs started in the background are
# started with the same words spelt out, not through a function: $! must be the program's pid
# (chroot, env and setpriv exec one another), not a subshell's.
root_env=(/usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root)
in_root() { chroot "$root" "${root_env[@]}" "$@"; }

echo "== install: apt-get install ./*.deb"
mkdir -p "$root/tmp/packages"
cp "${debs[@]}" "$root/tmp/packages/"
in_root sh -c 'cd /tmp/packages && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends ./*.deb' >build/package-install.log 2>&1 ||
    { tail -30 build/package-install.log >&2; exit 1; }
for program in tierline-relay tierline-agent tierline; do
    in_root "$program" --version >/dev/null
done
in_root getent passwd tierline | grep -q '^tierline:.*:/usr/sbin/nologin$' ||
    { echo "package-test: no system user tierline" >&2; exit 1; }
# Owners by the root's own user database, not this machine's.
owner=$(in_root stat -c '%U:%G %a' /var/lib/tierline)
[ "$owner" = "tierline:tierline 750" ] ||
    { echo "package-test: /var/lib/tierline is $owner, expected tierline:tierline 750" >&2; exit 1; }
[ -d "$root/etc/tierline" ] || { echo "package-test: no /etc/tierline" >&2; exit 1; }
for page in tierline-relay.8 tierline-agent.8 tierline.1; do
    [ -f "$root/usr/share/man/man${page##*.}/$page" ] ||
        { echo "package-test: man page $page not installed" >&2; exit 1; }
done

echo "== the installed units: systemd-analyze verify"
# The root has no systemd: the installed units are checked by this machine's, their programs
# taken from the root (verify checks that each ExecStart's program is there).
units=$(mktemp -d /tmp/tl-units.XXXXXX)
for unit in tierline-relay.service tierline-agent.service; do
    sed "s|/usr/bin/|$root/usr/bin/|g" "$root/lib/systemd/system/$unit" >"$units/$unit"
    out=$(systemd-analyze verify --man=no "$units/$unit" 2>&1) ||
        { echo "package-test: systemd-analyze verify $unit failed:" >&2; echo "$out" >&2; exit 1; }
    if grep -F "$unit" <<<"$out" >&2; then
        echo "package-test: systemd-analyze verify complains about $unit" >&2
        exit 1
    fi
done
rm -rf "$units"

# ---- run as the units would -------------------------------------------------------------------
# A unit's ExecStart, and a shell line that runs it with its EnvironmentFile's variables, as
# systemd would (a missing "-" file counts as empty).
exec_start() {
    sed -n 's/^ExecStart=//p' "$root/lib/systemd/system/$1"
}
with_environment() {
    local file
    file=$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' "$root/lib/systemd/system/$1")
    echo "set -a; if [ -f $file ]; then . $file; fi; set +a; exec $(exec_start "$1")"
}
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# The relay unit's User=, Group=, NoNewPrivileges= and empty capability sets.
relay_user=(setpriv --reuid=tierline --regid=tierline --init-groups --no-new-privs
    --inh-caps=-all --bounding-set=-all)
as_relay_user() { in_root "${relay_user[@]}" "$@"; }
port=$(free_port)
ssh_port=$(free_port)
metrics_port=$(free_port)
web_port=$(free_port)
# An operator's settings: metrics in relay.conf, the web view as an extra option of the unit.
echo "metrics_listen = 127.0.0.1:$metrics_port" >>"$root/etc/tierline/relay.conf"
echo "TIERLINE_RELAY_OPTIONS=\"--web-listen 127.0.0.1:$web_port\"" \
    >"$root/etc/default/tierline-relay"
relay_exec=$(exec_start tierline-relay.service)
agent_exec=$(exec_start tierline-agent.service)
echo "== relay: init as tierline, then its ExecStart: $relay_exec"
as_relay_user tierline-relay init --data /var/lib/tierline --listen "127.0.0.1:$port" \
    --ssh-listen "127.0.0.1:$ssh_port" >/dev/null
# The technician's account before serve, as the quick start does (a serving relay would see it
# within a second, docs/technicians.md, which this need not wait for).
keys=$(mktemp -d /tmp/tl-package.XXXXXX)
ssh-keygen -q -t ed25519 -N "" -C alice@package-test -f "$keys/alice"
cp "$keys/alice.pub" "$root/tmp/alice.pub"
as_relay_user tierline-relay user add alice --role tier2 --key /tmp/alice.pub \
    --data /var/lib/tierline >/dev/null
# UMask=0027 and the unit's user, no capabilities, no new privileges.
chroot "$root" "${root_env[@]}" "${relay_user[@]}" \
    sh -c "umask 0027 && $(with_environment tierline-relay.service)" \
    </dev/null >/dev/null 2>build/package-relay.log &
pids+=($!)
for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
        (exec 3<>"/dev/tcp/127.0.0.1/$ssh_port") 2>/dev/null && break
    kill -0 "${pids[0]}" 2>/dev/null || { cat build/package-relay.log >&2; exit 1; }
    sleep 0.1
done

echo "== agent: enroll, then its ExecStart: $agent_exec"
string=$(as_relay_user tierline-relay enroll-code --data /var/lib/tierline --ttl 10m 2>/dev/null)
in_root tierline-agent enroll "$string" --state /var/lib/tierline-agent >/dev/null
chroot "$root" "${root_env[@]}" sh -c "umask 0077 && $(with_environment tierline-agent.service)" \
    </dev/null >/dev/null 2>build/package-agent.log &
pids+=($!)
connected=0
for _ in $(seq 200); do
    if in_root tierline-agent status --state /var/lib/tierline-agent --json 2>/dev/null |
        grep -q '"connected": true'; then
        connected=1
        break
    fi
    sleep 0.1
done
[ "$connected" -eq 1 ] || { echo "package-test: the agent did not connect" >&2;
    cat build/package-agent.log >&2; exit 1; }
ticket=$(in_root tierline-agent help "Package test: the printer says it is offline" \
    --state /var/lib/tierline-agent --no-self-help --no-wait)
echo "   ticket $ticket"

echo "== technician: reads $ticket with the stock ssh"
as_relay_user tierline-relay host-key --data /var/lib/tierline \
    --known-hosts "127.0.0.1:$ssh_port" >"$keys/known_hosts"
shown=$(ssh -i "$keys/alice" -p "$ssh_port" -o UserKnownHostsFile="$keys/known_hosts" \
    -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=20 \
    alice@127.0.0.1 ticket show "$ticket")
grep -q "the printer says it is offline" <<<"$shown" ||
    { echo "package-test: ticket show $ticket did not show the ticket:" >&2; echo "$shown" >&2; exit 1; }

echo "== metrics: scraped, and the text checked by promtool"
curl -fsS "http://127.0.0.1:$metrics_port/metrics" >build/package-metrics.txt
promtool check metrics <build/package-metrics.txt >/dev/null 2>&1 ||
    { echo "package-test: promtool check metrics failed" >&2;
      promtool check metrics <build/package-metrics.txt >&2; exit 1; }
grep -q '^tierline_agents_connected 1$' build/package-metrics.txt ||
    { echo "package-test: the metrics do not count the connected agent" >&2; exit 1; }

echo "== web view: a one-time link signs in; the packaged player is served"
link=$(ssh -i "$keys/alice" -p "$ssh_port" -o UserKnownHostsFile="$keys/known_hosts" \
    -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=20 alice@127.0.0.1 web |
    head -1)
case "$link" in
    "http://127.0.0.1:$web_port/signin?token="*) ;;
    *) echo "package-test: web printed no link: $link" >&2; exit 1 ;;
esac
signin=$(curl -sS -o /dev/null -D - "$link")
grep -qi '^set-cookie: .*HttpOnly.*SameSite=Strict' <<<"$signin" ||
    { echo "package-test: the link set no session cookie:" >&2; echo "$signin" >&2; exit 1; }
cookie=$(sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\);.*/\1/p' <<<"$signin")
curl -fsS -H "Cookie: $cookie" "http://127.0.0.1:$web_port/ticket/$ticket" |
    grep -q "the printer says it is offline" ||
    { echo "package-test: the signed-in ticket page does not show $ticket" >&2; exit 1; }
curl -fsS -H "Cookie: $cookie" -o /dev/null "http://127.0.0.1:$web_port/static/asciinema-player.min.js" ||
    { echo "package-test: the packaged recording player is not served" >&2; exit 1; }
rm -rf "$keys"
as_relay_user tierline-relay audit-verify --data /var/lib/tierline >/dev/null

echo "== stop, purge, nothing left"
for pid in "${pids[@]}"; do kill -TERM "$pid"; done
for pid in "${pids[@]}"; do
    wait "$pid" || { echo "package-test: a program did not stop cleanly (exit $?)" >&2; exit 1; }
done
pids=()
in_root sh -c 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -q tierline-relay tierline-agent \
    tierline' >build/package-purge.log 2>&1 || { tail -30 build/package-purge.log >&2; exit 1; }
left=()
in_root getent passwd tierline >/dev/null && left+=("the user tierline")
in_root getent group tierline >/dev/null && left+=("the group tierline")
for path in /var/lib/tierline /var/lib/tierline-agent /etc/tierline /usr/bin/tierline-relay \
    /lib/systemd/system/tierline-relay.service /usr/share/tierline; do
    [ -e "$root$path" ] && left+=("$path")
done
while IFS= read -r path; do left+=("$path"); done < <(cd "$root" &&
    find etc/systemd var/lib/systemd -name '*tierline*' 2>/dev/null)
if in_root dpkg-query -W -f='${Package} ${Status}\n' 2>/dev/null | grep '^tierline'; then
    left+=("packages in dpkg's database")
fi
if [ "${#left[@]}" -ne 0 ]; then
    printf 'package-test: left after purge: %s\n' "${left[@]}" >&2
    exit 1
fi
echo "== package test passed in $(($(date +%s) - start))s"
