#!/usr/bin/env bash
# bench/load/streams.sh — many live streams on one shard (issue "Capacity"): CLIENTS concurrent
# streaming POST /v1/chat/completions, each a slow stream from the mock (CHUNKS content events
# EVENT_DELAY_MS apart: 20 x 50 ms, about 1 s), through nginx (one worker) and ringway
# (RINGWAY_SHARDS=1), and optionally through a second ringway binary (BEFORE=path, e.g. main's)
# for a before/after in the same run. Each server is started fresh for each point, so its
# peak RSS is that point's. Prints per target and concurrency: streams completed, non-2xx,
# socket errors (wrk), CPU per stream (utime+stime delta of the server / completed streams),
# idle RSS, peak RSS (VmHWM) and memory per open stream ((peak - idle) / clients), and the
# ratios ringway/nginx (goals: CPU <= 0.5x, peak RSS <= 1x).
#
# Usage: bench/load/streams.sh [BUILD_DIR]   (default: build; Release build with ringway and
#        tests/support/mock_upstream)
# Knobs (env): CLIENTS ("1000 4000 9000") DURATION_S (6) CHUNKS (20) EVENT_DELAY_MS (50)
#   TARGETS ("nginx ringway", plus "before" when BEFORE is set) BEFORE (a ringway binary)
#   SERVER_CPU (0) CLIENT_CPU (1) KEEP_WORK_DIR (0)
# Each client is one wrk connection that streams back to back, so CLIENTS streams are open at
# once. A point needs 2 x CLIENTS descriptors in the proxy and CLIENTS in wrk: the script
# raises its soft limit to the hard one and skips points that cannot fit (`ulimit -Hn`).
# Loopback only; every step is bounded in time; the EXIT trap stops what this script started.
set -u -o pipefail

build_dir=${1:-build}
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
clients_list=${CLIENTS:-"1000 4000 9000"}
duration_s=${DURATION_S:-6}
chunks=${CHUNKS:-20}
event_delay_ms=${EVENT_DELAY_MS:-50}
before_binary=${BEFORE:-}
targets=${TARGETS:-"nginx ringway${before_binary:+ before}"}
cpu_count=$(nproc)
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-$(( cpu_count > 1 ? 1 : 0 ))}
clk_tck=$(getconf CLK_TCK)
admin_token=bench-admin-token-123456
ready_timeout_s=20

work_dir=$(mktemp -d /tmp/streamsbench.XXXXXX)
mock_pid=""
server_pid=""
failures=()
declare -A port

log() { printf '[streams] %s\n' "$*" >&2; }
fail() { failures+=("$*"); log "FAILURE: $*"; }

stop_pid() {  # Stops one process this script started: TERM, then KILL after 5 s.
    local p=$1
    [[ -z $p ]] && return 0
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
}

