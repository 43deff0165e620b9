#!/bin/sh
# tests/support/pg_server.sh start|stop|pause|resume INFO_DIR — a throwaway PostgreSQL
# server for the tests that run against PostgreSQL (RW_TEST_PG=INFO_DIR, read by
# tests/support/harness.cc).
# start: initdb in a fresh temporary data directory (owned by, and run as, the postgres user
# when we are root: the server refuses root), trust authentication, listening on 127.0.0.1
# at a spare port and on a socket in the data directory, fsync off (test data only).
# Writes INFO_DIR/url (postgres://postgres@127.0.0.1:PORT) on success, INFO_DIR/unavailable
# with the reason when the server packages are missing or it cannot start; always exits 0
# so the tests themselves say why they skip. stop: an immediate shutdown (bounded) and the
# data directory removed (in the background). pause / resume (a test's own server:
# tests/e2e/pg_outage_test.cc): a fast shutdown that keeps the data (sessions are cut, as in
# a PostgreSQL restart), then the server started again on the same port; both exit non-zero
# on failure.
set -u
command=${1:?start, stop, pause or resume}
info=${2:?info directory}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)

unavailable() {
    echo "$1" > "$info/unavailable"
    echo "pg_server: $1" >&2
    exit 0
}

run() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# pg_ctl start on port $2 with the data directory $1 (waits until it accepts connections).
server_start() {
    run "$bin/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $2 -k $1 -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start > /dev/null 2>&1
}

case "$command" in
start)
    if [ -f "$info/data_dir" ]; then
        "$0" stop "$info"
    fi
    rm -rf "$info"
    mkdir -p "$info"
    [ -n "$bin" ] && [ -x "$bin/initdb" ] ||
        unavailable "PostgreSQL server not installed (Debian package postgresql; make deps installs it)"
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        unavailable "no postgres user to run the server as (the postgresql package creates it)"
    fi
    data=$(mktemp -d "${TMPDIR:-/tmp}/rw-pg.XXXXXX")
    echo "$data" > "$info/data_dir"
    [ "$(id -u)" = 0 ] && chown postgres "$data"
    run "$bin/initdb" -D "$data/data" -U postgres --auth=trust --no-locale -E UTF8 \
        > "$data/initdb.log" 2>&1 || unavailable "initdb failed: $(tail -n 3 "$data/initdb.log")"
    port=$((20000 + $$ % 20000))
    for attempt in 1 2 3 4 5 6 7 8; do
        if server_start "$data" "$port"; then
            echo "postgres://postgres@127.0.0.1:$port" > "$info/url"
            echo "$port" > "$info/port"
            echo "$bin" > "$info/bin"
            exit 0
        fi
        port=$((port + 7 * attempt))
    done
    unavailable "the server did not start: $(tail -n 3 "$data/server.log" 2>/dev/null)"
    ;;
stop)
    if [ -f "$info/data_dir" ]; then
        data=$(cat "$info/data_dir")
        [ -n "$bin" ] && run "$bin/pg_ctl" -D "$data/data" -m immediate -t 20 stop \
            > /dev/null 2>&1
        # Every test made its own database (~8 MB each, never dropped): removing a few
        # hundred of them took over a minute on a loaded machine, so the directory is
        # renamed away and removed in the background, detached from the caller's output.
        if mv "$data" "$data.removing" 2> /dev/null; then
            setsid rm -rf "$data.removing" < /dev/null > /dev/null 2>&1 &
        else
            rm -rf "$data"
        fi
    fi
    rm -rf "$info"
    ;;
pause)
    data=$(cat "$info/data_dir") || exit 1
    run "$bin/pg_ctl" -D "$data/data" -m fast -t 60 stop > /dev/null 2>&1
    ;;
resume)
    data=$(cat "$info/data_dir") || exit 1
    server_start "$data" "$(cat "$info/port")"
    ;;
*)
    echo "usage: $0 start|stop|pause|resume INFO_DIR" >&2
    exit 2
    ;;
esac
