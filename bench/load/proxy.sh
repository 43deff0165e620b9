#!/usr/bin/env bash
# bench/load/proxy.sh — the same mock upstream reached directly, through nginx (reverse proxy,
# upstream keepalive, proxy_buffering off) and through ringway (auth, metering and usage
# logging on), for POST /v1/chat/completions non-streaming (json) and streaming (stream,
# 20 content events), at each concurrency in CONCURRENCY. Prints, from one run: requests/s,
# p50/p99 latency, CPU time per request of the server process (utime+stime deltas from
# /proc/PID/stat; nginx: master + worker), the mock's CPU per request, peak RSS (VmHWM),
# failures; ratios ringway/nginx of CPU/request; added p50 latency at c=1; added time to
# first byte of a stream (bench/load/ttfb.py, sequential, one keep-alive connection). Then
# checks that ringway metered every request (/metrics, then the SQLite rows after SIGTERM)
# and, if perf works, profiles ringway (perf stat + perf record -g) during a json c=64 run.
#
# Usage: bench/load/proxy.sh [BUILD_DIR]   (default: build; needs BUILD_DIR/ringway and
#        BUILD_DIR/tests/support/mock_upstream — build with -DCMAKE_BUILD_TYPE=Release)
# Pinning (2-CPU machine): the proxy under test (ringway with RINGWAY_SHARDS=1 and all of its
# threads, or nginx master + its one worker) on SERVER_CPU=0; the mock (--threads 1), wrk and
# the TTFB client on CLIENT_CPU=1. The direct rows measure the mock alone.
# Knobs (env): DURATION_S (5) WARMUP_S (1) CONCURRENCY ("1 16 64") MODES ("json stream")
#   STREAM_CHUNKS (20) TTFB_COUNT (200) PROFILE (1: perf after the tables, 0: skip)
#   PERF_COUNT (1: perf stat --per-thread during every measured run: task-clock per request of
#   all threads, ringway's shard and writer, syscalls and context switches; a second table)
#   RESULTS_TSV (a file: one line per point, for bench/summary.py; unset: none)
#   ONE_CPU (1: also measure c=1 with everything on SERVER_CPU) PROFILE_S (5) PERF_FREQ (999) PERF_CALLGRAPH (dwarf,16384) SERVER_CPU (0) CLIENT_CPU (1) SHARDS (1) WRK_THREADS (1) KEEP_WORK_DIR (0)
#   READY_TIMEOUT_S (15) RW_KEY_JSON ({"name":"bench"}: the bench key's admin body, e.g. with "rpm"/"tpm" limits)
#   BASELINE_BUILD (unset: none) another build dir whose ringway is measured in the same run,
#   interleaved, as target "baseline" (e.g. main's build, to compare CPU per request);
#   BASELINE_KEY_JSON (RW_KEY_JSON) its key's body; BASELINE_DB (unset: a SQLite file) the
#   baseline's RINGWAY_DB, e.g. BASELINE_BUILD=build BASELINE_DB=postgres://... measures the
#   same binary on PostgreSQL against SQLite in one run
#   FLOOR (0; 1: targets floor-epoll and floor-uring too: BUILD_DIR/bench/floor_relay, a plain
#   TCP byte relay, one upstream connection per client connection, with each engine; prints
#   floor/nginx and ringway/floor task-clock per request) PERF_SPLIT (0; 1: perf record -e
#   cpu-clock -g beside every measured point, its task-clock per request split by
#   bench/load/kernel_split.py into user, TCP send + loopback delivery, TCP recv + ACK,
#   context switches, epoll/io_uring machinery, syscall entry and other)
# Loopback only; every step is bounded in time; the EXIT trap stops what this script started.
set -u -o pipefail

build_dir=${1:-build}
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
duration_s=${DURATION_S:-5}
warmup_s=${WARMUP_S:-1}
concurrency_list=${CONCURRENCY:-"1 16 64"}
modes=${MODES:-"json stream"}
stream_chunks=${STREAM_CHUNKS:-20}
ttfb_count=${TTFB_COUNT:-200}
ttfb_warmup=20
profile=${PROFILE:-1}
perf_count=${PERF_COUNT:-1}
profile_s=${PROFILE_S:-5}
perf_freq=${PERF_FREQ:-999}
perf_callgraph=${PERF_CALLGRAPH:-dwarf,16384}
shards=${SHARDS:-1}
wrk_threads=${WRK_THREADS:-1}
cpu_count=$(nproc)
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-$(( cpu_count > 1 ? 1 : 0 ))}
ready_timeout_s=${READY_TIMEOUT_S:-15}
clk_tck=$(getconf CLK_TCK)
admin_token=bench-admin-token-123456
rw_key_json=${RW_KEY_JSON:-'{"name":"bench"}'}
baseline_build=${BASELINE_BUILD:-}
baseline_key_json=${BASELINE_KEY_JSON:-$rw_key_json}
targets="direct nginx ringway"
[[ -n $baseline_build ]] && targets+=" baseline"
[[ ${FLOOR:-0} == 1 ]] && targets+=" floor-epoll floor-uring"
perf_split=${PERF_SPLIT:-0}
floor_pids=()
baseline_pid=""
baseline_key=""
cpu_goal=0.6
latency_goal_us=15

# Neither the directory nor the executables' names contain "ringway" or "mock_upstream": on a
# shared machine a colleague's `pkill -f mock_upstream` once killed this run's mock mid-point.
# The servers run through symlinks (bench-upstream, bench-gateway) in the work directory.
work_dir=$(mktemp -d /tmp/proxybench.XXXXXX)
mock_pid=""
nginx_pid=""
ringway_pid=""
helper_pids=()
failures=()
declare -A port pid
rw_key=""
# Metering ledger for ringway: completed requests wrk/ttfb.py saw, and the most requests a
# wrk run can leave in flight when it stops (one per connection; ringway records those too).
rw_completed=0
rw_inflight_max=0

