#!/usr/bin/env bash
# The control plane's release archive, what ansible/roles/control_plane unpacks into
# /opt/kcp/releases/<first 16 hex digits of its sha256>, links as /opt/kcp/current and runs
# (`npm ci --omit=dev` there, then `node dist/control-plane/src/bin/control-plane.js`):
#   package.json, package-lock.json   the production dependencies, exactly as locked
#   schema.sql                        marks the project root the processes find their files from
#   dist/                             `npm run build` (tsconfig.build.json), built afresh: no stale files
#   control-plane/migrations/         run by every process at start
# Prints the archive's path; writes .local/release/kcp-release-<version>.tgz unless a path is given.
#   bash scripts/release.sh [out.tgz]
set -euo pipefail
root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root_dir"
say() { printf '[release] %s\n' "$*" >&2; }

bash scripts/ensure-deps.sh
version=$(node -p 'require("./package.json").version')
out=${1:-.local/release/kcp-release-$version.tgz}
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

stage=$(mktemp -d "${TMPDIR:-/tmp}/kcp-release.XXXXXX")
trap 'rm -rf "$stage"' EXIT
say "building $version (tsconfig.build.json)"
# into the staging directory, not the checkout's dist/ (which may hold files of older builds)
npm run --silent build -- --outDir "$stage/dist"
cp package.json package-lock.json schema.sql "$stage/"
mkdir -p "$stage/control-plane"
cp -R control-plane/migrations "$stage/control-plane/"
[ -f "$stage/dist/control-plane/src/bin/control-plane.js" ] || { say "error: the build made no dist/control-plane/src/bin/control-plane.js"; exit 1; }
# reproducible: the same sources give the same bytes (names sorted, times, owners and modes fixed, no
# gzip timestamp), so the role's release id (the archive's sha256) names the code, and a rebuild of an
# older commit is a rollback to the release already on the host
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
# written beside and renamed: a run at the same time (the tests) never reads half an archive
tar cf - -C "$stage" --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --mode='u+rwX,go+rX,go-w' \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  package.json package-lock.json schema.sql dist control-plane | gzip -n -9 > "$out.$$.tmp"
mv "$out.$$.tmp" "$out"
say "$(du -h "$out" | cut -f1) $out"
echo "$out"
