#!/usr/bin/env bash
# Postfix's smtp-source (load generator) and smtp-sink (the fastest plain SMTP server to compare with),
# taken from Debian's postfix package without installing it: installing would start a Postfix on port
# 25. Unpacked under .local/postfix; prints the directory holding the two programs and their libraries.
set -euo pipefail
root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dest="$root_dir/.local/postfix"
if [ ! -x "$dest/usr/sbin/smtp-source" ]; then
  say() { printf '[bench] %s\n' "$*" >&2; }
  say "fetching Debian's postfix package for smtp-source and smtp-sink"
  tmp=$(mktemp -d)
  ( cd "$tmp" && apt-get download postfix >/dev/null 2>&1 ) || {
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    ( cd "$tmp" && apt-get download postfix >/dev/null 2>&1 )
  }
  mkdir -p "$dest"
  dpkg -x "$tmp"/postfix_*.deb "$dest"
  rm -rf "$tmp"
fi
echo "$dest"
