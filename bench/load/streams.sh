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
#   TARGETS ("nginx ringway", plus "before" when BEFORE is set, plus "floor-epoll floor-uring"
#   when FLOOR=1) BEFORE (a ringway binary) FLOOR (0; 1: also the floor relay,
#   BUILD_DIR/bench/floor_relay, a plain TCP byte relay with each engine: the least CPU any
#   proxy that relays each event as it arrives pays; prints floor/nginx and ringway/floor)
#   REPEAT (3: each point measured REPEAT times, targets alternating nginx, ringway, before,
#   nginx, ...; the table shows the median and the range, and the ringway/nginx ratio is
#   taken within each round) COUNT (1: perf stat counts syscalls and context switches per
#   stream, all threads of the server; 0: skip) PERF_RECORD (0; 1: perf record -e cpu-clock
#   -g of the server in every round: top symbols of the first round, and the split of its CPU
#   by bench/load/kernel_split.py: user, TCP send + loopback delivery, TCP recv + ACK,
#   context switches, epoll/io_uring machinery, syscall entry, other; medians per target)
#   SERVER_CPU (0) CLIENT_CPU (1) KEEP_WORK_DIR (0)
# CPU per stream is taken over a window in steady state, from WINDOW_SKIP_S (1.5) after wrk
# starts to 0.5 s before it ends: server CPU in the window / streams relayed in it (the
# mock's delayed event writes in the window / CHUNKS - 1, from /__mock/stats), so connection
# ramp-up and streams cut by wrk's stop do not count, and a target whose streams run slower
# is not charged for streams it did not finish.
# The CPU figure is perf's task-clock of every server thread (perf stat --per-thread), split
# into user and system time by the share of kernel samples of perf record -e cpu-clock (one
# every 500 µs), and for ringway by thread class (shard = rw-shard-*, writer = rw-writer,
# iowq = io_uring's iou-wrk-* workers, other). The utime+stime ticks of /proc/PID/stat are
# printed beside it (tick_us) but not used: on this VM (CONFIG_HZ=250, tick-sampled
# accounting) they read 44 and 144 µs per stream for the same nginx in two rounds, while
# task-clock read 261 and 344 (and 0 in a round of another run).
# Needs perf (linux-perf) with perf_event_paranoid <= 2 for the server's own processes.
set -u -o pipefail

