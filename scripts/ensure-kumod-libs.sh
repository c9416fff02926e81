#!/usr/bin/env bash
# The shared libraries a KumoMTA binary needs at run time (libssl3, libsqlite3-0, libstdc++6 on
# Debian 12), installed from the distribution's packages when the dynamic linker cannot find them.
set -euo pipefail
bin=${1:?usage: ensure-kumod-libs.sh /path/to/kumod}
say() { printf '[kumod] %s\n' "$*" >&2; }
missing=$(ldd "$bin" 2>/dev/null | awk '/not found/ { print $1 }')
[ -z "$missing" ] && exit 0
pkgs=()
for lib in $missing; do
  case "$lib" in
    libssl.so.3|libcrypto.so.3) pkgs+=(libssl3) ;;
    libsqlite3.so.0) pkgs+=(libsqlite3-0) ;;
    libstdc++.so.6) pkgs+=(libstdc++6) ;;
    libgcc_s.so.1) pkgs+=(libgcc-s1) ;;
    libz.so.1) pkgs+=(zlib1g) ;;
    *) say "error: $bin needs $lib, which this script does not know how to install"; exit 1 ;;
  esac
done
bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" kumod "${pkgs[@]}"