log() { printf '[proxy] %s\n' "$*" >&2; }
fail() { failures+=("$*"); log "FAILURE: $*"; }

# Stops only the processes this script started, by their recorded pids.
cleanup() {
    local p
    for p in "${helper_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "$ringway_pid" "$baseline_pid" "$nginx_pid" "$mock_pid" "${floor_pids[@]}"; do
        [[ -n "$p" ]] && kill -TERM "$p" 2>/dev/null
    done
    for p in "$ringway_pid" "$baseline_pid" "$nginx_pid" "$mock_pid" "${helper_pids[@]}" \
        "${floor_pids[@]}"; do
        [[ -z "$p" ]] && continue
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [[ ${KEEP_WORK_DIR:-0} == 1 ]]; then log "work dir kept: $work_dir"; else rm -rf "$work_dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # ensure_tool, free_port

# Pinning prefixes as arrays: "${server_pin[@]}" cmd & keeps $! the server itself.
server_pin=()
client_pin=()
if (( cpu_count > 1 )); then
    server_pin=(taskset -c "$server_cpu")
    client_pin=(taskset -c "$client_cpu")
fi
wrk_pin=("${client_pin[@]}")   # one_cpu_latency() moves wrk next to the proxy.

# ---- Request bodies ---------------------------------------------------------------------
# json: plain chat completion. stream: "stream":true; direct and nginx also ask for
# include_usage, which ringway injects itself, so the mock sends all three the same bytes.
write_bodies() {
    local messages='"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write one short sentence about load balancers."}]'
    printf '{"model":"gpt-4o-mini",%s}' "$messages" >"$work_dir/json.body"
    cp "$work_dir/json.body" "$work_dir/json.ringway.body"
    printf '{"model":"gpt-4o-mini",%s,"stream":true,"stream_options":{"include_usage":true}}' \
        "$messages" >"$work_dir/stream.body"
    printf '{"model":"gpt-4o-mini",%s,"stream":true}' "$messages" >"$work_dir/stream.ringway.body"
}

is_gateway() { [[ $1 == ringway || $1 == baseline ]]; }

body_for() {  # body_for MODE TARGET
    if is_gateway "$2"; then echo "$work_dir/$1.ringway.body"; else echo "$work_dir/$1.body"; fi
}

auth_for() {
    case $1 in ringway) echo "$rw_key" ;; baseline) echo "$baseline_key" ;; *) echo "-" ;; esac
}

post() {  # post TARGET MODE [curl args...] — one request, prints the body.
    local target=$1 mode=$2 auth
    shift 2
    auth=$(auth_for "$target")
    local headers=(-H 'Content-Type: application/json')
    [[ $auth != - ]] && headers+=(-H "Authorization: Bearer $auth")
    curl -sS -m 5 "${headers[@]}" --data-binary "@$(body_for "$mode" "$target")" "$@" \
        "http://127.0.0.1:${port[$target]}/v1/chat/completions"
}

# Polls until a POST through TARGET answers 200 (or the process dies / the deadline passes).
wait_post_ok() {
    local target=$1 server_pid=$2 deadline=$((SECONDS + ready_timeout_s)) code
    while (( SECONDS < deadline )); do
        kill -0 "$server_pid" 2>/dev/null || return 1
        code=$(post "$target" json -o /dev/null -w '%{http_code}' 2>/dev/null)
        [[ $code == 200 ]] && return 0
        sleep 0.1
    done
    return 1
}

# ---- Servers -----------------------------------------------------------------------------
start_mock() {
    local binary="$build_dir/tests/support/mock_upstream" deadline=$((SECONDS + ready_timeout_s))
    [[ -x $binary ]] || { log "mock: $binary not found (build target mock_upstream)"; return 1; }
    ln -s "$(realpath "$binary")" "$work_dir/bench-upstream"
    binary="$work_dir/bench-upstream"
    "${client_pin[@]}" "$binary" --listen 127.0.0.1:0 --threads 1 \
        --default "chunks=$stream_chunks" >"$work_dir/mock.out" 2>"$work_dir/mock.err" &
    mock_pid=$!
    while (( SECONDS < deadline )); do
        port[direct]=$(awk '/^listening / {split($2, a, ":"); print a[2]}' "$work_dir/mock.out")
        [[ -n ${port[direct]} ]] && break
        kill -0 "$mock_pid" 2>/dev/null || break
        sleep 0.05
    done
    [[ -n ${port[direct]:-} ]] || { log "mock did not start:"; cat "$work_dir/mock.err" >&2; return 1; }
    pid[direct]=$mock_pid
    wait_post_ok direct "$mock_pid" || { log "mock does not answer POST"; return 1; }
    log "mock: pid $mock_pid on 127.0.0.1:${port[direct]}, 1 thread, chunks=$stream_chunks, CPU $client_cpu"
}

start_nginx() {
    local masks="" i dir="$work_dir/nginx"
    for ((i = 0; i < shards; i++)); do   # One bit mask per worker, rightmost bit = CPU 0.
        masks+=" 1$(printf '%*s' $((server_cpu + i)) '' | tr ' ' 0)"
    done
    port[nginx]=$(free_port)
    mkdir -p "$dir"
    sed -e "s|@DIR@|$dir|g" -e "s|@WORKERS@|$shards|g" -e "s|@MASKS@|$masks|g" \
        -e "s|@PORT@|${port[nginx]}|g" -e "s|@UPSTREAM_PORT@|${port[direct]}|g" \
        "$script_dir/proxy_nginx.conf.in" >"$dir/nginx.conf"
    "${server_pin[@]}" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" \
        >"$dir/stdout.log" 2>&1 &
    nginx_pid=$!
    pid[nginx]=$nginx_pid
    if ! wait_post_ok nginx "$nginx_pid"; then
        log "nginx: no 200 through 127.0.0.1:${port[nginx]}; its log:"
        tail -20 "$dir/stdout.log" "$dir/error.log" >&2
        return 1
    fi
    log "nginx: master pid $nginx_pid, worker(s) $(pgrep -P "$nginx_pid" | paste -sd, -)," \
        "127.0.0.1:${port[nginx]}, worker_processes $shards, CPU $server_cpu"
}

