#!/usr/bin/env bash
# Installs the Debian 12 packages Tierline needs to build, test, fuzz and run.
# Idempotent: when everything is already installed it does nothing at all;
# otherwise it runs `apt-get update` once and installs what is missing.
set -euo pipefail

packages=(
    build-essential cmake pkg-config git python3 ccache
    clang libclang-rt-14-dev
    libssl-dev libssh-dev libuv1-dev zlib1g-dev libsqlite3-dev libjansson-dev libcmocka-dev
    openssl openssh-client openssh-server asciinema
    curl prometheus scdoc man-db groff-base
    debootstrap
    eatmydata
    libmicrohttpd-dev nodejs chromium
)
# npm fetches the web view's player at build time (web/package-lock.json); Debian's npm package
# only when no npm came with the installed nodejs.
if ! command -v npm >/dev/null 2>&1; then
    packages+=(npm)
fi

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi
echo "Installing: ${missing[*]}"
"${sudo[@]}" apt-get update
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
