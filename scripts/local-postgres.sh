#!/usr/bin/env bash
# Starts (or stops) a persistent local PostgreSQL for `make run`, from the machine's PostgreSQL
# binaries, with its data in ./.data/pg and a socket beside it. Prints the DATABASE_URL.
# Usage: scripts/local-postgres.sh start|stop|url
set -euo pipefail
PORT="${LOCAL_PG_PORT:-54329}"
DIR="$(pwd)/.data/pg"
URL="postgres://postgres@127.0.0.1:${PORT}/appwrite_sync?sslmode=disable"
# `url` needs no PostgreSQL on the machine (make validate uses it).
[ "${1:-start}" = url ] && { echo "$URL"; exit 0; }
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
[ -n "$BIN" ] || BIN="$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")"
if [ ! -x "$BIN/initdb" ]; then
  echo "PostgreSQL server binaries not found: install them (Debian: apt-get install -y postgresql)" >&2
  exit 1
fi
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "${1:-start}" in
  start)
    mkdir -p "$DIR"
    [ "$(id -u)" = 0 ] && chown postgres: "$DIR" && chmod 700 "$DIR"
    if [ ! -f "$DIR/PG_VERSION" ]; then
      as_pg "$BIN/initdb" -D "$DIR" -A trust -U postgres -E UTF8 >/dev/null
    fi
    if ! as_pg "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
      as_pg "$BIN/pg_ctl" -D "$DIR" -l "$DIR/log" -w -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$DIR" start >/dev/null
    fi
    as_pg "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='appwrite_sync'" postgres | grep -q 1 \
      || as_pg "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -qc "CREATE DATABASE appwrite_sync" postgres
    echo "$URL"
    ;;
  stop) as_pg "$BIN/pg_ctl" -D "$DIR" -m fast stop ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
