#!/usr/bin/env bash
# Private PostgreSQL and Redis for one checkout: loopback only, free ports, data under .local/.
#
#   scripts/services.sh up      start (or reuse) both; prints `export DATABASE_URL=… REDIS_URL=…` lines
#                               (DATABASE_URL as the app's role kcp_app, CP_MIGRATION_DATABASE_URL as the
#                               schema's owner kcp_owner, KCP_PG_ADMIN_URL as the superuser, for the tests)
#   scripts/services.sh down    stop both
#   scripts/services.sh status  say what runs where
#
# Installs Debian's postgresql and redis-server when they are missing and we may (root or passwordless
# sudo), because the README promises that its two commands work on a fresh Debian/Ubuntu machine.
# Everything it prints on stdout is meant for `eval`; diagnostics go to stderr.
set -euo pipefail

root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state_dir="$root_dir/.local"
env_file="$state_dir/services.env"
mkdir -p "$state_dir"
chmod 711 "$state_dir"  # traversable so the postgres account can reach its data directory; files inside are 0600

say() { printf '[services] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
  else return 1
  fi
}

pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

ensure_packages() {
  local want=()
  pg_bindir >/dev/null || want+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || want+=(redis-server)
  [ ${#want[@]} -eq 0 ] && return 0
  say "installing ${want[*]} from the distribution's packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 \
    || die "${want[*]} missing and cannot install them (need root or passwordless sudo); or set DATABASE_URL and REDIS_URL"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >&2 \
    || die "apt-get install ${want[*]} failed"
}

free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{process.stdout.write(String(s.address().port));s.close()})"
}