start_floor() {  # start_floor ENGINE — target floor-ENGINE (bench/load/floor_relay.cc), no auth.
    local target=floor-$1 binary="$build_dir/bench/floor_relay"
    [[ -x $binary ]] || { log "$binary not found (build target floor_relay)"; return 1; }
    ln -s "$(realpath "$binary")" "$work_dir/bench-$target"
    port[$target]=$(free_port)
    "${server_pin[@]}" "$work_dir/bench-$target" --engine "$1" --listen "127.0.0.1:${port[$target]}" \
        --upstream "127.0.0.1:${port[direct]}" >"$work_dir/$target.log" 2>&1 &
    pid[$target]=$!
    floor_pids+=("${pid[$target]}")
    wait_post_ok "$target" "${pid[$target]}" ||
        { log "$target: no 200; its log:"; cat "$work_dir/$target.log" >&2; return 1; }
    log "$target: pid ${pid[$target]}, 127.0.0.1:${port[$target]}, CPU $server_cpu"
}

admin_target=ringway
admin() {  # admin METHOD PATH [JSON] — to admin_target's admin API.
    curl -sS -m 5 -X "$1" -H "Authorization: Bearer $admin_token" \
        -H 'Content-Type: application/json' ${3:+--data-binary "$3"} \
        "http://127.0.0.1:${port[admin_$admin_target]}$2"
}

start_ringway() {  # start_ringway [TARGET BUILD_DIR KEY_JSON] — ringway, or the baseline.
    local name=${1:-ringway} from=${2:-$build_dir} key_json=${3:-$rw_key_json}
    local binary="$from/ringway" deadline=$((SECONDS + ready_timeout_s)) created key server
    local db="$work_dir/$name.db"
    [[ $name == baseline && -n ${BASELINE_DB:-} ]] && db=$BASELINE_DB
    [[ -x $binary ]] || { log "$name: $binary not found"; return 1; }
    ln -s "$(realpath "$binary")" "$work_dir/bench-gateway-$name"
    binary="$work_dir/bench-gateway-$name"
    port[$name]=$(free_port)
    port[admin_$name]=$(free_port)
    admin_target=$name
    env RINGWAY_LISTEN="127.0.0.1:${port[$name]}" RINGWAY_ADMIN_LISTEN="127.0.0.1:${port[admin_$name]}" \
        RINGWAY_ADMIN_TOKEN="$admin_token" RINGWAY_DB="$db" RINGWAY_DB_LOCAL="$work_dir/$name.local" \
        RINGWAY_SHARDS="$shards" RINGWAY_LOG_LEVEL=warn \
        "${server_pin[@]}" "$binary" >"$work_dir/$name.log" 2>&1 &
    server=$!
    pid[$name]=$server
    if [[ $name == ringway ]]; then ringway_pid=$server; else baseline_pid=$server; fi
    until curl -fsS -m 1 -o /dev/null "http://127.0.0.1:${port[$name]}/healthz" 2>/dev/null; do
        if ! kill -0 "$server" 2>/dev/null || (( SECONDS >= deadline )); then
            log "$name did not become healthy; its log:"; tail -20 "$work_dir/$name.log" >&2
            return 1
        fi
        sleep 0.1
    done
    created=$(admin POST /admin/keys "$key_json") || return 1
    key=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])' <<<"$created") ||
        { log "$name: key creation answered: $created"; return 1; }
    if [[ $name == ringway ]]; then rw_key=$key; else baseline_key=$key; fi
    created=$(admin POST /admin/channels "{\"name\":\"mock\",\"kind\":\"openai\",\
\"base_url\":\"http://127.0.0.1:${port[direct]}\",\"api_key\":\"sk-mock\",\
\"allow_private_network\":true}") || return 1
    if ! wait_post_ok "$name" "$server"; then
        log "$name: no 200 through 127.0.0.1:${port[$name]} (channel: $created); log:"
        tail -20 "$work_dir/$name.log" >&2
        post "$name" json >&2
        return 1
    fi
    admin_target=ringway
    log "$name: pid $server from $from, 127.0.0.1:${port[$name]} (admin ${port[admin_$name]}), key $key_json," \
        "RINGWAY_SHARDS=$shards, all threads on CPU $server_cpu"
}

# ---- Measurement -------------------------------------------------------------------------
tree_pids() { echo "$1"; pgrep -P "$1" 2>/dev/null; }

cpu_ticks() {  # utime+stime (all threads) summed over a process tree, in clock ticks.
    local total=0 p fields
    for p in $(tree_pids "$1"); do
        fields=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) || continue
        total=$((total + $(awk '{print $12 + $13}' <<<"$fields")))
    done
    echo "$total"
}

# perf_per_request FILE REQUESTS — from perf stat --per-thread: task-clock µs per request of
# all threads (tc_us), ringway's shard and writer threads, syscalls and context switches.
perf_per_request() {
    awk -F, -v r="$2" '$2 ~ /^[0-9.]+$/ {
        name = $1; sub(/-[0-9]+$/, "", name)
        class = (name ~ /^rw-shard/ ? "shard" : (name == "rw-writer" ? "writer" : "other"))
        if ($4 == "task-clock") { tc += $2 * 1000; tcc[class] += $2 * 1000 }
        else if ($4 ~ /sys_enter/) sys += $2
        else if ($4 == "context-switches") cs += $2 }
        END { if (r > 0) printf "tc_us=%.2f\ntc_shard_us=%.2f\ntc_writer_us=%.2f\nsyscalls=%.2f\ncswitches=%.2f\n",
            tc / r, tcc["shard"] / r, tcc["writer"] / r, sys / r, cs / r }' "$1"
}