build_dir=${1:-build}
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
clients_list=${CLIENTS:-"1000 4000 9000"}
duration_s=${DURATION_S:-6}
chunks=${CHUNKS:-20}
event_delay_ms=${EVENT_DELAY_MS:-50}
repeat=${REPEAT:-3}
count_events=${COUNT:-1}
perf_record=${PERF_RECORD:-0}
window_skip_s=${WINDOW_SKIP_S:-1.5}
window_s=$(awk -v d="$duration_s" -v k="$window_skip_s" 'BEGIN {print d - k - 0.5}')
before_binary=${BEFORE:-}
floor=${FLOOR:-0}
floor_targets=""
[[ $floor == 1 ]] && floor_targets=" floor-epoll floor-uring"
targets=${TARGETS:-"nginx ringway${before_binary:+ before}$floor_targets"}
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
cpu_ticks() {  # utime+stime clock ticks over the process tree (a cross-check: see above).
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

start_floor() {  # start_floor ENGINE — the floor relay (bench/load/floor_relay.cc), no auth.
    local binary=$build_dir/bench/floor_relay name=$work_dir/floor.$1.$RANDOM
    [[ -x $binary ]] || { log "$binary not found (build target floor_relay)"; return 1; }
    port[server]=$(free_port)
    ln -sf "$(realpath "$binary")" "$name.bench-floor"
    "${server_pin[@]}" "$name.bench-floor" --engine "$1" --listen "127.0.0.1:${port[server]}" \
        --upstream "127.0.0.1:${port[mock]}" >"$name.out" 2>"$name.err" &
    server_pid=$!
    wait_stream_ok "${port[server]}" "$work_dir/nginx.body" ||
        { log "floor relay ($1) does not stream"; cat "$name.err" >&2; return 1; }
    rw_key=""
}

mock_requests() {  # "streams begun, connections accepted, delayed writes" (/__mock/stats).
    curl -sS -m 2 "http://127.0.0.1:${port[mock]}/__mock/stats" 2>/dev/null |
        python3 -c 'import json, sys; s = json.load(sys.stdin)
print(s["requests_total"], s["connections_accepted"], s["delayed_writes"])'
}

# perf_start OUT PID — in the window, for every thread of the server (nginx: master and
# worker): perf stat --per-thread task-clock (the CPU figure), perf record -e cpu-clock every
# 500 µs (the user/system split; with -g when PERF_RECORD=1, first round) and, COUNT=1 in
# the first round, the counts below. Sets perf_pids; perf_stop ends them.
perf_pids=""
perf_start() {
    local pids graph=()
    pids=$(tree_pids "$2" | paste -sd, -)
    [[ $perf_record == 1 ]] && graph=(-g)
    perf stat -x, --per-thread -e task-clock -p "$pids" -o "$1.clock" >/dev/null 2>&1 &
    perf_pids=$!
    perf record -e cpu-clock -c 500000 "${graph[@]}" -p "$pids" -o "$1.perf" >/dev/null 2>&1 &
    perf_pids+=" $!"
    if [[ $count_events == 1 && $round == 1 ]]; then
        perf stat -x, -e "$count_list" -p "$pids" -o "$1.stat" >/dev/null 2>&1 &
        perf_pids+=" $!"
    fi
}
perf_stop() {
    local p
    for p in $perf_pids; do kill -INT "$p" 2>/dev/null; done
    for p in $perf_pids; do wait "$p" 2>/dev/null; done
    perf_pids=""
}
thread_class() {  # awk: the class of a thread name (ringway's shard, writer, io-wq workers).
    echo 'function thread_class(comm) {
        if (comm ~ /^rw-shard/) return "shard"; if (comm == "rw-writer") return "writer"
        if (comm ~ /^iou-wrk/) return "iowq"; return "other" }'
}
# cpu_classes OUT STREAMS — " cpu_us=… usr_us=… sys_us=… CLASS_usr=… CLASS_sys=…" per stream:
# task-clock per class, split into user and system by the share of kernel samples.
cpu_classes() {
    [[ -f $1.clock && $2 -gt 0 ]] || return 0
    { awk -F, '$4 == "task-clock" && $2 ~ /^[0-9.]+$/ {
            name = $1; sub(/-[0-9]+$/, "", name); print "clock", thread_class(name), $2 * 1000 }
        '"$(thread_class)" "$1.clock"
      perf script -G -i "$1.perf" -F comm,ip 2>/dev/null | awk '{
            print "sample", thread_class($1), (substr($NF, 1, 4) == "ffff" && length($NF) == 16 ? "k" : "u") }
        '"$(thread_class)"
    } | awk -v s="$2" '
        $1 == "clock" { us[$2] += $3; total += $3 }
        $1 == "sample" { n[$2] += 1; if ($3 == "k") k[$2] += 1; nk += ($3 == "k"); ns += 1 }
        END {
            printf " cpu_us=%.1f usr_us=%.1f sys_us=%.1f", total / s,
                (ns ? total * (1 - nk / ns) : 0) / s, (ns ? total * nk / ns : 0) / s
            for (c in us) printf " %s_usr=%.1f %s_sys=%.1f", c, (n[c] ? us[c] * (1 - k[c] / n[c]) : 0) / s,
                c, (n[c] ? us[c] * k[c] / n[c] : us[c]) / s
        }'
}

# What perf stat counts (COUNT=1, first round): syscalls, context switches, the perf task
# clock (ms), nginx's reads, writes and waits, io_uring's SQEs, CQEs, poll arms (a request
# that found its socket empty waits on poll), punts to io-wq workers and io_uring_enter calls.
count_names=(syscalls cswitches task_clock_us recvfrom writev epoll_wait sqes cqes poll_arms iowq_punts
    uring_enters)
