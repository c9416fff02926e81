#!/usr/bin/env bash
# promtool, which checks the Prometheus alert rules, from Debian's prometheus package, unpacked under
# .local/prometheus rather than installed (installing would start a Prometheus server). Prints its path.
set -euo pipefail
root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest="$root_dir/.local/prometheus"
if command -v promtool >/dev/null 2>&1; then command -v promtool; exit 0; fi
[ -x "$dest/usr/bin/promtool" ] || bash "$root_dir/scripts/unpack-deb.sh" prometheus "$dest"
echo "$dest/usr/bin/promtool"