peak_rss_kb() {  # VmHWM summed over a process tree.
    local total=0 p kb
    for p in $(tree_pids "$1"); do
        kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

to_us() {  # wrk latency ("45.00us", "1.23ms", "1.02s") -> microseconds.
    awk -v v="$1" 'BEGIN { n = v + 0
        if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
        else if (v ~ /m$/) print n * 60000000; else if (v ~ /s$/) print n * 1000000; else print n }'
}

wrk_requests() { awk '/requests in/ {print $1}' "$1" | head -1; }

run_wrk() {  # run_wrk TARGET MODE CONNECTIONS SECONDS OUTFILE
    local target=$1 mode=$2 c=$3 seconds=$4 out=$5 threads=$wrk_threads status completed
    (( threads > c )) && threads=$c
    WRK_BODY_FILE=$(body_for "$mode" "$target") WRK_AUTH=$(is_gateway "$target" && auth_for "$target") \
        "${wrk_pin[@]}" timeout -k 5 $((seconds + 20)) \
        wrk -t"$threads" -c"$c" -d"${seconds}s" --timeout 5s --latency -s "$script_dir/post.lua" \
        "http://127.0.0.1:${port[$target]}" >"$out" 2>&1
    status=$?
    if [[ $target == ringway ]]; then
        completed=$(wrk_requests "$out")
        rw_completed=$((rw_completed + ${completed:-0}))
        rw_inflight_max=$((rw_inflight_max + c))
    fi
    return "$status"
}

# Every server must outlive every point; one that died (crash, or killed from outside) makes
# all later numbers meaningless, so the run stops there.
servers_alive() {
    local target status
    for target in $targets; do
        [[ -n ${pid[$target]:-} ]] || continue
        kill -0 "${pid[$target]}" 2>/dev/null && continue
        wait "${pid[$target]}"; status=$?
        fail "$1: $target (pid ${pid[$target]}) died, exit status $status — stopping"
        is_gateway "$target" && tail -20 "$work_dir/$target.log" >&2
        [[ $target == direct ]] && tail -20 "$work_dir/mock.err" >&2
        printf '!!!!!!!! %s\n' "${failures[@]}"
        return 1
    done
}

# One point: warm-up, then a measured run. Writes MODE.TARGET.C.result (key=value lines).
measure() {  # measure MODE TARGET C [TAG]
    local mode=$1 target=$2 c=$3 name="$1.$2.$3${4:+.$4}" server_pid=${pid[$2]}
    local out="$work_dir/$name.wrk" ticks0 ticks1 mock0 mock1 start_ns end_ns requests
    run_wrk "$target" "$mode" "$c" "$warmup_s" "$work_dir/$name.warm" ||
        fail "$name: warm-up wrk exited $?"
    local shed0=0 shed1=0   # ringway's 503 overloaded (usage queue full) during the point.
    [[ $target == ringway ]] && shed0=$(metric ringway_overloaded_total)
    ticks0=$(cpu_ticks "$server_pid"); mock0=$(cpu_ticks "$mock_pid")
    local perf_pid=""
    if [[ $perf_count == 1 ]]; then
        perf stat -x, --per-thread -e task-clock,raw_syscalls:sys_enter,context-switches \
            -p "$(tree_pids "$server_pid" | paste -sd, -)" -o "$work_dir/$name.perfstat" \
            >/dev/null 2>&1 &
        perf_pid=$!
    fi
    local record_pid=""
    if [[ $perf_split == 1 ]]; then
        perf record -e cpu-clock -c 500000 -g -p "$(tree_pids "$server_pid" | paste -sd, -)" \
            -o "$work_dir/$name.perf" >/dev/null 2>&1 &
        record_pid=$!
    fi
    start_ns=$(date +%s%N)
    if ! run_wrk "$target" "$mode" "$c" "$duration_s" "$out"; then
        [[ -n $perf_pid ]] && { kill -INT "$perf_pid"; wait "$perf_pid"; }
        [[ -n $record_pid ]] && { kill -INT "$record_pid"; wait "$record_pid"; }
        fail "$name: wrk failed"; sed 's/^/    /' "$out" >&2; return 1
    fi
    end_ns=$(date +%s%N)
    [[ -n $perf_pid ]] && { kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null; }
    [[ -n $record_pid ]] && { kill -INT "$record_pid" 2>/dev/null; wait "$record_pid" 2>/dev/null; }
    ticks1=$(cpu_ticks "$server_pid"); mock1=$(cpu_ticks "$mock_pid")
    servers_alive "$name" || exit 1
    [[ $target == ringway ]] && shed1=$(metric ringway_overloaded_total)
    requests=$(wrk_requests "$out")
    [[ -n $requests && $requests -gt 0 ]] || { fail "$name: no requests completed"; return 1; }
    local non2xx errors
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$out"); non2xx=${non2xx:-0}
    errors=$(awk '/Socket errors/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$out"); errors=${errors:-0}
    (( non2xx > 0 )) && fail "$name: $non2xx non-2xx responses"
    (( errors > 0 )) && fail "$name: $errors socket errors ($(grep 'Socket errors' "$out"))"
    {
        echo "requests=$requests"
        echo "rps=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' "$out")"
        echo "p50_us=$(to_us "$(awk '$1 == "50%" {print $2}' "$out")")"
        echo "p99_us=$(to_us "$(awk '$1 == "99%" {print $2}' "$out")")"
        echo "non2xx=$non2xx"
        echo "overloaded=$(( ${shed1:-0} - ${shed0:-0} ))"
        echo "errors=$errors"
        awk -v d="$((ticks1 - ticks0))" -v m="$((mock1 - mock0))" -v t="$clk_tck" \
            -v r="$requests" -v w="$(( (end_ns - start_ns) / 1000000 ))" 'BEGIN {
                printf "cpu_us=%.2f\ncpu_pct=%.0f\nmock_us=%.2f\n",
                    d * 1e6 / t / r, d / t / (w / 1000) * 100, m * 1e6 / t / r }'
        echo "rss_mb=$(awk -v k="$(peak_rss_kb "$server_pid")" 'BEGIN {printf "%.1f", k / 1024}')"
        echo "load=$(cut -d' ' -f1 /proc/loadavg)"
        [[ -f $work_dir/$name.perfstat ]] && perf_per_request "$work_dir/$name.perfstat" "$requests"
        if [[ -f $work_dir/$name.perf && -f $work_dir/$name.perfstat ]]; then
            perf script -i "$work_dir/$name.perf" -F comm,ip,sym 2>/dev/null |
                python3 "$script_dir/kernel_split.py" "$(perf_per_request "$work_dir/$name.perfstat" \
                    "$requests" | awk -F= '$1 == "tc_us" {print $2}')"
        fi
    } >"$work_dir/$name.result"
    log "$name: $(tr '\n' ' ' <"$work_dir/$name.result")"
}

