#!/usr/bin/env bash
# Run the control plane (every role: admin API, policy and event endpoints, background workers, SMTP
# submission gateway) on this machine. Installs what is missing, starts a private PostgreSQL and Redis unless DATABASE_URL and
# REDIS_URL are given, generates local secrets on first run (kept in .local/secrets.env, mode 0600),
# builds, migrates, and serves on CP_HTTP_HOST:CP_HTTP_PORT (127.0.0.1:8080 by default, plain HTTP;
# any other address gets HTTPS, with a certificate from a local CA unless CP_HTTP_TLS_CERT_FILE is set).
set -euo pipefail
root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root_dir"

. scripts/prepare.sh

secrets=.local/secrets.env
if [ -z "${CP_MASTER_KEYS:-}" ] || [ -z "${CP_PSEUDONYM_KEY:-}" ] || [ -z "${CP_POLICY_SIGNING_KEY:-}" ]; then
  if [ ! -f "$secrets" ]; then
    mkdir -p .local
    (umask 077; node -e '
      const c = require("crypto");
      process.stdout.write(`CP_MASTER_KEYS=k1:${c.randomBytes(32).toString("base64")}\n`);
      process.stdout.write(`CP_PSEUDONYM_KEY=${c.randomBytes(32).toString("hex")}\n`);
      process.stdout.write(`CP_POLICY_SIGNING_KEY=${c.randomBytes(32).toString("base64")}\n`);
    ' >"$secrets")
    echo "[run] generated local secrets in $secrets (back this file up: it decrypts the DKIM keys)" >&2
  fi
  # secrets files from before the policy signing key existed get one added
  if ! grep -q '^CP_POLICY_SIGNING_KEY=' "$secrets"; then
    (umask 077; node -e 'process.stdout.write(`CP_POLICY_SIGNING_KEY=${require("crypto").randomBytes(32).toString("base64")}\n`)' >>"$secrets")
  fi
  set -a; . "./$secrets"; set +a
fi
# the gateway needs a certificate: a self-signed one unless one is configured
if [ -z "${CP_SMTP_TLS_CERT_FILE:-}" ]; then
  bash scripts/self-signed-cert.sh .local/tls "${CP_SMTP_HOSTNAME:-localhost}"
  export CP_SMTP_TLS_CERT_FILE="$root_dir/.local/tls/cert.pem" CP_SMTP_TLS_KEY_FILE="$root_dir/.local/tls/key.pem"
  # the worker submits warming mail to this gateway, whose certificate nobody signed
  export CP_WARMING_TLS_VERIFY="${CP_WARMING_TLS_VERIFY:-false}"
fi
# the API: plain HTTP on a loopback address (the default, 127.0.0.1:8080), HTTPS on any other, which
# the control plane insists on; unless a certificate is configured, one from a local CA (.local/tls/api)
# naming this host and its addresses; nodes trust .local/tls/api/ca.pem (mta-nodes/README.md)
case "${CP_HTTP_HOST:-127.0.0.1}" in
  127.*|::1|'[::1]'|localhost) ;;
  *)
    if [ -z "${CP_HTTP_TLS_CERT_FILE:-}" ]; then
      api_sans=()
      for a in $(hostname -I 2>/dev/null || true); do api_sans+=("IP:$a"); done
      case "$CP_HTTP_HOST" in 0.0.0.0|::|'[::]') ;; *[!0-9.:]*) api_sans+=("DNS:$CP_HTTP_HOST") ;; *) api_sans+=("IP:$CP_HTTP_HOST") ;; esac
      bash scripts/api-tls-cert.sh .local/tls/api "$(hostname -f 2>/dev/null || hostname)" "${api_sans[@]}"
      export CP_HTTP_TLS_CERT_FILE="$root_dir/.local/tls/api/cert.pem" CP_HTTP_TLS_KEY_FILE="$root_dir/.local/tls/api/key.pem"
      echo "[run] the API serves HTTPS on $CP_HTTP_HOST with .local/tls/api/cert.pem; nodes must trust .local/tls/api/ca.pem" >&2
    fi
    ;;
esac
# 587 and 465 need root (or CAP_NET_BIND_SERVICE); an ordinary user gets 2587 and 2465
if [ "$(id -u)" -ne 0 ]; then
  export CP_SMTP_SUBMISSION_PORT="${CP_SMTP_SUBMISSION_PORT:-2587}" CP_SMTP_TLS_PORT="${CP_SMTP_TLS_PORT:-2465}"
fi
export CP_BOOTSTRAP_TOKEN_FILE="${CP_BOOTSTRAP_TOKEN_FILE-$root_dir/.local/admin-token}"

echo "[run] building" >&2
npm run --silent build
exec node dist/control-plane/src/bin/control-plane.js
