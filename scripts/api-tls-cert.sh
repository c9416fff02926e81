#!/usr/bin/env bash
# A certificate for the control plane's API when none is configured: a local CA (<dir>/ca.pem, its key
# <dir>/ca-key.pem mode 0600) and a server certificate it signed (<dir>/cert.pem, <dir>/key.pem mode
# 0600) naming HOSTNAME, localhost, 127.0.0.1, ::1 and every further SAN given (DNS:name or IP:addr).
# Existing files are kept. Nodes trust the API by trusting <dir>/ca.pem (mta-nodes/README.md): kumod's
# HTTP client refuses a self-signed server certificate that is its own CA, hence a CA and a leaf.
# Production APIs get a real certificate through CP_HTTP_TLS_CERT_FILE and CP_HTTP_TLS_KEY_FILE.
set -euo pipefail
dir=${1:?usage: api-tls-cert.sh DIR [HOSTNAME] [SAN ...]}
name=${2:-localhost}
shift $(( $# >= 2 ? 2 : 1 ))
if [ -s "$dir/cert.pem" ] && [ -s "$dir/key.pem" ] && [ -s "$dir/ca.pem" ]; then exit 0; fi
command -v openssl >/dev/null 2>&1 || bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" tls openssl
mkdir -p "$dir"
san="DNS:$name,DNS:localhost,IP:127.0.0.1,IP:::1"
for extra in "$@"; do san="$san,$extra"; done
(umask 077
 cd "$dir"
 if [ ! -s ca.pem ] || [ ! -s ca-key.pem ]; then
   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
     -subj "/CN=kumo control plane local CA" -addext "basicConstraints=critical,CA:TRUE" \
     -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout ca-key.pem -out ca.pem 2>/dev/null
 fi
 openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$name" \
   -keyout key.pem -out cert.csr 2>/dev/null
 printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$san" >cert.ext
 openssl x509 -req -in cert.csr -CA ca.pem -CAkey ca-key.pem -set_serial "0x$(openssl rand -hex 16)" -days 825 \
   -extfile cert.ext -out cert.pem 2>/dev/null
 rm -f cert.csr cert.ext
 chmod 0644 ca.pem cert.pem)
echo "[tls] made an API certificate for $name ($san) in $dir, signed by $dir/ca.pem" >&2
