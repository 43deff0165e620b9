#!/usr/bin/env bash
# bench/load/healthz.sh — GET /healthz on ringway and on a private nginx, back to back, with
# the same wrk settings. Measures requests/s, p50/p99 latency, server CPU time per request
# (utime+stime from /proc) and syscalls per request (perf tracepoints, else strace -c).
# Usage: bench/load/healthz.sh [BUILD_DIR]   (default: build; the binary is BUILD_DIR/ringway)
# Loopback only, every step bounded in time, everything it starts is stopped by the EXIT trap.
# Pinning (2-core machine): server (ringway, 1 shard / nginx, 1 worker) on SERVER_CPU=0,
# wrk on CLIENT_CPU=1. Knobs (env): DURATION_S THREADS CONNECTIONS WARMUP_S SYSCALL_S
# SERVER_CPU CLIENT_CPU SHARDS SYSCALL_TOOL (auto|strace).
set -u -o pipefail

build_dir=${1:-build}
duration_s=${DURATION_S:-10}
threads=${THREADS:-1}
connections=${CONNECTIONS:-64}
warmup_s=${WARMUP_S:-2}
syscall_s=${SYSCALL_S:-3}
shards=${SHARDS:-1}
cpu_count=$(nproc)
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-$(( cpu_count > 1 ? 1 : 0 ))}
ready_timeout_s=10
clk_tck=$(getconf CLK_TCK)

work_dir=$(mktemp -d /tmp/ringway-bench.XXXXXX)
ringway_pid=""
nginx_pid=""

log() { printf '[healthz] %s\n' "$*" >&2; }

# Stops only the processes this script started, by their recorded pid.
cleanup() {
    local pid
    for pid in "$ringway_pid" "$nginx_pid"; do
        [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null
    done
    for pid in "$ringway_pid" "$nginx_pid"; do
        [[ -z "$pid" ]] && continue
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # ensure_tool, free_port

# Command prefixes that pin to a CPU (empty with one CPU). Arrays, not a function: a function
# started with & runs in a subshell, and $! would then be the subshell, not the server.
server_pin=()
client_pin=()
if (( cpu_count > 1 )); then
    server_pin=(taskset -c "$server_cpu")
    client_pin=(taskset -c "$client_cpu")
fi

# Polls GET /healthz until 200 or the deadline; fails early if the server process died.
wait_healthz() {
    local port=$1 pid=$2 deadline=$((SECONDS + ready_timeout_s))
    while (( SECONDS < deadline )); do
        kill -0 "$pid" 2>/dev/null || return 1
        curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# The server's pids: the process and its children (nginx workers).
server_pids() {
    local pid=$1
    echo "$pid"
    pgrep -P "$pid" 2>/dev/null
}

# utime+stime in clock ticks, summed over the process tree (all threads included).
cpu_ticks() {
    local total=0 pid fields
    for pid in $(server_pids "$1"); do
        # Fields after the ")" that ends comm: utime and stime are stat fields 14 and 15.
        fields=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
        total=$((total + $(awk '{print $12 + $13}' <<<"$fields")))
    done
    echo "$total"
}

# Latency string from wrk ("812.00us", "1.23ms", "1.02s") -> microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
        else if (v ~ /m$/) print n * 60000000; else if (v ~ /s$/) print n * 1000000; else print n }'
}

run_wrk() {  # run_wrk PORT SECONDS OUTFILE
    "${client_pin[@]}" timeout -k 5 $(($2 + 15)) \
        wrk -t"$threads" -c"$connections" -d"${2}s" --latency "http://127.0.0.1:$1/healthz" \
        >"$3" 2>&1
}

# Syscalls named in the per-request breakdown. A short fixed list: opening all ~350
# syscalls:sys_enter_* tracepoints takes perf over 10 s here. The total comes from
# raw_syscalls:sys_enter, which counts every syscall.
syscall_names="io_uring_enter epoll_wait epoll_pwait epoll_ctl recvfrom recvmsg read sendto \
sendmsg writev write accept4 close futex setsockopt"

# Prints the top syscalls per request from NAME=COUNT lines on stdin.
syscall_top() {
    awk -v req="$1" '{ split($0, kv, "="); if (kv[2] + 0 > 0) count[kv[1]] = kv[2] }
        END { top = ""; for (i = 0; i < 5; i++) { best = ""
                for (n in count) if (best == "" || count[n] > count[best]) best = n
                if (best == "") break
                top = top sprintf("%s%s=%.2f", (top == "" ? "" : " "), best, count[best] / req)
                delete count[best] }
              print top }'
}

# Counts the server tree's syscalls during a separate SYSCALL_S-second wrk run. Prints
# "total_calls requests tool top-list". perf stat -p PIDS -- wrk counts exactly while wrk runs
# (tracepoints, little overhead); strace -c -f (ptrace, slows the server a lot, so only the
# per-request ratio is meaningful) is the fallback.
measure_syscalls() {
    local name=$1 port=$2 pid=$3 pids traced out="$work_dir/$1.sys" wrk_out="$work_dir/$1.syswrk"
    local requests events="raw_syscalls:sys_enter" syscall
    pids=$(server_pids "$pid" | paste -sd, -)
    for syscall in $syscall_names; do events+=",syscalls:sys_enter_$syscall"; done
    if [[ ${SYSCALL_TOOL:-auto} != strace ]] &&
        perf stat -x, -o /dev/null -e "$events" -- true >/dev/null 2>&1; then
        timeout -k 5 $((syscall_s + 30)) perf stat -x, -o "$out" -e "$events" -p "$pids" -- \
            "${client_pin[@]}" wrk -t"$threads" -c"$connections" -d"${syscall_s}s" \
            "http://127.0.0.1:$port/healthz" >"$wrk_out" 2>&1
        requests=$(wrk_requests "$wrk_out")
        [[ -n "$requests" ]] || return 0
        # perf -x, lines: count,unit,event,... ("<not counted>" when a task never ran).
        printf '%s %s perf %s\n' \
            "$(awk -F, '$3 == "raw_syscalls:sys_enter" {print $1 + 0}' "$out")" "$requests" \
            "$(awk -F, '$3 ~ /^syscalls:sys_enter_/ {
                    n = $3; sub(/^syscalls:sys_enter_/, "", n); print n "=" $1 + 0 }' "$out" |
                syscall_top "$requests")"
    elif command -v strace >/dev/null 2>&1; then
        local trace_args=()
        for traced in $(server_pids "$pid"); do trace_args+=(-p "$traced"); done
        timeout -k 5 $((syscall_s + 30)) strace -c -f -q -o "$out" "${trace_args[@]}" &
        local tracer=$!
        sleep 1   # strace attaches to every thread before wrk starts.
        run_wrk "$port" "$syscall_s" "$wrk_out"
        kill -INT "$tracer" 2>/dev/null
        wait "$tracer"
        requests=$(wrk_requests "$wrk_out")
        [[ -n "$requests" ]] || return 0
        # strace -c columns: % time, seconds, usecs/call, calls, [errors], syscall.
        printf '%s %s strace %s\n' "$(awk '/total$/ {print $4}' "$out")" "$requests" \
            "$(awk '/total$/ {next} /^ *[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+/ {print $NF "=" $4}' \
                "$out" | syscall_top "$requests")"
    fi
}