count_list=raw_syscalls:sys_enter,context-switches,task-clock,syscalls:sys_enter_recvfrom
count_list+=,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_wait,io_uring:io_uring_submit_req
count_list+=,io_uring:io_uring_complete,io_uring:io_uring_poll_arm
count_list+=,io_uring:io_uring_queue_async_work,syscalls:sys_enter_io_uring_enter
perf_counts() {  # perf_counts OUT STREAMS — "name=per-stream ..." of what perf stat counted.
    [[ -f $1.stat && $2 -gt 0 ]] || return 0
    local i=0 event
    for event in ${count_list//,/ }; do
        awk -F, -v e="$event" -v n="${count_names[$i]}" -v s="$2" '$3 == e && $1 ~ /^[0-9.]+$/ {
            printf " %s=%.2f", n, $1 / s * (e == "task-clock" ? 1000 : 1) }' "$1.stat"
        i=$((i + 1))
    done
}

measure() {  # measure TARGET CLIENTS ROUND
    local target=$1 c=$2 out="$work_dir/$1.$2.$3" body ticks0 ticks1 idle_kb peak_kb streams
    case $target in
        nginx) start_nginx "$c" || return 1; body=$work_dir/nginx.body ;;
        ringway) start_ringway "$build_dir/ringway" "$c" || return 1; body=$work_dir/ringway.body ;;
        before) start_ringway "$before_binary" "$c" || return 1; body=$work_dir/ringway.body ;;
        floor-*) start_floor "${target#floor-}" "$c" || return 1; body=$work_dir/nginx.body ;;
    esac
    sleep 0.5
    idle_kb=$(status_kb "$server_pid" VmRSS)
    WRK_BODY_FILE=$body WRK_AUTH=$rw_key "${client_pin[@]}" timeout -k 5 $((duration_s + 60)) \
        wrk -t1 -c"$c" -d"${duration_s}s" --timeout 20s -s "$script_dir/post.lua" \
        "http://127.0.0.1:${port[server]}" >"$out.wrk" 2>&1 &
    local wrk_pid=$! started0 started1 upconns0 upconns1 events0 events1
    # The window: connections are open and streams flow back to back (steady state).
    sleep "$window_skip_s"
    perf_start "$out" "$server_pid"
    read -r started0 upconns0 events0 < <(mock_requests); ticks0=$(cpu_ticks "$server_pid")
    sleep "$window_s"
    ticks1=$(cpu_ticks "$server_pid"); read -r started1 upconns1 events1 < <(mock_requests)
    perf_stop
    wait "$wrk_pid" || fail "$target c=$c: wrk exited $?"
    peak_kb=$(status_kb "$server_pid" VmHWM)
    kill -0 "$server_pid" 2>/dev/null || fail "$target c=$c: the server died"
    streams=$(awk '/requests in/ {print $1}' "$out.wrk" | head -1)
    # Streams relayed in the window: the mock's delayed event writes / those of one stream
    # (CHUNKS - 1: the first event follows the head at once). Streams begun come in waves
    # (every client starts at once, and their streams stay in step), so counting them
    # moved the per-stream figure by up to a third from round to round.
    local non2xx errors begun=$((started1 - started0))
    (( chunks > 1 )) && begun=$(( (events1 - events0) / (chunks - 1) ))
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$out.wrk"); non2xx=${non2xx:-0}
    errors=$(awk '/Socket errors/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$out.wrk")
    errors=${errors:-0}
    (( non2xx + errors > 0 )) && fail "$target c=$c: $non2xx non-2xx, $errors socket errors"
    {
        printf 'streams=%s window_streams=%s begun=%s non2xx=%s errors=%s' "${streams:-0}" "$begun" \
            "$((started1 - started0))" "$non2xx" "$errors"
        cpu_classes "$out" "$begun"
        awk -v s="$begun" -v d="$((ticks1 - ticks0))" -v t="$clk_tck" \
            'BEGIN { printf " tick_us=%.1f", (s > 0 ? d * 1e6 / t / s : 0) }'
        perf_counts "$out" "$begun"
        kernel_split "$out" "$begun"
        awk -v u="$((upconns1 - upconns0))" -v i="$idle_kb" -v p="$peak_kb" -v c="$c" 'BEGIN {
            printf " upstream_connects=%d idle_mb=%.1f peak_mb=%.1f kb_per_stream=%.1f\n", u,
                i / 1024, p / 1024, (p - i) / c }'
    } >"$out.result"
    log "$target c=$c round $3: $(cat "$out.result")"
    stop_pid "$server_pid"
    server_pid=""
    if [[ $perf_record == 1 && $round == 1 ]]; then
        perf report -i "$out.perf" --no-children --sort comm,sym -g none --stdio 2>/dev/null |
            grep -v '^#' | grep -v '^$' | grep '%' | head -40 >"$out.top"
    fi
}