random_secret() { node -e "process.stdout.write(require('crypto').randomBytes(24).toString('hex'))"; }

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` account; its data
# directory must then sit where that account can reach it.
pg_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/false postgres
    echo postgres
  else
    id -un
  fi
}

as_pg() {
  local owner=$1; shift
  if [ "$owner" = "$(id -un)" ]; then "$@"; else runuser -u "$owner" -- "$@"; fi
}

pg_data_parent() {
  local owner=$1 dir="$state_dir/pg"
  if [ "$owner" != "$(id -un)" ] && ! runuser -u "$owner" -- test -x "$root_dir" 2>/dev/null; then
    dir="/var/tmp/kcp-$(printf '%s' "$root_dir" | sha256sum | cut -c1-12)/pg"
  fi
  echo "$dir"
}

start_postgres() {
  local bindir owner parent data port pw
  bindir=$(pg_bindir) || die "no PostgreSQL server binaries found"
  owner=$(pg_owner)
  parent=$(pg_data_parent "$owner")
  data="$parent/data"
  mkdir -p "$parent"
  if [ "$owner" != "$(id -un)" ]; then
    chown "$owner" "$parent"
    # the path up to the data directory must be traversable by the cluster owner
    [ "$parent" = "$state_dir/pg" ] && chmod 711 "$state_dir"
  fi
  if [ ! -f "$parent/password" ]; then
    random_secret >"$parent/password"
  fi
  chown "$owner" "$parent/password"
  chmod 600 "$parent/password"
  pw=$(cat "$parent/password")
  if [ ! -f "$data/PG_VERSION" ]; then
    say "initialising PostgreSQL cluster in $data"
    as_pg "$owner" "$bindir/initdb" -D "$data" -U postgres --auth=scram-sha-256 \
      --pwfile="$parent/password" --encoding=UTF8 --locale=C.UTF-8 >/dev/null 2>&1 \
      || as_pg "$owner" "$bindir/initdb" -D "$data" -U postgres --auth=scram-sha-256 \
        --pwfile="$parent/password" --encoding=UTF8 --no-locale >/dev/null
  fi
  port=$(free_port)
  say "starting PostgreSQL on 127.0.0.1:$port"
  as_pg "$owner" "$bindir/pg_ctl" -D "$data" -l "$parent/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='' -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >&2 || { tail -n 30 "$parent/postgres.log" >&2; die "PostgreSQL did not start"; }
  PG_PORT=$port PG_PASSWORD=$pw PG_DATA=$data PG_OWNER=$owner PG_BINDIR=$bindir
}

start_redis() {
  local dir="$state_dir/redis" port pw
  mkdir -p "$dir"
  [ -f "$dir/password" ] || random_secret >"$dir/password"
  chmod 600 "$dir/password"
  pw=$(cat "$dir/password")
  port=$(free_port)
  # the password lives in a 0600 file, not on the command line where `ps` would show it
  umask 077
  cat >"$dir/redis.conf" <<CONF
bind 127.0.0.1
port $port
protected-mode yes
daemonize yes
dir $dir
pidfile $dir/redis.pid
logfile $dir/redis.log
save ""
appendonly no
databases 256
requirepass $pw
CONF
  say "starting Redis on 127.0.0.1:$port"
  rm -f "$dir/redis.pid"
  redis-server "$dir/redis.conf" >&2
  local i
  for i in $(seq 1 100); do
    [ -s "$dir/redis.pid" ] && REDISCLI_AUTH=$pw redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
  REDISCLI_AUTH=$pw redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG || die "Redis did not start (see $dir/redis.log)"
  REDIS_PORT=$port REDIS_PASSWORD=$pw REDIS_PID=$(cat "$dir/redis.pid")
}

services_running() {
  [ -f "$env_file" ] || return 1
  # shellcheck disable=SC1090
  . "$env_file"
  as_pg "${KCP_PG_OWNER:-$(id -un)}" "${KCP_PG_BINDIR:-/nonexistent}/pg_ctl" -D "${KCP_PG_DATA:-/nonexistent}" status >/dev/null 2>&1 || return 1
  pid_alive "$(cat "$state_dir/redis/redis.pid" 2>/dev/null)" || return 1
  REDISCLI_AUTH=$KCP_REDIS_PASSWORD redis-cli -h 127.0.0.1 -p "$KCP_REDIS_PORT" ping 2>/dev/null | grep -q PONG
}

# The superuser's password, from the URL in the env file (postgres://postgres:<password>@…).
pg_admin_password() {
  local pw=${KCP_DATABASE_URL#postgres://postgres:}
  echo "${pw%%@*}"
}

# A role's password: HMAC-SHA256 of "kcp-role:<role>" under the superuser's password, hex, exactly as
# control-plane/test/support/db-roles.ts derives it, so the tests and run.sh agree without another file.
role_password() {
  KCP_PG_ADMIN_PASSWORD=$1 node -e 'process.stdout.write(require("crypto").createHmac("sha256", process.env.KCP_PG_ADMIN_PASSWORD).update(`kcp-role:${process.argv[1]}`).digest("hex"))' "$2"
}

# The roles the README's "Database roles" names, made idempotently (they are cluster-wide): kcp_owner
# owns the database kcp and runs the migrations; kcp_app is what the control plane connects as (no
# superuser, no BYPASSRLS, owner of nothing, so row-level security holds for it).
ensure_db_roles() {
  # shellcheck disable=SC1090
  . "$env_file"
  local pw owner_pw app_pw
  pw=$(pg_admin_password)
  owner_pw=$(role_password "$pw" kcp_owner)
  app_pw=$(role_password "$pw" kcp_app)
  # passwords go through stdin and the environment, never the command line where `ps` would show them
  PGPASSWORD=$pw "$KCP_PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$KCP_PG_PORT" -U postgres -d postgres >/dev/null <<SQL \
    || die "could not create the database roles kcp_owner and kcp_app"
SELECT 'CREATE ROLE kcp_owner' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kcp_owner')
\gexec
SELECT 'CREATE ROLE kcp_app' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kcp_app')
\gexec
ALTER ROLE kcp_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD '$owner_pw';
ALTER ROLE kcp_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD '$app_pw';
SELECT 'CREATE DATABASE kcp OWNER kcp_owner' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'kcp')
\gexec
SQL
}

print_exports() {
  # shellcheck disable=SC1090
  . "$env_file"
  local pw
  pw=$(pg_admin_password)
  printf 'export DATABASE_URL=%q\n' "postgres://kcp_app:$(role_password "$pw" kcp_app)@127.0.0.1:$KCP_PG_PORT/kcp"
  printf 'export CP_MIGRATION_DATABASE_URL=%q\n' "postgres://kcp_owner:$(role_password "$pw" kcp_owner)@127.0.0.1:$KCP_PG_PORT/kcp"
  printf 'export KCP_PG_ADMIN_URL=%q\n' "$KCP_DATABASE_URL"
  printf 'export REDIS_URL=%q\n' "$KCP_REDIS_URL"
}

cmd_up() {
  if services_running; then
    say "reusing PostgreSQL and Redis already started for this checkout"
    ensure_db_roles
    print_exports
    return 0
  fi
  cmd_down quiet
  ensure_packages
  command -v node >/dev/null 2>&1 || die "node is required"
  start_postgres
  start_redis
  umask 077
  cat >"$env_file" <<ENV
KCP_PG_OWNER=$PG_OWNER
KCP_PG_BINDIR=$PG_BINDIR
KCP_PG_DATA=$PG_DATA
KCP_PG_PORT=$PG_PORT
KCP_REDIS_PORT=$REDIS_PORT
KCP_REDIS_PASSWORD=$REDIS_PASSWORD
KCP_DATABASE_URL=postgres://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres
KCP_REDIS_URL=redis://:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT/0
ENV
  ensure_db_roles
  print_exports
}

cmd_down() {
  [ -f "$env_file" ] || { [ "${1:-}" = quiet ] || say "nothing to stop"; return 0; }
  # shellcheck disable=SC1090
  . "$env_file"
  if [ -n "${KCP_PG_DATA:-}" ] && [ -f "$KCP_PG_DATA/postmaster.pid" ]; then
    as_pg "$KCP_PG_OWNER" "$KCP_PG_BINDIR/pg_ctl" -D "$KCP_PG_DATA" -m fast stop >&2 2>/dev/null || true
  fi
  local rpid
  rpid=$(cat "$state_dir/redis/redis.pid" 2>/dev/null || true)
  if pid_alive "$rpid"; then kill "$rpid" 2>/dev/null || true; fi
  rm -f "$env_file"
}

cmd_status() {
  if services_running; then
    say "PostgreSQL on 127.0.0.1:$KCP_PG_PORT (data $KCP_PG_DATA), Redis on 127.0.0.1:$KCP_REDIS_PORT"
  else
    say "not running"
    return 1
  fi
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