wrk_requests() { awk '/requests in/ {print $1}' "$1" | head -1; }

# One full measurement of a running server. Writes NAME.result: key=value lines.
measure() {
    local name=$1 port=$2 pid=$3 out="$work_dir/$1.wrk" result="$work_dir/$1.result"
    local ticks_before ticks_after requests rps p50 p99 errors non2xx wall_s sys_line
    # Other work on this host skews every number: record the load average next to them.
    echo "loadavg=$(cut -d' ' -f1 /proc/loadavg)" >"$result.pre"
    log "$name: warm-up ${warmup_s}s"
    run_wrk "$port" "$warmup_s" "$work_dir/$name.warm"
    ticks_before=$(cpu_ticks "$pid")
    local start_ns end_ns
    start_ns=$(date +%s%N)
    log "$name: wrk -t$threads -c$connections -d${duration_s}s --latency (wrk on CPU $client_cpu)"
    if ! run_wrk "$port" "$duration_s" "$out"; then
        log "$name: wrk failed:"; sed 's/^/    /' "$out" >&2; return 1
    fi
    end_ns=$(date +%s%N)
    ticks_after=$(cpu_ticks "$pid")
    requests=$(wrk_requests "$out")
    rps=$(awk '/^Requests\/sec/ {print $2}' "$out")
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$out")")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$out"); non2xx=${non2xx:-0}
    errors=$(awk '/Socket errors/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$out")
    errors=${errors:-0}
    wall_s=$(awk -v a="$start_ns" -v b="$end_ns" 'BEGIN {print (b - a) / 1e9}')
    log "$name: syscall count over ${syscall_s}s"
    sys_line=$(measure_syscalls "$name" "$port" "$pid")
    {
        echo "requests=$requests"
        echo "rps=$rps"
        echo "p50_us=$p50"
        echo "p99_us=$p99"
        echo "non2xx=$non2xx"
        echo "errors=$errors"
        awk -v d="$((ticks_after - ticks_before))" -v t="$clk_tck" -v r="$requests" -v w="$wall_s" \
            'BEGIN { printf "cpu_us_per_req=%.3f\ncpu_util=%.0f\n", d * 1e6 / t / r,
                     d / t / w * 100 }'
        read -r sys_total sys_req sys_tool sys_top <<<"$sys_line"
        awk -v s="${sys_total:-0}" -v r="${sys_req:-0}" \
            'BEGIN { if (r > 0) printf "syscalls_per_req=%.3f\n", s / r
                     else print "syscalls_per_req=n/a" }'
        echo "syscall_tool=${sys_tool:-none}"
        echo "syscall_top=${sys_top:-}"
        cat "$result.pre"
    } >"$result"
    cat "$out" >&2
}

