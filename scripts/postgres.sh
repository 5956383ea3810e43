#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on a free loopback port, for tests and benchmarks.
#   eval "$(scripts/postgres.sh start DIR)"   # prints `export KURA_TEST_POSTGRES=postgres://...`
#   scripts/postgres.sh stop DIR              # stops it (DIR is left for the caller to delete)
# Installs Debian's postgresql package if no server binaries are found. PostgreSQL refuses to
# run as root, so as root the cluster belongs to `nobody`. Trust authentication, loopback only.
set -euo pipefail
cmd=${1:?start|stop}
DIR=${2:?directory}

find_bin() {
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    dirname "$(command -v pg_ctl)"; return
  fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  return 1
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}

case $cmd in
start)
  if ! BIN=$(find_bin); then
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -qq >&2
    $SUDO apt-get install -y -qq postgresql >&2
    BIN=$(find_bin)
  fi
  mkdir -p "$DIR"
  [ "$(id -u)" = 0 ] && chown nobody "$DIR"
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  as_owner "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 --no-locale >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log" >&2; exit 1; }
  # One role that must give a password (scram), so that tests can check a wrong one is refused.
  { echo "host all kura_pw 127.0.0.1/32 scram-sha-256"; cat "$DIR/data/pg_hba.conf"; } > "$DIR/hba.tmp"
  cat "$DIR/hba.tmp" > "$DIR/data/pg_hba.conf" && rm "$DIR/hba.tmp"
  as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/data/server.log" -w \
    -o "-p $PORT -k $DIR/data -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200" \
    start >&2
  echo "$BIN" > "$DIR/bin"
  echo "export KURA_TEST_POSTGRES=postgres://postgres@127.0.0.1:$PORT/postgres"
  echo "export KURA_PG_BIN=$BIN"
  ;;
stop)
  BIN=$(cat "$DIR/bin" 2>/dev/null || find_bin)
  as_owner "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >&2 || true
  ;;
esac
