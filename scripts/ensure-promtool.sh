#!/usr/bin/env bash
# promtool, which checks the Prometheus alert rules, from Debian's prometheus package, unpacked under
# .local/prometheus rather than installed (installing would start a Prometheus server). Prints its path.
set -euo pipefail
root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest="$root_dir/.local/prometheus"
if command -v promtool >/dev/null 2>&1; then command -v promtool; exit 0; fi
if [ ! -x "$dest/usr/bin/promtool" ]; then
  printf '[tools] %s\n' "fetching Debian's prometheus package for promtool" >&2
  tmp=$(mktemp -d)
  ( cd "$tmp" && apt-get download prometheus >/dev/null 2>&1 ) || {
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    ( cd "$tmp" && apt-get download prometheus >/dev/null 2>&1 )
  }
  mkdir -p "$dest"
  dpkg -x "$tmp"/prometheus_*.deb "$dest"
  rm -rf "$tmp"
fi
echo "$dest/usr/bin/promtool"