measure_ttfb() {  # Writes stream.TARGET.ttfb: one key=value line from ttfb.py.
    local target=$1 out="$work_dir/stream.$1.ttfb"
    "${client_pin[@]}" timeout -k 5 60 python3 "$script_dir/ttfb.py" "${port[$target]}" \
        "$(body_for stream "$target")" "$(auth_for "$target")" "$ttfb_count" "$ttfb_warmup" \
        >"$out" 2>"$out.err" || fail "ttfb $target: $(cat "$out.err" "$out")"
    [[ $target == ringway ]] && rw_completed=$((rw_completed + ttfb_count + ttfb_warmup))
    log "ttfb $target: $(cat "$out")"
}

# Supplementary c=1 latency with the mock, wrk and the proxy all on SERVER_CPU: each request
# then costs context switches instead of cross-CPU wake-ups (IPIs, which in a VM cost tens of
# microseconds and dominate the added latency of both proxies in the two-CPU layout).
one_cpu_latency() {
    local mode target
    (( cpu_count > 1 )) || return 0
    taskset -a -p -c "$server_cpu" "$mock_pid" >/dev/null || return 1
    wrk_pin=(taskset -c "$server_cpu")
    for mode in $modes; do
        for target in $targets; do
            measure "$mode" "$target" 1 onecpu
        done
    done
    wrk_pin=("${client_pin[@]}")
    taskset -a -p -c "$client_cpu" "$mock_pid" >/dev/null
}

# ---- Report ------------------------------------------------------------------------------
value() {  # value FILE KEY — from key=value pairs, one or several per line.
    tr ' ' '\n' 2>/dev/null <"$1" | awk -F= -v k="$2" '$1 == k {sub(/^[^=]*=/, ""); print; exit}'
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"
        else printf "%.2f", a / b }'
}

diff_us() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "") print "n/a"; else printf "%+.1f", a - b }'; }

verdict() {  # verdict VALUE LIMIT -> PASS (value <= limit) / FAIL / n/a
    awk -v v="$1" -v l="$2" 'BEGIN { if (v == "n/a" || v == "") print "n/a"
        else if (v + 0 <= l + 0) print "PASS"; else print "FAIL" }'
}

print_floor_ratios() {  # print_floor_ratios MODE — task-clock (and tick) ratios to the floor.
    local mode=$1 c floor f_tc
    for floor in $targets; do
        [[ $floor == floor-* ]] || continue
        for c in $concurrency_list; do
            f_tc=$(value "$work_dir/$mode.$floor.$c.result" tc_us)
            printf '  c=%s %s/nginx task-clock %s (ticks %s); ringway/%s task-clock %s (ticks %s)\n' \
                "$c" "$floor" "$(ratio "$f_tc" "$(value "$work_dir/$mode.nginx.$c.result" tc_us)")" \
                "$(ratio "$(value "$work_dir/$mode.$floor.$c.result" cpu_us)" \
                    "$(value "$work_dir/$mode.nginx.$c.result" cpu_us)")" "$floor" \
                "$(ratio "$(value "$work_dir/$mode.ringway.$c.result" tc_us)" "$f_tc")" \
                "$(ratio "$(value "$work_dir/$mode.ringway.$c.result" cpu_us)" \
                    "$(value "$work_dir/$mode.$floor.$c.result" cpu_us)")"
        done
    done
}

print_split() {  # print_split MODE — PERF_SPLIT=1: where each target's task-clock went.
    local mode=$1 c target f key
    printf 'where the CPU goes, task-clock µs per request (perf record -e cpu-clock -g,\n'
    printf 'bench/load/kernel_split.py): user; kernel: send = TCP send + loopback delivery,\n'
    printf 'recv = TCP recv + ACK, sched = context switches, poll = epoll/io_uring, entry = syscall\n'
    printf 'entry/exit, other; direct = the mock\n'
    printf '  %-11s %4s %7s %7s %7s %7s %7s %7s %7s %7s\n' target c tc_us user send recv sched poll \
        entry other
    for c in $concurrency_list; do
        for target in $targets; do
            f="$work_dir/$mode.$target.$c.result"
            [[ -n $(value "$f" k_user) ]] || continue
            printf '  %-11s %4s %7s' "$target" "$c" "$(value "$f" tc_us)"
            for key in k_user k_send k_recv k_sched k_poll k_entry k_other; do
                printf ' %7s' "$(value "$f" "$key")"
            done
            printf '\n'
        done
    done
}

