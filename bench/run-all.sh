#!/usr/bin/env bash
# npm run bench: every benchmark with small defaults (a few minutes on 2 cores), against the private
# PostgreSQL and Redis; then one table of the headline figures. Flags after `--` go to every benchmark
# and override the small defaults (e.g. npm run bench -- --tenants 100000 --messages 200000 --concurrency 50).
set -euo pipefail
root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root_dir"
args=("$@")
set --
. scripts/prepare.sh
bash scripts/ensure-test-tools.sh
# the submission benchmark runs the gateway as it is deployed: the built JavaScript
npm run --silent build
started=$(date +%s)
npx tsx bench/ingest.ts --records 20000 "${args[@]}"
npx tsx bench/trust-recompute.ts --tenants 3000 "${args[@]}"
npx tsx bench/policy-render.ts --tenants 10000 --ips 256 --nodes 4 "${args[@]}"
npx tsx bench/policy-pull.ts --requests 2000 "${args[@]}"
npx tsx bench/submission.ts --messages 4000 --conn-messages 1000 "${args[@]}"
npx tsx bench/policy-loop.ts --nodes 4 --tenants 200 --runs 2 "${args[@]}"
npx tsx bench/summary.ts --since "$started"
