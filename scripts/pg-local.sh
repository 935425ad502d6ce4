#!/usr/bin/env bash
# A throwaway PostgreSQL server for trying the many-machines layout on one
# machine (the tests start their own the same way): Debian's postgresql
# binaries, a cluster in DIR listening only on a Unix socket there, run as
# the postgres user when started by root (the server refuses root).
#
#   scripts/pg-local.sh start /tmp/hwnas-pg   # prints the URL for --db
#   scripts/pg-local.sh stop  /tmp/hwnas-pg
set -euo pipefail
cmd=${1:?start or stop}; dir=${2:?folder}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "no PostgreSQL server binaries: apt-get install postgresql (make deps)" >&2; exit 1; }
as() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case $cmd in
start)
  mkdir -p "$dir"; chmod 755 "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
  [ -f "$dir/data/PG_VERSION" ] || as "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-instructions >/dev/null
  as "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-k $dir -c listen_addresses='' -c max_connections=200" start >/dev/null
  as "$bin/psql" -h "$dir" -U postgres -tc "SELECT 1 FROM pg_database WHERE datname = 'hwnas'" | grep -q 1 ||
    as "$bin/psql" -h "$dir" -U postgres -qc "CREATE DATABASE hwnas"
  echo "postgres://postgres@/hwnas?host=$dir"
  ;;
stop)
  as "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null && echo "stopped"
  ;;
*) echo "start or stop" >&2; exit 2 ;;
esac
