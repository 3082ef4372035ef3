#!/usr/bin/env bash
# Installs the Debian packages named on the command line that are not installed yet (one
# `apt-get update` first, only when something is missing; sudo when not root). Idempotent.
#   launch/apt-install.sh PACKAGE...
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0
printf '[apt-install] installing Debian packages: %s\n' "${missing[*]}" >&2
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" >&2
