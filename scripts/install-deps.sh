#!/usr/bin/env bash
# Installs the Debian packages hermesfs builds and tests with, only when some
# are missing. Quiet and fast when everything is present.
set -euo pipefail
PKGS=(build-essential pkg-config libfuse3-dev fuse3 libsqlite3-dev libssh2-1-dev
      libarchive-dev libssl-dev libxxhash-dev libcmocka-dev openssh-server
      openssh-client rsync fio fuse-overlayfs sqlite3 clang)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
