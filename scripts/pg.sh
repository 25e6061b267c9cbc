#!/usr/bin/env bash
# A private PostgreSQL server for corral's store tests: no system service, no root server.
#
#   scripts/pg.sh start [DIR]   create a cluster in DIR (default: a new temp dir) on
#                               127.0.0.1 and a free port, or restart the one in DIR;
#                               prints CORRAL_TEST_PG_URL=postgresql+psycopg://...
#   scripts/pg.sh halt DIR      stop the server, keep the cluster (to restart it later)
#   scripts/pg.sh stop [DIR]    stop the server and remove DIR
#
# Without DIR, start/stop use the last cluster started without one (recorded in
# ${TMPDIR:-/tmp}/corral-pg.current). Installs Debian's postgresql if it is missing.
# PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` user.
#
#   eval "$(scripts/pg.sh start)"; export CORRAL_TEST_PG_URL
#   python -m pytest tests/test_store_*.py; scripts/pg.sh stop
set -euo pipefail

CURRENT="${TMPDIR:-/tmp}/corral-pg.current"
DB=corral_test
ROLE=corral

log() { echo "pg.sh: $*" >&2; }

bindir() {
    local dir
    if command -v pg_config >/dev/null 2>&1; then
        dir=$(pg_config --bindir)
        [[ -x "$dir/initdb" ]] && { echo "$dir"; return; }
    fi
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -n "$dir" && -x "$dir/initdb" ]] && { echo "$dir"; return; }
    return 1
}

ensure_installed() {
    bindir >/dev/null && return
    log "installing Debian's postgresql package"
    local sudo=()
    [[ $(id -u) -ne 0 ]] && sudo=(sudo)
    "${sudo[@]}" apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q postgresql >&2
    bindir >/dev/null || { log "postgresql installed but initdb not found"; exit 1; }
}

# run a server binary as the cluster's owner: ourselves, or `postgres` when we are root
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    ensure_installed
    local bin dir="${1:-}" port fresh=0
    bin=$(bindir)
    if [[ -z "$dir" ]]; then
        dir=$(mktemp -d "${TMPDIR:-/tmp}/corral-pg.XXXXXX")
        echo "$dir" >"$CURRENT"
    fi
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
        fresh=1
        as_owner "$bin/initdb" -D "$dir/data" -U "$ROLE" --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
        free_port >"$dir/port"
        # no autovacuum or parallel workers: no server process comes and goes on its own
        cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $(cat "$dir/port")
unix_socket_directories = '$dir'
autovacuum = off
max_parallel_workers_per_gather = 0
fsync = off
full_page_writes = off
EOF
    fi
    port=$(cat "$dir/port")
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start >/dev/null \
        || { tail -n 20 "$dir/server.log" >&2; exit 1; }
    if [[ $fresh -eq 1 ]]; then
        as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$ROLE" "$DB"
    fi
    echo "CORRAL_TEST_PG_URL=postgresql+psycopg://$ROLE@127.0.0.1:$port/$DB"
}

halt() {
    local dir="$1"
    [[ -f "$dir/data/postmaster.pid" ]] || return 0
    as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null
}

stop() {
    local dir="${1:-}"
    if [[ -z "$dir" ]]; then
        [[ -f "$CURRENT" ]] || { log "no cluster recorded in $CURRENT"; exit 1; }
        dir=$(cat "$CURRENT")
        rm -f "$CURRENT"
    fi
    [[ -d "$dir" ]] || return 0
    halt "$dir"
    rm -rf "$dir"
}

case "${1:-}" in
    start) start "${2:-}" ;;
    halt) halt "${2:?usage: pg.sh halt DIR}" ;;
    stop) stop "${2:-}" ;;
    *) echo "usage: $0 start [DIR] | halt DIR | stop [DIR]" >&2; exit 2 ;;
esac