print_mode_table() {
    local mode=$1 c target f
    local mode_label="json (non-streaming)"
    [[ $mode == stream ]] && mode_label="stream ($stream_chunks content events + role/finish/usage/[DONE])"
    printf '\n== POST /v1/chat/completions, %s ==\n' "$mode_label"
    printf '%-11s %4s %9s %9s %9s %10s %9s %7s %9s %8s %7s %6s %5s\n' target c req/s \
        p50_us p99_us cpu_us/req proc_cpu% rss_MB mock_us/rq non-2xx 503_ovl sockerr load
    for c in $concurrency_list; do
        for target in $targets; do
            f="$work_dir/$mode.$target.$c.result"
            if [[ ! -f $f ]]; then printf '%-11s %4s   (not measured)\n' "$target" "$c"; continue; fi
            printf '%-11s %4s %9s %9s %9s %10s %9s %7s %9s %8s %7s %6s %5s\n' "$target" "$c" \
                "$(value "$f" rps)" "$(value "$f" p50_us)" "$(value "$f" p99_us)" \
                "$(value "$f" cpu_us)" "$(value "$f" cpu_pct)" "$(value "$f" rss_mb)" \
                "$(value "$f" mock_us)" "$(value "$f" non2xx)" "$(value "$f" overloaded)" \
                "$(value "$f" errors)" "$(value "$f" load)"
        done
    done
    printf '\nringway/nginx CPU per request (goal <= %s):' "$cpu_goal"
    for c in $concurrency_list; do
        local r
        r=$(ratio "$(value "$work_dir/$mode.ringway.$c.result" cpu_us)" \
            "$(value "$work_dir/$mode.nginx.$c.result" cpu_us)")
        printf '  c=%s %s %s' "$c" "$r" "$(verdict "$r" "$cpu_goal")"
    done
    printf '\n'
    if [[ -n $baseline_build ]]; then
        printf 'ringway/baseline CPU per request (same run, interleaved):'
        for c in $concurrency_list; do
            printf '  c=%s %s' "$c" "$(ratio "$(value "$work_dir/$mode.ringway.$c.result" cpu_us)" \
                "$(value "$work_dir/$mode.baseline.$c.result" cpu_us)")"
        done
        printf '\n'
    fi
    if [[ $perf_count == 1 ]]; then
        printf 'perf stat per request (task-clock µs of all threads, of the shard and writer threads;
'
        printf 'syscalls; context switches):
'
        for c in $concurrency_list; do
            for target in $targets; do
                f="$work_dir/$mode.$target.$c.result"
                [[ -n $(value "$f" tc_us) ]] || continue
                printf '  %-11s c=%-4s tc_us=%-8s shard=%-8s writer=%-7s syscalls=%-6s cswitches=%s
' \
                    "$target" "$c" "$(value "$f" tc_us)" "$(value "$f" tc_shard_us)" \
                    "$(value "$f" tc_writer_us)" "$(value "$f" syscalls)" "$(value "$f" cswitches)"
            done
            printf '  c=%s ringway/nginx task-clock %s
' "$c" \
                "$(ratio "$(value "$work_dir/$mode.ringway.$c.result" tc_us)" \
                    "$(value "$work_dir/$mode.nginx.$c.result" tc_us)")"
        done
        print_floor_ratios "$mode"
    fi
    [[ $perf_split == 1 ]] && print_split "$mode"
    local first_c=${concurrency_list%% *} d_p50 n_p50 r_p50
    d_p50=$(value "$work_dir/$mode.direct.$first_c.result" p50_us)
    n_p50=$(value "$work_dir/$mode.nginx.$first_c.result" p50_us)
    r_p50=$(value "$work_dir/$mode.ringway.$first_c.result" p50_us)
    local added_r
    added_r=$(diff_us "$r_p50" "$d_p50")
    printf 'added p50 latency at c=%s over direct: nginx %s us, ringway %s us (goal < %s us: %s)\n' \
        "$first_c" "$(diff_us "$n_p50" "$d_p50")" "$added_r" "$latency_goal_us" \
        "$(awk -v v="$added_r" -v l="$latency_goal_us" 'BEGIN { if (v == "n/a") print "n/a";
            else if (v + 0 < l) print "PASS"; else print "FAIL" }')"
    if [[ $mode == stream && -f "$work_dir/stream.direct.ttfb" ]]; then
        local dt de
        dt=$(value "$work_dir/stream.direct.ttfb" ttfb_p50_us)
        de=$(value "$work_dir/stream.direct.ttfb" event_p50_us)
        printf 'time to first byte (ttfb.py, %s sequential requests, one keep-alive conn, p50):\n' \
            "$ttfb_count"
        for target in $targets; do
            f="$work_dir/stream.$target.ttfb"
            [[ -f $f ]] || continue
            printf '  %-8s first byte %8s us (added %7s)  first data: event %8s us (added %7s)  whole stream %8s us\n' \
                "$target" "$(value "$f" ttfb_p50_us)" "$(diff_us "$(value "$f" ttfb_p50_us)" "$dt")" \
                "$(value "$f" event_p50_us)" "$(diff_us "$(value "$f" event_p50_us)" "$de")" \
                "$(value "$f" total_p50_us)"
        done
    fi
}

