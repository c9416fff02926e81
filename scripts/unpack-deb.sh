#!/usr/bin/env bash
# Unpack a Debian package's files into a directory without installing it (no maintainer scripts, so
# no daemon is started): for tools that ship inside server packages (smtp-source, promtool).
#   unpack-deb.sh <package> <dest>
set -euo pipefail
pkg=${1:?usage: unpack-deb.sh PACKAGE DEST}
dest=${2:?usage: unpack-deb.sh PACKAGE DEST}
printf '[tools] %s\n' "fetching Debian's $pkg package (unpacked under $dest, not installed)" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
( cd "$tmp" && apt-get download "$pkg" >/dev/null 2>&1 ) || {
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  ( cd "$tmp" && apt-get download "$pkg" >/dev/null 2>&1 )
}
mkdir -p "$dest"
dpkg -x "$tmp"/"$pkg"_*.deb "$dest"
