#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the storage tests, without any system service.
#
#   scripts/postgres.sh start   # install (Debian's packages) if needed, init, start; prints the URL
#   scripts/postgres.sh url     # prints postgres://rzts@127.0.0.1:PORT/rzts_test (exit 1 if not running)
#   scripts/postgres.sh stop    # stops the cluster and deletes its data
#
# Typical use:
#   bash scripts/postgres.sh start
#   RZTS_TEST_PG_URL=$(bash scripts/postgres.sh url) cargo test -p pdp-server --test store_suite
#
# The cluster lives in ${TMPDIR:-/tmp}/rzts-pg, listens on 127.0.0.1 only (port 55432,
# or the next free one), keeps its unix socket inside its data directory and trusts
# every local connection: it is for tests, never for data that matters. initdb refuses
# to run as root, so as root the cluster runs as the `postgres` user (created by
# Debian's package) or else as a `rzts-pg` system user created here.
# Settings: RZTS_PG_DIR (default ${TMPDIR:-/tmp}/rzts-pg), RZTS_PG_PORT (default 55432).
set -euo pipefail

base="${RZTS_PG_DIR:-${TMPDIR:-/tmp}/rzts-pg}"
data="$base/data"
port_file="$base/port"
log="$base/postgres.log"
first_port="${RZTS_PG_PORT:-55432}"
db=rzts_test
superuser=rzts

say() { echo "postgres.sh: $*" >&2; }
die() { say "$*"; exit 1; }

find_bindir() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return 0
  fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

install_postgres() {
  [ "$(id -u)" -eq 0 ] || die "PostgreSQL is not installed; install it (sudo apt-get install -y postgresql) and retry"
  command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed and apt-get is not available"
  say "installing PostgreSQL from Debian's packages..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postgresql >/dev/null
}

# Runs a command as the cluster's owner (itself unless we are root).
owner=""
as_owner() {
  if [ -z "$owner" ]; then
    "$@"
  elif command -v runuser >/dev/null 2>&1; then
    runuser -u "$owner" -- "$@"
  else
    su -s /bin/sh "$owner" -c "$(printf '%q ' "$@")"
  fi
}

pick_owner() {
  [ "$(id -u)" -eq 0 ] || return 0
  if id postgres >/dev/null 2>&1; then
    owner=postgres
  else
    id rzts-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin rzts-pg
    owner=rzts-pg
  fi
}

running() {
  [ -f "$data/PG_VERSION" ] && as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

url() {
  echo "postgres://$superuser@127.0.0.1:$(cat "$port_file")/$db"
}

cmd_start() {
  mkdir -p "$base"
  if running && [ -f "$port_file" ]; then
    url
    return 0
  fi
  if [ -n "$owner" ]; then
    chown "$owner" "$base"
    as_owner test -w "$base" ||
      die "$owner cannot write $base (a parent directory is private?); set TMPDIR or RZTS_PG_DIR elsewhere"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"
    say "initdb in $data"
    as_owner "$bindir/initdb" -D "$data" -U "$superuser" --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null 2>"$base/initdb.err" ||
      as_owner "$bindir/initdb" -D "$data" -U "$superuser" --auth=trust -E UTF8 --locale=C >/dev/null 2>"$base/initdb.err" ||
      die "initdb failed: $(cat "$base/initdb.err")"
    cat >>"$data/postgresql.conf" <<EOF
# scripts/postgres.sh: a throwaway cluster for tests
listen_addresses = '127.0.0.1'
unix_socket_directories = '$data'
max_connections = 200
EOF
  fi
  local port=$first_port
  while port_in_use "$port"; do
    port=$((port + 1))
    [ "$port" -lt $((first_port + 200)) ] || die "no free port from $first_port"
  done
  say "starting on 127.0.0.1:$port (log: $log)"
  # 9>&-: the server must not inherit (and so hold forever) this script's lock.
  as_owner "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 -o "-p $port" start >/dev/null 9>&- ||
    die "pg_ctl start failed: $(tail -n 20 "$log" 2>/dev/null)"
  echo "$port" >"$port_file"
  local psql=("$bindir/psql" -h 127.0.0.1 -p "$port" -U "$superuser" -d postgres -v ON_ERROR_STOP=1 -qtA)
  if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
    "${psql[@]}" -c "CREATE DATABASE $db" >/dev/null
  fi
  url
}

cmd_stop() {
  if running; then
    as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    say "stopped"
  fi
  rm -rf "$base" "$base.lock"
}

cmd_url() {
  running && [ -f "$port_file" ] || die "not running; start it with: bash scripts/postgres.sh start"
  url
}

case "${1:-}" in
  start | stop | url) ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac

if ! bindir=$(find_bindir); then
  case "$1" in
    stop) rm -rf "$base" "$base.lock"; exit 0 ;;
    url) die "PostgreSQL is not installed; run: bash scripts/postgres.sh start" ;;
  esac
  install_postgres
  bindir=$(find_bindir) || die "PostgreSQL was installed but initdb was not found"
fi
pick_owner

# One invocation at a time (flock when available).
if command -v flock >/dev/null 2>&1; then
  mkdir -p "$base"
  exec 9>"$base.lock"
  flock 9
fi

"cmd_$1"
