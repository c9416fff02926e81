#!/usr/bin/env bash
# Tools the test suite runs besides Node, PostgreSQL and Redis: a real Lua 5.4 interpreter (Debian's
# lua5.4), which executes the generated KumoMTA policy; swaks, a real SMTP client the gateway tests
# drive; openssl, which makes the gateway tests' certificate. Installed when missing and we may.
set -euo pipefail
say() { printf '[tools] %s\n' "$*" >&2; }
missing=()
command -v lua5.4 >/dev/null 2>&1 || missing+=(lua5.4)
command -v swaks >/dev/null 2>&1 || missing+=(swaks libnet-ssleay-perl libio-socket-ssl-perl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then
    if sudo -n true 2>/dev/null; then sudo_cmd="sudo"; else say "error: ${missing[*]} missing and cannot be installed (need root or passwordless sudo)"; exit 1; fi
  fi
  say "installing ${missing[*]} from the distribution's packages"
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
bash "$(dirname "${BASH_SOURCE[0]}")/ensure-promtool.sh" >/dev/null
