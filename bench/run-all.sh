#!/usr/bin/env bash
# npm run bench: every benchmark with small defaults, against the private PostgreSQL and Redis.
# Extra arguments are passed to each benchmark (e.g. --records 200000).
set -euo pipefail
root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root_dir"
. scripts/prepare.sh
bash scripts/ensure-test-tools.sh
npm run --silent build
for b in ingest policy-render submission; do
  npx tsx "bench/$b.ts" "$@"
done
