#!/usr/bin/env bash
# Tools the test suite runs besides Node, PostgreSQL and Redis: a real Lua 5.4 interpreter (Debian's
# lua5.4), which executes the generated KumoMTA policy. Installed when missing and we may.
set -euo pipefail
say() { printf '[tools] %s\n' "$*" >&2; }
if ! command -v lua5.4 >/dev/null 2>&1; then
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then
    if sudo -n true 2>/dev/null; then sudo_cmd="sudo"; else say "error: lua5.4 is missing and cannot be installed (need root or passwordless sudo)"; exit 1; fi
  fi
  say "installing lua5.4 from the distribution's packages"
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lua5.4 >&2
fi
