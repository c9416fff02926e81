#!/usr/bin/env bash
# Node.js present and recent enough, and node_modules exactly as package-lock.json says (npm ci), reinstalled
# only when the lock file changed since the last install.
set -euo pipefail
root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root_dir"

say() { printf '[deps] %s\n' "$*" >&2; }

if ! command -v node >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; then
    say "node is missing: installing Debian's nodejs and npm"
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
  else
    say "error: Node.js 20 or newer is required"; exit 1
  fi
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  say "error: Node.js $(node --version) is too old; 20 or newer is required"; exit 1
fi

stamp=node_modules/.kcp-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" >"$stamp"
fi
