#!/bin/sh
# tests/pg/cluster.sh start DIR | stop DIR: a private PostgreSQL server for a
# test run, in DIR (a new, empty folder): initdb into DIR/data, the server
# listening on a Unix socket in DIR only (no TCP port), trust authentication
# for the superuser "parley". `start` prints the connection string
# ("host=DIR port=5432 user=parley dbname=postgres"); `stop` stops the server
# and removes DIR.
#
# PostgreSQL refuses to run as root: run as root (CI), the server runs as
# the unprivileged user nobody, who owns DIR. The server binaries are
# Debian's (postgresql-NN, the newest installed: tools/deps.sh test installs
# the postgresql package). fsync is off: the server is thrown away with the
# run, and a test kills parley, never the database.
set -eu

usage() { echo "usage: tests/pg/cluster.sh start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "cluster.sh: no PostgreSQL server here (/usr/lib/postgresql/*/bin/initdb): tools/deps.sh test installs it" >&2
  exit 1
fi

# as_owner CMD...: runs CMD as the server's user
if [ "$(id -u)" = 0 ]; then
  as_owner() { runuser -u nobody -- "$@"; }
else
  as_owner() { "$@"; }
fi

case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown nobody "$dir"
    chmod 700 "$dir"
    as_owner "$bindir/initdb" -D "$dir/data" -U parley --auth=trust -E UTF8 --locale=C -N >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2
      exit 1
    }
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-k $dir -c listen_addresses= -p 5432 -c fsync=off -c max_connections=200" start >/dev/null || {
      cat "$dir/server.log" >&2
      exit 1
    }
    echo "host=$dir port=5432 user=parley dbname=postgres"
    ;;
  stop)
    [ -d "$dir/data" ] && as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *) usage ;;
esac