start_ringway() {
    local port=$1 binary="$build_dir/ringway"
    if [[ ! -x "$binary" ]]; then
        log "ringway: $binary not found or not executable (build it first) — skipping ringway"
        return 1
    fi
    env RINGWAY_LISTEN="127.0.0.1:$port" RINGWAY_SHARDS="$shards" \
        RINGWAY_DB="$work_dir/ringway.db" RINGWAY_LOG_LEVEL=warn \
        "${server_pin[@]}" "$binary" >"$work_dir/ringway.log" 2>&1 &
    ringway_pid=$!
    if ! wait_healthz "$port" "$ringway_pid"; then
        local reason="did not answer GET /healthz on 127.0.0.1:$port within ${ready_timeout_s}s"
        if ! kill -0 "$ringway_pid" 2>/dev/null; then
            wait "$ringway_pid"
            reason="exited with status $? before answering GET /healthz"
        fi
        log "ringway: $reason — skipping ringway. Its output (last 20 lines):"
        tail -20 "$work_dir/ringway.log" | sed 's/^/    /' >&2
        kill -TERM "$ringway_pid" 2>/dev/null; wait "$ringway_pid" 2>/dev/null
        ringway_pid=""
        return 1
    fi
    log "ringway: pid $ringway_pid listening on 127.0.0.1:$port, $shards shard(s), CPU $server_cpu"
}

stop_ringway() {
    [[ -z "$ringway_pid" ]] && return
    kill -TERM "$ringway_pid" 2>/dev/null
    timeout 40 tail --pid="$ringway_pid" -f /dev/null
    kill -KILL "$ringway_pid" 2>/dev/null; wait "$ringway_pid" 2>/dev/null
    ringway_pid=""
}

start_nginx() {
    local port=$1 masks="" i
    # worker_cpu_affinity takes one bit mask per worker (rightmost bit = CPU 0): worker i runs
    # on CPU server_cpu+i, the same CPUs ringway's shards are pinned to.
    for ((i = 0; i < shards; i++)); do
        masks+=" 1$(printf '%*s' $((server_cpu + i)) '' | tr ' ' 0)"
    done
    mkdir -p "$work_dir/nginx"
    cat >"$work_dir/nginx/nginx.conf" <<EOF
# Generated by bench/load/healthz.sh: the nginx side of the /healthz comparison.
daemon off;
master_process on;
worker_processes $shards;
worker_cpu_affinity$masks;
pid $work_dir/nginx/nginx.pid;
error_log $work_dir/nginx/error.log warn;
events {
    worker_connections 4096;
    accept_mutex off;
}
http {
    access_log off;
    server_tokens off;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    client_body_temp_path $work_dir/nginx/client_body;
    proxy_temp_path $work_dir/nginx/proxy;
    fastcgi_temp_path $work_dir/nginx/fastcgi;
    uwsgi_temp_path $work_dir/nginx/uwsgi;
    scgi_temp_path $work_dir/nginx/scgi;
    server {
        listen 127.0.0.1:$port reuseport;
        location = /healthz {
            default_type application/json;
            return 200 '{"status":"ok"}';
        }
    }
}
EOF
    "${server_pin[@]}" nginx -p "$work_dir/nginx" -e "$work_dir/nginx/error.log" \
        -c "$work_dir/nginx/nginx.conf" >"$work_dir/nginx/stdout.log" 2>&1 &
    nginx_pid=$!
    if ! wait_healthz "$port" "$nginx_pid"; then
        log "nginx: did not answer GET /healthz on 127.0.0.1:$port — skipping nginx. Its log:"
        cat "$work_dir/nginx/stdout.log" "$work_dir/nginx/error.log" 2>/dev/null | tail -20 |
            sed 's/^/    /' >&2
        kill -TERM "$nginx_pid" 2>/dev/null; wait "$nginx_pid" 2>/dev/null
        nginx_pid=""
        return 1
    fi
    log "nginx: master pid $nginx_pid, workers $(pgrep -P "$nginx_pid" | paste -sd, -)," \
        "127.0.0.1:$port, worker_processes $shards, CPU $server_cpu"
}