print_tables() {
    printf '\n######## ringway vs nginx vs direct — bench/load/proxy.sh ########\n'
    printf 'wrk -t%s -c{%s} -d%ss --latency -s post.lua (after a %ss warm-up per point), --timeout 5s\n' \
        "$wrk_threads" "${concurrency_list// /,}" "$duration_s" "$warmup_s"
    printf 'pinning: proxy (ringway RINGWAY_SHARDS=%s, all threads / nginx worker_processes %s + master) on CPU %s;\n' \
        "$shards" "$shards" "$server_cpu"
    printf '         mock_upstream --threads 1, wrk and ttfb.py on CPU %s. Direct rows: the mock alone.\n' \
        "$client_cpu"
    printf 'cpu_us/req: utime+stime delta of the measured server (/proc/PID/stat, nginx master+worker,\n'
    printf '  direct: the mock) / completed requests; proc_cpu%%: that process busy %% of wall time;\n'
    printf '  rss_MB: VmHWM (peak) after the point; mock_us/rq: the mock'"'"'s CPU per request in that run.\n'
    printf 'ringway: auth (Bearer key), metering, usage rows to SQLite on; nginx: access_log off.\n'
    printf 'kernel %s, %s CPUs (%s), load at start: %s\n' "$(uname -r)" "$cpu_count" \
        "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" "$load_start"
    local mode
    for mode in $modes; do print_mode_table "$mode"; done
    [[ -f "$work_dir/json.direct.1.onecpu.result" ]] || return 0
    printf '\n== c=1 with everything (mock, wrk, proxy) on CPU %s: no cross-CPU wake-ups ==\n' \
        "$server_cpu"
    printf '%-7s %-8s %9s %9s %9s %10s %13s\n' mode target req/s p50_us p99_us cpu_us/req \
        "added_p50_us"
    local target f d
    for mode in $modes; do
        d=$(value "$work_dir/$mode.direct.1.onecpu.result" p50_us)
        for target in $targets; do
            f="$work_dir/$mode.$target.1.onecpu.result"
            [[ -f $f ]] || continue
            printf '%-7s %-8s %9s %9s %9s %10s %13s\n' "$mode" "$target" "$(value "$f" rps)" \
                "$(value "$f" p50_us)" "$(value "$f" p99_us)" "$(value "$f" cpu_us)" \
                "$(diff_us "$(value "$f" p50_us)" "$d")"
        done
    done
    printf '(direct cpu_us/req = the mock; the proxies'"'"' cpu_us/req here include no wake-up IPIs)\n'
}

# ---- Metering check ----------------------------------------------------------------------
metric() {  # metric NAME — one counter from ringway's /metrics.
    curl -sS -m 5 "http://127.0.0.1:${port[ringway]}/metrics" |
        awk -v n="$1" '$1 == n {print $2}'
}

check_metering() {
    local records delta excess rows status
    records=$(metric ringway_usage_records_total)
    delta=$((records - rw_records_before))
    excess=$((delta - rw_completed))
    printf '\n== metering (ringway) ==\n'
    printf 'ringway_usage_records_total: %s (+%s during the runs); requests completed by wrk\n' \
        "$records" "$delta"
    printf '  (warm-ups and profiles included) and ttfb.py: %s; difference %s (allowed 0..%s: requests\n' \
        "$rw_completed" "$excess" "$rw_inflight_max"
    printf '  in flight when a wrk run stops are recorded by ringway but not counted by wrk)\n'
    if (( excess < 0 || excess > rw_inflight_max )); then
        fail "metering: usage records +$delta vs $rw_completed completed requests"
    else
        printf '  -> OK\n'
    fi
    # Let the writer commit (RINGWAY_LOG_FLUSH_MS), then SIGTERM: it commits what is queued.
    sleep 0.5
    kill -TERM "$ringway_pid"
    timeout 40 tail --pid="$ringway_pid" -f /dev/null
    wait "$ringway_pid"; status=$?
    ringway_pid=""
    (( status == 0 )) || fail "ringway exited with status $status after SIGTERM"
    rows=$(timeout 20 sqlite3 "$work_dir/ringway.db" 'select count(*) from usage_logs' 2>&1)
    printf 'after SIGTERM (exit status %s): usage_logs rows %s, ringway_usage_records_total %s' \
        "$status" "$rows" "$records"
    if [[ $rows == "$records" ]]; then printf ' -> OK\n'; else
        printf '\n'; fail "metering: usage_logs has $rows rows, $records records were queued"; fi
}

# ---- Profile -----------------------------------------------------------------------------
profile_run_ok() {  # profile_run_ok LABEL WRK_OUT — a failed profile run would profile errors.
    local bad
    servers_alive "$1" >&2 || return 1
    bad=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10}
        END {print n + 0}' "$2")
    (( bad == 0 )) || { fail "$1: $bad failed requests"; return 1; }
}

