#!/usr/bin/env bash
# npm run bench:<name> -- [flags]: one benchmark against the private PostgreSQL and Redis.
set -euo pipefail
name=${1:?usage: run-one.sh <benchmark> [flags]}; shift
args=("$@")
root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root_dir"
set --
. scripts/prepare.sh
bash scripts/ensure-test-tools.sh
# the submission benchmark runs the gateway as it is deployed: the built JavaScript
npm run --silent build
npx tsx "bench/$name.ts" "${args[@]}"
