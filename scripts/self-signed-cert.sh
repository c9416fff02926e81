#!/usr/bin/env bash
# A self-signed certificate for the submission gateway when none is configured (local runs, tests):
# writes <dir>/cert.pem and <dir>/key.pem (mode 0600) for the given host name, unless they exist.
# Production gateways get a real certificate through CP_SMTP_TLS_CERT_FILE and CP_SMTP_TLS_KEY_FILE.
set -euo pipefail
dir=${1:?usage: self-signed-cert.sh DIR [HOSTNAME]}
name=${2:-localhost}
if [ -s "$dir/cert.pem" ] && [ -s "$dir/key.pem" ]; then exit 0; fi
command -v openssl >/dev/null 2>&1 || bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" tls openssl
mkdir -p "$dir"
(umask 077
 openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
   -subj "/CN=$name" -addext "subjectAltName=DNS:$name,IP:127.0.0.1" \
   -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null)
echo "[tls] made a self-signed certificate for $name in $dir" >&2
