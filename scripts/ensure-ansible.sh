#!/usr/bin/env bash
# Ansible and ansible-lint, pinned in ansible/requirements.txt, in a virtualenv of this checkout's own
# (.local/ansible-venv). Idempotent and silent when the venv already matches the pins; prints the venv's
# bin directory on stdout. Needs Python 3.12 or newer (ansible-core 2.21): KCP_ANSIBLE_PYTHON, else the
# first of python3.14 ... python3.12, python3 on PATH, else a pyenv version of 3.12 or newer.
# Exit 3: no such Python on this machine (the tests say so and skip).
set -euo pipefail
root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
req="$root_dir/ansible/requirements.txt"
venv="${KCP_ANSIBLE_VENV:-$root_dir/.local/ansible-venv}"
say() { printf '[ansible] %s\n' "$*" >&2; }

want=$(sha256sum "$req" | cut -d' ' -f1)
current() { [ -x "$venv/bin/ansible-playbook" ] && [ -x "$venv/bin/ansible-lint" ] && [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" = "$want" ]; }
if current; then echo "$venv/bin"; exit 0; fi

mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
# another run may have finished it while this one waited
if current; then echo "$venv/bin"; exit 0; fi

new_enough() { "$1" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
python=""
candidates=()
[ -n "${KCP_ANSIBLE_PYTHON:-}" ] && candidates+=("$KCP_ANSIBLE_PYTHON")
for v in 3.14 3.13 3.12; do command -v "python$v" >/dev/null 2>&1 && candidates+=("$(command -v "python$v")"); done
command -v python3 >/dev/null 2>&1 && candidates+=("$(command -v python3)")
for d in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]* 2>/dev/null | sort -rV); do candidates+=("$d/bin/python3"); done
for c in "${candidates[@]}"; do
  if new_enough "$c"; then python="$c"; break; fi
done
if [ -z "$python" ]; then
  say "error: Ansible $(grep -m1 '^ansible==' "$req" | cut -d= -f3) needs Python 3.12 or newer with venv (ansible-core 2.21); none found (set KCP_ANSIBLE_PYTHON)"
  exit 3
fi

say "installing $(grep -E '^(ansible|ansible-core|ansible-lint)==' "$req" | tr '\n' ' ')with $("$python" --version 2>&1) into ${venv#"$root_dir"/}"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >&2
echo "$want" >"$venv/.requirements.sha256"
echo "$venv/bin"