# kernel_split OUT STREAMS — " k_user=… k_send=… …" µs per stream (PERF_RECORD=1: the
# profile has call chains): the task-clock figure split by bench/load/kernel_split.py.
kernel_split() {
    [[ $perf_record == 1 && -f $1.perf && $2 -gt 0 ]] || return 0
    local cpu
    cpu=$(cpu_classes "$1" "$2" | tr ' ' '\n' | awk -F= '$1 == "cpu_us" {print $2}')
    [[ -n $cpu ]] || return 0
    printf ' %s' "$(perf script -i "$1.perf" -F comm,ip,sym 2>/dev/null |
        python3 "$script_dir/kernel_split.py" "$cpu")"
}

value() { tr ' ' '\n' 2>/dev/null <"$1" | awk -F= -v k="$2" '$1 == k {print $2; exit}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'; }

# stat FILES KEY — "median min max" of KEY over result files ("-" when none has it).
stat() {
    local key=$1 f v; shift
    for f in "$@"; do v=$(value "$f" "$key"); [[ -n $v && $v != - ]] && echo "$v"; done |
        sort -g | awk '{v[NR] = $1} END {
            if (NR == 0) { print "- - -"; exit }
            m = (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)
            printf "%.4g %.4g %.4g\n", m, v[1], v[NR] }'
}
median() { stat "$@" | cut -d' ' -f1; }
# ratios A B C KEY — A/B per round (result files $work_dir/A.C.ROUND.result), one per line.
ratios() {
    local r a b
    for r in $(seq "$repeat"); do
        a=$(value "$work_dir/$1.$3.$r.result" "$4"); b=$(value "$work_dir/$2.$3.$r.result" "$4")
        [[ -n $a && -n $b ]] && ratio "$a" "$b"
    done | grep -v n/a | sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) { print "n/a"; exit }
        m = (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)
        printf "%.2f [%.2f-%.2f] over %d rounds\n", m, v[1], v[NR], NR }'
}

load_start=$(cut -d' ' -f1 /proc/loadavg)
start_mock || exit 1
log "mock: 127.0.0.1:${port[mock]}, $chunks events ${event_delay_ms} ms apart; fd limit $fd_limit"
for c in $clients_list; do
    if (( 2 * c + 200 > fd_limit )); then
        log "c=$c skipped: needs about $((2 * c + 200)) descriptors, the limit is $fd_limit"
        continue
    fi
    for round in $(seq "$repeat"); do
        for target in $targets; do measure "$target" "$c" "$round"; done
    done
done
load_end=$(cut -d' ' -f1 /proc/loadavg)

printf '\n######## many live streams on one shard — bench/load/streams.sh ########\n'
printf 'wrk -t1 -c{%s} -d%ss --timeout 20s; mock: %s events %s ms apart; proxy on CPU %s (ringway\n' \
    "${clients_list// /,}" "$duration_s" "$chunks" "$event_delay_ms" "$server_cpu"
printf 'RINGWAY_SHARDS=1, nginx 1 worker), mock and wrk on CPU %s; kernel %s; load %s at start, %s at end\n' \
    "$client_cpu" "$(uname -r)" "$load_start" "$load_end"
printf '%s rounds, targets alternating; CPU figures are medians [min-max] in µs per stream;\n' "$repeat"
printf 'usr/sys: user and system time; shd_/wrt_: the shard and writer threads (ringway);\n'
printf 'cpu_us: perf task-clock of every server thread in the window; tick_us: utime+stime ticks of\n'
printf '/proc/PID/stat over the same window (sampled at CONFIG_HZ; unreliable on this VM, see the header).\n'
printf '%-11s %6s %8s %6s %22s %7s %7s %7s %7s %7s %7s %7s %7s %7s\n' target c streams errors \
    'cpu_us [min-max]' usr sys shd_usr shd_sys wrt_usr wrt_sys tick_us idle_MB peak_MB
