#!/usr/bin/env bash
# Tools the test suite runs besides Node, PostgreSQL and Redis: a real Lua 5.4 interpreter (Debian's
# lua5.4), which executes the generated KumoMTA policy; swaks, a real SMTP client the gateway tests
# drive; openssl, which makes the gateway tests' certificate. Installed when missing and we may.
set -euo pipefail
missing=()
command -v lua5.4 >/dev/null 2>&1 || missing+=(lua5.4)
command -v swaks >/dev/null 2>&1 || missing+=(swaks libnet-ssleay-perl libio-socket-ssl-perl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
  bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" tools "${missing[@]}"
fi
bash "$(dirname "${BASH_SOURCE[0]}")/ensure-promtool.sh" >/dev/null