cleanup() {
    stop_pid "$server_pid"
    stop_pid "$mock_pid"
    if [[ ${KEEP_WORK_DIR:-0} == 1 ]]; then log "work dir kept: $work_dir"; else rm -rf "$work_dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

source "$script_dir/lib.sh"  # ensure_tool, free_port
ensure_tool wrk wrk || { log "wrk is missing"; exit 1; }
ensure_tool nginx nginx || { log "nginx is missing"; exit 1; }
ulimit -n "$(ulimit -Hn)"
fd_limit=$(ulimit -n)

server_pin=()
client_pin=()
if (( cpu_count > 1 )); then
    server_pin=(taskset -c "$server_cpu")
    client_pin=(taskset -c "$client_cpu")
fi

messages='"messages":[{"role":"user","content":"Write one short sentence about load balancers."}]'
# nginx sees what a client would send with include_usage; ringway injects it itself.
printf '{"model":"gpt-4o-mini",%s,"stream":true,"stream_options":{"include_usage":true}}' \
    "$messages" >"$work_dir/nginx.body"
printf '{"model":"gpt-4o-mini",%s,"stream":true}' "$messages" >"$work_dir/ringway.body"

tree_pids() { echo "$1"; pgrep -P "$1" 2>/dev/null; }
cpu_ticks() {
    local total=0 p fields
    for p in $(tree_pids "$1"); do
        fields=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) || continue
        total=$((total + $(awk '{print $12 + $13}' <<<"$fields")))
    done
    echo "$total"
}
status_kb() {  # status_kb PID FIELD — summed over the process tree (VmRSS, VmHWM).
    local total=0 p kb
    for p in $(tree_pids "$1"); do
        kb=$(awk -v f="$2:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

start_mock() {
    local deadline=$((SECONDS + ready_timeout_s))
    ln -sf "$(realpath "$build_dir/tests/support/mock_upstream")" "$work_dir/bench-upstream"
    "${client_pin[@]}" "$work_dir/bench-upstream" --listen 127.0.0.1:0 --threads 1 \
        --default "chunks=$chunks" --default "event-delay-ms=$event_delay_ms" \
        >"$work_dir/mock.out" 2>"$work_dir/mock.err" &
    mock_pid=$!
    while (( SECONDS < deadline )); do
        port[mock]=$(awk '/^listening / {split($2, a, ":"); print a[2]}' "$work_dir/mock.out")
        [[ -n ${port[mock]} ]] && return 0
        sleep 0.05
    done
    log "mock did not start"; return 1
}

wait_stream_ok() {  # wait_stream_ok PORT BODY [KEY]
    local deadline=$((SECONDS + ready_timeout_s)) code
    while (( SECONDS < deadline )); do
        kill -0 "$server_pid" 2>/dev/null || return 1
        code=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
            ${3:+-H "Authorization: Bearer $3"} --data-binary "@$2" \
            "http://127.0.0.1:$1/v1/chat/completions" 2>/dev/null)
        [[ $code == 200 ]] && return 0
        sleep 0.1
    done
    return 1
}

start_nginx() {  # start_nginx CLIENTS
    local dir="$work_dir/nginx.$1" connections=$(( 4 * $1 + 2048 ))
    mkdir -p "$dir"
    port[server]=$(free_port)
    sed -e "s|@DIR@|$dir|g" -e "s|@WORKERS@|1|g" -e "s|@MASKS@| 1$(printf '%*s' "$server_cpu" '' | tr ' ' 0)|g" \
        -e "s|@PORT@|${port[server]}|g" -e "s|@UPSTREAM_PORT@|${port[mock]}|g" \
        -e "s|worker_connections 4096;|worker_connections $connections;|" \
        -e "s|^daemon off;|daemon off;\nworker_rlimit_nofile $fd_limit;|" \
        -e "s|keepalive 64;|keepalive 1024;|" \
        "$script_dir/proxy_nginx.conf.in" >"$dir/nginx.conf"
    "${server_pin[@]}" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" \
        >"$dir/stdout.log" 2>&1 &
    server_pid=$!
    wait_stream_ok "${port[server]}" "$work_dir/nginx.body" ||
        { log "nginx did not answer"; tail -5 "$dir/error.log" >&2; return 1; }
    rw_key=""
}

start_ringway() {  # start_ringway BINARY CLIENTS
    local binary=$1 name=$work_dir/rw.$2.$RANDOM created
    port[server]=$(free_port)
    port[admin]=$(free_port)
    ln -sf "$(realpath "$binary")" "$name.bench-gateway"
    env RINGWAY_LISTEN="127.0.0.1:${port[server]}" RINGWAY_ADMIN_LISTEN="127.0.0.1:${port[admin]}" \
        RINGWAY_ADMIN_TOKEN="$admin_token" RINGWAY_DB="$name.db" RINGWAY_SHARDS=1 \
        RINGWAY_LOG_LEVEL=info "${server_pin[@]}" "$name.bench-gateway" >"$name.log" 2>&1 &
    server_pid=$!
    local deadline=$((SECONDS + ready_timeout_s))
    until curl -fsS -m 1 -o /dev/null "http://127.0.0.1:${port[server]}/healthz" 2>/dev/null; do
        (( SECONDS < deadline )) && kill -0 "$server_pid" 2>/dev/null ||
            { log "ringway did not start"; tail -5 "$name.log" >&2; return 1; }
        sleep 0.1
    done
    created=$(curl -sS -m 5 -X POST -H "Authorization: Bearer $admin_token" \
        --data-binary '{"name":"bench"}' "http://127.0.0.1:${port[admin]}/admin/keys")
    rw_key=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])' <<<"$created") ||
        return 1
    curl -sS -m 5 -X POST -H "Authorization: Bearer $admin_token" -o /dev/null \
        --data-binary "{\"name\":\"mock\",\"kind\":\"openai\",\"base_url\":\"http://127.0.0.1:${port[mock]}\",\"api_key\":\"sk-mock\",\"allow_private_network\":true}" \
        "http://127.0.0.1:${port[admin]}/admin/channels"
    wait_stream_ok "${port[server]}" "$work_dir/ringway.body" "$rw_key" ||
        { log "ringway does not stream"; tail -5 "$name.log" >&2; return 1; }
    # The effective limits (a ringway without the event=limits line prints nothing).
    grep -o 'event=limits.*' "$name.log" | head -1 | sed 's/^/    /' >&2 || true
}

