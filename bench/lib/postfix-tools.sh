#!/usr/bin/env bash
# Postfix's smtp-source (load generator) and smtp-sink (the fastest plain SMTP server to compare with),
# from Debian's postfix package, unpacked under .local/postfix (installing it would start a Postfix on
# port 25). Prints the directory holding the two programs and their libraries.
set -euo pipefail
root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dest="$root_dir/.local/postfix"
[ -x "$dest/usr/sbin/smtp-source" ] || bash "$root_dir/scripts/unpack-deb.sh" postfix "$dest"
echo "$dest"
