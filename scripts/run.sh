#!/usr/bin/env bash
# Run the control plane (every role: admin API, policy and event endpoints, background workers) on this
# machine. Installs what is missing, starts a private PostgreSQL and Redis unless DATABASE_URL and
# REDIS_URL are given, generates local secrets on first run (kept in .local/secrets.env, mode 0600),
# builds, migrates, and serves on CP_HTTP_HOST:CP_HTTP_PORT (127.0.0.1:8080 by default).
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
export CP_BOOTSTRAP_TOKEN_FILE="${CP_BOOTSTRAP_TOKEN_FILE-$root_dir/.local/admin-token}"

echo "[run] building" >&2
npm run --silent build
exec node dist/control-plane/src/bin/control-plane.js