stop_nginx() {
    [[ -z "$nginx_pid" ]] && return
    kill -QUIT "$nginx_pid" 2>/dev/null   # Graceful: finish requests, then exit.
    timeout 15 tail --pid="$nginx_pid" -f /dev/null
    kill -KILL "$nginx_pid" 2>/dev/null; wait "$nginx_pid" 2>/dev/null
    nginx_pid=""
}

value() {  # value NAME KEY — one field of NAME.result.
    awk -F= -v k="$2" '$1 == k {sub(/^[^=]*=/, ""); print}' "$work_dir/$1.result" 2>/dev/null
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "" || b == "" || a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"
        else printf "%.2f", a / b }'
}

print_table() {
    local metric label r n
    printf '\n== GET /healthz: ringway vs nginx ==\n'
    printf 'wrk -t%s -c%s -d%ss --latency (after %ss warm-up); server on CPU %s, wrk on CPU %s;\n' \
        "$threads" "$connections" "$duration_s" "$warmup_s" "$server_cpu" "$client_cpu"
    printf 'ringway RINGWAY_SHARDS=%s, nginx worker_processes %s; kernel %s, %s CPUs\n\n' \
        "$shards" "$shards" "$(uname -r)" "$cpu_count"
    printf '%-22s %14s %14s %16s\n' metric ringway nginx ringway/nginx
    for metric in rps:requests/s p50_us:"p50 latency (us)" p99_us:"p99 latency (us)" \
        cpu_us_per_req:"CPU us/request" cpu_util:"server CPU %" \
        syscalls_per_req:"syscalls/request" requests:"requests" non2xx:"non-2xx" \
        errors:"socket errors" loadavg:"host load (1 min)"; do
        label=${metric#*:}; metric=${metric%%:*}
        r=$(value ringway "$metric"); n=$(value nginx "$metric")
        printf '%-22s %14s %14s %16s\n' "$label" "${r:-n/a}" "${n:-n/a}" "$(ratio "$r" "$n")"
    done
    printf '\nsyscalls/request by name (counted with):\n'
    for name in ringway nginx; do
        if [[ -f "$work_dir/$name.result" ]]; then
            printf '  %-8s (%s): %s\n' "$name" "$(value "$name" syscall_tool)" \
                "$(value "$name" syscall_top)"
        else
            printf '  %-8s not measured\n' "$name"
        fi
    done
    printf '\nCPU us/request = (utime+stime of the server process tree, /proc/PID/stat)'
    printf ' / requests.\n'
    printf 'syscalls/request come from a separate %ss run; io_uring_enter counts once per call.\n' \
        "$syscall_s"
}

main() {
    ensure_tool wrk wrk || { log "wrk is missing and could not be installed"; exit 1; }
    ensure_tool nginx nginx || { log "nginx is missing and could not be installed"; exit 1; }
    ensure_tool curl curl || { log "curl is missing"; exit 1; }
    if (( shards + server_cpu > cpu_count )) || (( client_cpu >= cpu_count )); then
        log "CPU layout does not fit $cpu_count CPUs (SHARDS=$shards SERVER_CPU=$server_cpu" \
            "CLIENT_CPU=$client_cpu)"; exit 1
    fi
    (( cpu_count > 1 )) || log "only one CPU: no pinning, wrk competes with the server"
    local ringway_port nginx_port ran=0
    ringway_port=$(free_port)
    if start_ringway "$ringway_port"; then
        curl -sS -i -m 2 "http://127.0.0.1:$ringway_port/healthz" >"$work_dir/ringway.response" 2>&1
        measure ringway "$ringway_port" "$ringway_pid" && ran=$((ran + 1))
        stop_ringway
    fi
    nginx_port=$(free_port)
    if start_nginx "$nginx_port"; then
        curl -sS -i -m 2 "http://127.0.0.1:$nginx_port/healthz" >"$work_dir/nginx.response" 2>&1
        measure nginx "$nginx_port" "$nginx_pid" && ran=$((ran + 1))
        stop_nginx
    fi
    for name in ringway nginx; do
        [[ -f "$work_dir/$name.response" ]] || continue
        printf '\n%s response (%s bytes incl. head):\n' "$name" \
            "$(wc -c <"$work_dir/$name.response")"
        sed 's/^/    /' "$work_dir/$name.response"
        echo
    done
    print_table
    (( ran > 0 ))
}

main