measure() {  # measure TARGET CLIENTS
    local target=$1 c=$2 out="$work_dir/$1.$2" body ticks0 ticks1 idle_kb peak_kb streams
    case $target in
        nginx) start_nginx "$c" || return 1; body=$work_dir/nginx.body ;;
        ringway) start_ringway "$build_dir/ringway" "$c" || return 1; body=$work_dir/ringway.body ;;
        before) start_ringway "$before_binary" "$c" || return 1; body=$work_dir/ringway.body ;;
    esac
    sleep 0.5
    idle_kb=$(status_kb "$server_pid" VmRSS)
    ticks0=$(cpu_ticks "$server_pid")
    WRK_BODY_FILE=$body WRK_AUTH=$rw_key "${client_pin[@]}" timeout -k 5 $((duration_s + 60)) \
        wrk -t1 -c"$c" -d"${duration_s}s" --timeout 20s -s "$script_dir/post.lua" \
        "http://127.0.0.1:${port[server]}" >"$out.wrk" 2>&1 || fail "$target c=$c: wrk exited $?"
    ticks1=$(cpu_ticks "$server_pid")
    peak_kb=$(status_kb "$server_pid" VmHWM)
    kill -0 "$server_pid" 2>/dev/null || fail "$target c=$c: the server died"
    streams=$(awk '/requests in/ {print $1}' "$out.wrk" | head -1)
    local non2xx errors
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$out.wrk"); non2xx=${non2xx:-0}
    errors=$(awk '/Socket errors/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$out.wrk")
    errors=${errors:-0}
    (( non2xx + errors > 0 )) && fail "$target c=$c: $non2xx non-2xx, $errors socket errors"
    awk -v s="${streams:-0}" -v n="$non2xx" -v e="$errors" -v d="$((ticks1 - ticks0))" \
        -v t="$clk_tck" -v i="$idle_kb" -v p="$peak_kb" -v c="$c" 'BEGIN {
        printf "streams=%d non2xx=%d errors=%d cpu_us=%.1f idle_mb=%.1f peak_mb=%.1f kb_per_stream=%.1f\n",
            s, n, e, (s > 0 ? d * 1e6 / t / s : 0), i / 1024, p / 1024, (p - i) / c }' >"$out.result"
    log "$target c=$c: $(cat "$out.result")"
    stop_pid "$server_pid"
    server_pid=""
}

value() { tr ' ' '\n' <"$1" 2>/dev/null | awk -F= -v k="$2" '$1 == k {print $2; exit}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

load_start=$(cut -d' ' -f1 /proc/loadavg)
start_mock || exit 1
log "mock: 127.0.0.1:${port[mock]}, $chunks events ${event_delay_ms} ms apart; fd limit $fd_limit"
for c in $clients_list; do
    if (( 2 * c + 200 > fd_limit )); then
        log "c=$c skipped: needs about $((2 * c + 200)) descriptors, the limit is $fd_limit"
        continue
    fi
    for target in $targets; do measure "$target" "$c"; done
done

printf '\n######## many live streams on one shard — bench/load/streams.sh ########\n'
printf 'wrk -t1 -c{%s} -d%ss --timeout 20s; mock: %s events %s ms apart; proxy on CPU %s (ringway\n' \
    "${clients_list// /,}" "$duration_s" "$chunks" "$event_delay_ms" "$server_cpu"
printf 'RINGWAY_SHARDS=1, nginx 1 worker), mock and wrk on CPU %s; kernel %s; load at start %s\n' \
    "$client_cpu" "$(uname -r)" "$load_start"
printf '%-8s %6s %8s %7s %7s %11s %8s %8s %13s\n' target c streams non2xx sockerr \
    cpu_us/stream idle_MB peak_MB KB/open_stream
for c in $clients_list; do
    for target in $targets; do
        f="$work_dir/$target.$c.result"
        [[ -f $f ]] || { printf '%-8s %6s   (not measured)\n' "$target" "$c"; continue; }
        printf '%-8s %6s %8s %7s %7s %11s %8s %8s %13s\n' "$target" "$c" "$(value "$f" streams)" \
            "$(value "$f" non2xx)" "$(value "$f" errors)" "$(value "$f" cpu_us)" \
            "$(value "$f" idle_mb)" "$(value "$f" peak_mb)" "$(value "$f" kb_per_stream)"
    done
    n="$work_dir/nginx.$c.result"; r="$work_dir/ringway.$c.result"
    [[ -f $n && -f $r ]] && printf '  c=%s ringway/nginx: CPU per stream %s (goal <= 0.5), peak RSS %s (goal <= 1)\n' \
        "$c" "$(ratio "$(value "$r" cpu_us)" "$(value "$n" cpu_us)")" \
        "$(ratio "$(value "$r" peak_mb)" "$(value "$n" peak_mb)")"
    b="$work_dir/before.$c.result"
    [[ -f $b && -f $r ]] && printf '  c=%s ringway/before: CPU per stream %s, peak RSS %s, failures %s -> %s\n' \
        "$c" "$(ratio "$(value "$r" cpu_us)" "$(value "$b" cpu_us)")" \
        "$(ratio "$(value "$r" peak_mb)" "$(value "$b" peak_mb)")" \
        "$(( $(value "$b" non2xx) + $(value "$b" errors) ))" \
        "$(( $(value "$r" non2xx) + $(value "$r" errors) ))"
done
if (( ${#failures[@]} > 0 )); then
    printf '\nfailures:\n'; printf '  %s\n' "${failures[@]}"
fi
exit 0