profile_ringway() {
    local name=profile out="$work_dir/perf" p
    perf stat -e task-clock -- true >/dev/null 2>&1 || { log "perf does not work here"; return 1; }
    mkdir -p "$out"
    printf '\n== ringway profile: json, c=64, %ss per tool (separate runs, not in the tables) ==\n' \
        "$profile_s"
    for target in ringway nginx; do
        p=$(tree_pids "${pid[$target]}" | paste -sd, -)
        timeout -k 5 $((profile_s + 30)) perf stat -x, \
            -e task-clock,context-switches,cpu-migrations,raw_syscalls:sys_enter \
            -p "$p" -o "$out/$target.stat" -- sleep "$profile_s" &
        local perf_pid=$!
        helper_pids+=("$perf_pid")
        run_wrk "$target" json 64 "$profile_s" "$out/$target.stat.wrk"
        wait "$perf_pid"
        profile_run_ok "perf stat $target" "$out/$target.stat.wrk" || return 1
        local requests
        requests=$(wrk_requests "$out/$target.stat.wrk")
        printf '%s (%s requests in %ss, during perf stat):\n' "$target" "$requests" "$profile_s"
        # perf -x, lines: value,unit,event,...; task-clock is in msec.
        awk -F, -v r="$requests" '$3 ~ /task-clock|context-switches|cpu-migrations|raw_syscalls/ {
                n = $1 + 0; unit = $2
                if ($3 ~ /task-clock/) { n *= 1000; unit = "us" }
                printf "  %-26s %14.0f %-3s %10.3f per request\n", $3, n, unit, n / r }' \
            "$out/$target.stat"
    done
    # DWARF call graphs: the Release build has no frame pointers, so -g (fp) loses user stacks.
    timeout -k 5 $((profile_s + 60)) perf record -F "$perf_freq" --call-graph "$perf_callgraph" \
        -p "${pid[ringway]}" -o "$out/rw.data" -- sleep "$profile_s" >"$out/record.log" 2>&1 &
    local record_pid=$!
    helper_pids+=("$record_pid")
    run_wrk ringway json 64 "$profile_s" "$out/record.wrk"
    wait "$record_pid"
    profile_run_ok "perf record" "$out/record.wrk" || return 1
    local report=(timeout 300 perf report -i "$out/rw.data" --stdio)
    # perf report pads every line to the terminal width; strip the padding.
    local tidy=(sed -e '/^#/d' -e '/^$/d' -e 's/[ -]*$//')
    printf '\nperf record -F %s --call-graph %s -p RINGWAY, json c=64 (%s requests):\n' \
        "$perf_freq" "$perf_callgraph" "$(wrk_requests "$out/record.wrk")"
    printf '\nby thread and DSO (self time):\n'
    "${report[@]}" --no-children --sort pid,dso -g none 2>/dev/null | "${tidy[@]}" | head -16
    printf '\ntop symbols, self time (all threads):\n'
    "${report[@]}" --no-children --sort dso,symbol -g none --percent-limit 0.3 2>/dev/null |
        "${tidy[@]}" | head -50
    printf '\ntop user-space functions, inclusive (children) time:\n'
    "${report[@]}" --children --sort dso,symbol -g none --percent-limit 1 2>/dev/null |
        "${tidy[@]}" | grep -v '\[k\]' | head -40
    printf '\ntop kernel entry points, inclusive:\n'
    "${report[@]}" --children --sort symbol -g none --percent-limit 3 2>/dev/null |
        "${tidy[@]}" | grep '\[k\]' | head -25
    local symbol
    for symbol in __vfprintf_internal _raw_spin_unlock_irqrestore; do
        printf '\ncallers of %s (caller graph, >= 5%% of its samples):\n' "$symbol"
        "${report[@]}" --no-children --symbols="$symbol" -G -g caller,5,callee,function,percent \
            2>/dev/null | "${tidy[@]}" | head -40
    done
    cp "$out/rw.data" "${PERF_DATA_OUT:-/dev/null}" 2>/dev/null || true
}

# One tab-separated line per measured point, for bench/summary.py (make bench's table+plot).
write_results_tsv() {
    local file=${RESULTS_TSV:-} mode c target f
    [[ -n $file ]] || return 0
    printf 'mode\ttarget\tc\trps\tp50_us\tp99_us\tcpu_us\trss_mb\tnon2xx\toverloaded\terrors\n' \
        >"$file"
    for mode in $modes; do
        for c in $concurrency_list; do
            for target in direct nginx ringway floor-uring floor-epoll; do
                f="$work_dir/$mode.$target.$c.result"
                [[ -f $f ]] || continue
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$target" \
                    "$c" "$(value "$f" rps)" "$(value "$f" p50_us)" "$(value "$f" p99_us)" \
                    "$(value "$f" cpu_us)" "$(value "$f" rss_mb)" "$(value "$f" non2xx)" \
                    "$(value "$f" overloaded)" "$(value "$f" errors)" >>"$file"
            done
        done
    done
}

main() {
    ensure_tool wrk wrk && ensure_tool nginx nginx && ensure_tool curl curl &&
        ensure_tool sqlite3 sqlite3 || { log "missing tools"; exit 1; }
    if (( shards + server_cpu > cpu_count )) || (( client_cpu >= cpu_count )); then
        log "CPU layout does not fit $cpu_count CPUs"; exit 1
    fi
    (( cpu_count > 1 )) || log "only one CPU: no pinning, everything competes"
    load_start=$(cut -d' ' -f1-3 /proc/loadavg)
    log "uptime at start: $(uptime)"
    write_bodies
    start_mock || exit 1
    start_nginx || exit 1
    start_ringway || exit 1
    if [[ -n $baseline_build ]]; then
        start_ringway baseline "$baseline_build" "$baseline_key_json" || exit 1
    fi
    if [[ ${FLOOR:-0} == 1 ]]; then
        start_floor epoll && start_floor uring || exit 1
    fi
    local mode target c
    for mode in $modes; do
        for target in $targets; do
            printf '%s %s response: %s bytes\n' "$mode" "$target" \
                "$(post "$target" "$mode" | wc -c)" >>"$work_dir/sizes"
        done
    done
    rw_records_before=$(metric ringway_usage_records_total)
    for mode in $modes; do
        for c in $concurrency_list; do
            for target in $targets; do   # Interleaved: drift hits all alike.
                measure "$mode" "$target" "$c"
            done
        done
        if [[ $mode == stream ]]; then
            for target in $targets; do measure_ttfb "$target"; done
        fi
    done
    [[ ${ONE_CPU:-1} == 1 ]] && one_cpu_latency
    [[ $profile == 1 ]] && profile_ringway >"$work_dir/profile.txt"
    local load_end
    load_end=$(uptime)
    print_tables
    write_results_tsv
    printf '\nresponse body sizes (one curl each, same bytes expected):\n'
    sed 's/^/  /' "$work_dir/sizes"
    check_metering
    printf '\nuptime at end: %s\n' "$load_end"
    [[ -f "$work_dir/profile.txt" ]] && cat "$work_dir/profile.txt"
    if (( ${#failures[@]} > 0 )); then
        printf '\n!!!!!!!! %s FAILURE(S) !!!!!!!!\n' "${#failures[@]}"
        printf '  %s\n' "${failures[@]}"
        exit 1
    fi
    printf '\nno failed requests, metering complete.\n'
}

main
