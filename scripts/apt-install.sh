#!/usr/bin/env bash
# Install Debian packages the scripts need: as root, or with passwordless sudo; otherwise say what is
# missing and fail. Usage: apt-install.sh <why> <package>...
set -euo pipefail
why=$1; shift
say() { printf '[%s] %s\n' "$why" "$*" >&2; }
sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then sudo_cmd="sudo"; else say "error: $* missing and cannot be installed (need root or passwordless sudo)"; exit 1; fi
fi
say "installing $* from the distribution's packages"
$sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
$sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
