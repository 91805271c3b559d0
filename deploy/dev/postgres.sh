#!/usr/bin/env bash
# PostgreSQL for the test suite's PostgreSQL pass, installed and started by the project
# itself (the machine starts no database server).
#
#   deploy/dev/postgres.sh binaries   install Debian's postgresql when its server binaries
#                                     are missing (the reliability tests start private
#                                     clusters from them)
#   deploy/dev/postgres.sh up         binaries, then a cluster at 127.0.0.1:${PGPORT:-5432}
#                                     (user postgres, trust on loopback), unless one answers
#   deploy/dev/postgres.sh down       stop the cluster this script started
#
# The cluster lives in ${CAREBRIDGE_PG_DIR:-/var/tmp/carebridge-postgres}: PostgreSQL runs as
# the postgres system user, which cannot enter a checkout under /root or /work.
set -euo pipefail

PGPORT="${PGPORT:-5432}"
DIR="${CAREBRIDGE_PG_DIR:-/var/tmp/carebridge-postgres}"
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

bin_dir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

binaries() {
  if [ -z "$(bin_dir)" ] || [ ! -x "$(bin_dir)/pg_ctl" ]; then
    echo "installing Debian's postgresql (server binaries for the PostgreSQL tests)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  fi
}

answers() {
  python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 2)" \
    "$PGPORT" 2>/dev/null
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

up() {
  binaries
  if answers; then
    echo "PostgreSQL already answers at 127.0.0.1:$PGPORT"
  else
    start
  fi
  # The suite's base database (BROKER_TEST_DATABASE_URL names it); each test copies its own.
  local db="${CAREBRIDGE_PG_DATABASE:-test}"
  if ! psql -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
    psql -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -qc "CREATE DATABASE \"$db\"" >/dev/null
    echo "created database $db"
  fi
}

start() {
  local bin
  bin="$(bin_dir)"
  $SUDO mkdir -p "$DIR"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR"
  if [ ! -f "$DIR/data/PG_VERSION" ]; then
    as_postgres "$bin/initdb" -D "$DIR/data" -A trust -U postgres --no-sync >/dev/null
  fi
  # a server killed with its session leaves postmaster.pid behind: not running, so stale
  if [ -f "$DIR/data/postmaster.pid" ] && ! as_postgres "$bin/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
    rm -f "$DIR/data/postmaster.pid"
  fi
  # Tuned for a throw-away test server: no fsync, enough connections for the suite's stacks.
  as_postgres "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
    -o "-p $PGPORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null
  echo "PostgreSQL started at 127.0.0.1:$PGPORT (data in $DIR/data, log $DIR/server.log)"
}

down() {
  local bin
  bin="$(bin_dir)"
  if [ -n "$bin" ] && [ -f "$DIR/data/postmaster.pid" ]; then
    as_postgres "$bin/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null
    echo "PostgreSQL at $DIR stopped"
  fi
}

case "${1:-up}" in
  binaries) binaries ;;
  up) up ;;
  down) down ;;
  *) echo "usage: $0 binaries|up|down" >&2; exit 2 ;;
esac
