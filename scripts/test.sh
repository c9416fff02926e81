#!/usr/bin/env bash
# The whole test suite, from nothing: dependencies, a private PostgreSQL and Redis (unless DATABASE_URL
# and REDIS_URL are given), the type check, then every test. Extra arguments go to vitest.
set -euo pipefail
root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root_dir"

. scripts/prepare.sh
bash scripts/ensure-test-tools.sh

# A real kumod for the node-side suites: KUMOD_BIN when given, else the newest KumoMTA release
# unpacked under ../shared/kumomta/<release>/ (beside the project, as on the project's machines).
if [ -z "${KUMOD_BIN:-}" ]; then
  newest=$(ls -d ../shared/kumomta/*/sbin/kumod 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$newest" ] && KUMOD_BIN=$(cd "$(dirname "$newest")" && pwd)/kumod
fi
if [ -n "${KUMOD_BIN:-}" ]; then
  export KUMOD_BIN
  bash scripts/ensure-kumod-libs.sh "$KUMOD_BIN"
  echo "[test] kumod: $KUMOD_BIN ($("$KUMOD_BIN" --version 2>/dev/null || echo 'does not run'))" >&2
else
  echo "[test] kumod: none (no KUMOD_BIN, nothing under ../shared/kumomta): the real-kumod suites will say they skipped" >&2
fi

echo "[test] type check" >&2
npx tsc -p tsconfig.json --noEmit
echo "[test] vitest" >&2
mkdir -p .local
report=.local/vitest-report.json
rm -f "$report"
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
# one plain closing line, so any CI reads the counts the same way
if [ -f "$report" ]; then
  node -e '
    const r = require(process.argv[1]);
    const skipped = r.numPendingTests + r.numTodoTests;
    // a file that failed before any of its tests ran (a failing beforeAll) counts as a failure too
    const broken = r.testResults.filter((f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed")).length;
    process.stdout.write(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests + broken} failed, ${skipped} skipped\n`);
  ' "$root_dir/$report"
fi
exit "$status"