for c in $clients_list; do
    for target in $targets; do
        files=("$work_dir/$target.$c".*.result)
        [[ -f ${files[0]} ]] || { printf '%-11s %6s   (not measured)\n' "$target" "$c"; continue; }
        read -r cpu_m cpu_lo cpu_hi < <(stat cpu_us "${files[@]}")
        errs=0
        for f in "${files[@]}"; do errs=$((errs + $(value "$f" non2xx) + $(value "$f" errors))); done
        printf '%-11s %6s %8s %6s %22s %7s %7s %7s %7s %7s %7s %7s %7s %7s\n' "$target" "$c" \
            "$(median streams "${files[@]}")" "$errs" "$cpu_m [$cpu_lo-$cpu_hi]" \
            "$(median usr_us "${files[@]}")" "$(median sys_us "${files[@]}")" \
            "$(median shard_usr "${files[@]}")" "$(median shard_sys "${files[@]}")" \
            "$(median writer_usr "${files[@]}")" "$(median writer_sys "${files[@]}")" \
            "$(median tick_us "${files[@]}")" \
            "$(median idle_mb "${files[@]}")" "$(median peak_mb "${files[@]}")"
        counted=""
        for name in "${count_names[@]}"; do
            v=$(value "$work_dir/$target.$c.1.result" "$name")
            [[ -n $v && $v != 0.00 ]] && counted+=" $name=$v"
        done
        [[ -n $counted ]] && printf '    counted per stream (round 1):%s\n' "$counted"
        iowq=$(median iowq_usr "${files[@]}")
        [[ $iowq != - && -n $iowq ]] && printf '    %s io-wq workers: usr %s sys %s µs/stream\n' "$target" \
            "$iowq" "$(median iowq_sys "${files[@]}")"
    done
    printf '  c=%s ringway/nginx: CPU per stream %s (goal <= 0.5); system %s; peak RSS %s (goal <= 1)\n' \
        "$c" "$(ratios ringway nginx "$c" cpu_us)" "$(ratios ringway nginx "$c" sys_us)" \
        "$(ratios ringway nginx "$c" peak_mb)"
    [[ -n $before_binary ]] && printf '  c=%s ringway/before: CPU per stream %s; system %s; peak RSS %s\n' \
        "$c" "$(ratios ringway before "$c" cpu_us)" "$(ratios ringway before "$c" sys_us)" \
        "$(ratios ringway before "$c" peak_mb)"
    for target in $floor_targets; do
        printf '  c=%s %s/nginx: CPU per stream %s; system %s; ringway/%s: CPU per stream %s; system %s\n' \
            "$c" "$target" "$(ratios "$target" nginx "$c" cpu_us)" "$(ratios "$target" nginx "$c" sys_us)" \
            "$target" "$(ratios ringway "$target" "$c" cpu_us)" "$(ratios ringway "$target" "$c" sys_us)"
    done
    if [[ $perf_record == 1 ]]; then
        printf '\n  where the CPU goes, µs per stream (median over rounds; perf record -e cpu-clock -g,\n'
        printf '  bench/load/kernel_split.py): user; kernel: send = TCP send + loopback delivery to the\n'
        printf '  receiver, recv = TCP recv + ACK, sched = context switches, poll = epoll/io_uring\n'
        printf '  machinery, entry = syscall entry/exit, other\n'
        printf '  %-11s %7s %7s %7s %7s %7s %7s %7s %7s\n' target cpu_us user send recv sched poll entry other
        for target in $targets; do
            files=("$work_dir/$target.$c".*.result)
            [[ -f ${files[0]} ]] || continue
            printf '  %-11s %7s' "$target" "$(median cpu_us "${files[@]}")"
            for key in k_user k_send k_recv k_sched k_poll k_entry k_other; do
                printf ' %7s' "$(median "$key" "${files[@]}")"
            done
            printf '\n'
        done
    fi
    for top in "$work_dir"/*."$c".1.top; do
        [[ -f $top ]] || continue
        printf '\n  perf record -e cpu-clock -g, %s c=%s round 1, top symbols (comm, symbol):\n' \
            "$(basename "$top" ".$c.1.top")" "$c"
        sed 's/^/    /' "$top" | head -30
    done
done
if (( ${#failures[@]} > 0 )); then
    printf '\nfailures:\n'; printf '  %s\n' "${failures[@]}"
fi
exit 0
