#!/usr/bin/env bash
# bench/load/count.sh — what one proxied request costs, counted rather than timed: the
# instructions ringway executes in user space (valgrind --tool=callgrind, every thread), the
# syscalls it makes and its context switches (perf stat on the raw_syscalls tracepoint; no
# hardware counters needed, so it works in a VM). Counts do not move with the load other
# sessions put on a shared machine, so two builds compare within a percent or two where
# CPU-time ratios swing by 20%.
#
# For each mode (json: POST /v1/chat/completions whole; stream: the same streamed, 20 content
# events from the mock) and each build: ringway (RINGWAY_SHARDS=1) starts once to create the
# key and the channel, then again under the counter; WARMUP sequential requests on one
# keep-alive connection, the counter zeroed, N requests, 2 s for the writer to commit their
# rows (RINGWAY_LOG_FLUSH_MS is 50), the counter read. So a figure includes the shard, the
# usage writer and the timers that ran during the window, divided by N. But valgrind runs one
# thread at a time, and while the shard waits in io_uring_enter the writer gets almost no
# turn: its callgrind column often reads 0 (no commit in the window; the rows were there
# without valgrind). So the perf run also reads each thread's CPU time (task-clock, a
# software counter: timed, not counted), and the writer's share is taken from there.
#
# NGINX=1 counts nginx the same way (bench/load/proxy_nginx.conf.in with one worker,
# `master_process off`, so the one process is the one under the counter; its class is
# "shard") in front of the same mock, and prints ringway/nginx: instructions per request of
# the request-path thread and of the whole process, syscalls per request. CONNS=C sends the
# requests over C keep-alive connections at once (each its share, in lock step with the
# server, which is the bottleneck under callgrind), so batching across requests shows.
#
# Usage: bench/load/count.sh [BUILD_DIR]   (needs BUILD_DIR/ringway and the mock_upstream)
# Env: BASELINE_BUILD (another build dir measured the same way, e.g. main's, for ratios)
#   RW_KEY_JSON ({"name":"bench"}) BASELINE_KEY_JSON (RW_KEY_JSON): the keys' admin bodies
#   MODES ("json stream") N_CALLGRIND (1000) N_SYSCALLS (2000) WARMUP (50)
#   COUNTERS ("callgrind syscalls"): drop one to skip it
#   NGINX (unset): 1 adds nginx; CONNS (1): concurrent connections
#   KEEP_PROFILES (unset): a directory the callgrind files are copied to, as
#   NAME.MODE.callgrind.out.* (for callgrind_annotate --inclusive=no)
# Example (issue "Ledger": limits on the new key, the old rpm window on the baseline):
#   RW_KEY_JSON='{"name":"b","rpm":4000000000,"tpm":4000000000}' \
#   BASELINE_KEY_JSON='{"name":"b","rpm":4000000000}' BASELINE_BUILD=../old/build \
#   bash bench/load/count.sh build
# Loopback only; each server is killed when its window is read; the EXIT trap stops the rest.
set -u -o pipefail

build_dir=${1:-build}
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
modes=${MODES:-"json stream"}
n_callgrind=${N_CALLGRIND:-1000}
n_syscalls=${N_SYSCALLS:-2000}
warmup=${WARMUP:-50}
counters=${COUNTERS:-"callgrind syscalls"}
rw_key_json=${RW_KEY_JSON:-'{"name":"bench"}'}
baseline_build=${BASELINE_BUILD:-}
baseline_key_json=${BASELINE_KEY_JSON:-$rw_key_json}
with_nginx=${NGINX:-}
conns=${CONNS:-1}
admin_token=count-admin-token-123456
work_dir=$(mktemp -d /tmp/countbench.XXXXXX)
mock_pid=""
server_pid=""

log() { printf '[count] %s\n' "$*" >&2; }
# shellcheck source=bench/load/lib.sh
source "$script_dir/lib.sh"

cleanup() {
    local p
    for p in $server_pid $mock_pid; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work_dir"
}
trap cleanup EXIT

start_mock() {
    "$build_dir/tests/support/mock_upstream" --listen 127.0.0.1:0 --threads 1 \
        --default chunks=20 >"$work_dir/mock.out" 2>"$work_dir/mock.err" &
    mock_pid=$!
    local i
    for ((i = 0; i < 100; i++)); do
        mock_port=$(awk '/^listening / {split($2, a, ":"); print a[2]}' "$work_dir/mock.out")
        [[ -n $mock_port ]] && return 0
        sleep 0.05
    done
    log "the mock did not start: $(cat "$work_dir/mock.err")"
    return 1
}

# wait_healthy PORT — up to 60 s (valgrind starts slowly). nginx has no /healthz of its
# own: any answer will do (the mock's 404).
wait_healthy() {
    local i fail=-f
    [[ $target == nginx ]] && fail=""
    for ((i = 0; i < 600; i++)); do
        curl $fail -sS -m 1 -o /dev/null "http://127.0.0.1:$1/healthz" 2>/dev/null && return 0
        kill -0 "$server_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# requests N — N requests over $conns keep-alive connections at once (each its share, in
# turn), each checked for 200.
requests() {
    python3 - "$port" "$key" "$work_dir/$mode.$target.body" "$1" "$conns" <<'PY'
import http.client, sys, threading
port, key, body_file, n, conns = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
body = open(body_file, 'rb').read()
headers = {'Content-Type': 'application/json'}
if key != '-':
    headers['Authorization'] = 'Bearer ' + key
failures = []
def run(count):
    conn = http.client.HTTPConnection('127.0.0.1', int(port), timeout=300)
    for _ in range(count):
        conn.request('POST', '/v1/chat/completions', body, headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            failures.append(f'status {response.status}: {data[:200]!r}')
            return
threads = [threading.Thread(target=run, args=(n // conns + (1 if i < n % conns else 0),))
           for i in range(min(conns, n))]
for t in threads:
    t.start()
for t in threads:
    t.join()
if failures:
    sys.exit(failures[0])
PY
}

# prepare BUILD KEY_JSON — a database with the key and the mock channel; sets port, key.
prepare() {
    local build=$1 key_json=$2 admin_port created
    port=$(free_port)
    admin_port=$(free_port)
    export RINGWAY_LISTEN="127.0.0.1:$port" RINGWAY_ADMIN_LISTEN="127.0.0.1:$admin_port" \
        RINGWAY_ADMIN_TOKEN="$admin_token" RINGWAY_DB="$work_dir/run.db" RINGWAY_SHARDS=1 \
        RINGWAY_LOG_LEVEL=warn
    rm -f "$work_dir"/run.db*
    "$build/ringway" >"$work_dir/prepare.log" 2>&1 &
    server_pid=$!
    wait_healthy "$port" || { log "ringway did not start: $(tail -5 "$work_dir/prepare.log")"; return 1; }
    created=$(curl -sS -m 10 -H "Authorization: Bearer $admin_token" -H "Content-Type: application/json" --data-binary "$key_json" \
        "http://127.0.0.1:$admin_port/admin/keys")
    key=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])' <<<"$created") ||
        { log "key creation answered: $created"; return 1; }
    curl -sS -m 10 -o /dev/null -H "Authorization: Bearer $admin_token" -H "Content-Type: application/json" --data-binary \
        "{\"name\":\"mock\",\"kind\":\"openai\",\"base_url\":\"http://127.0.0.1:$mock_port\",\"api_key\":\"sk-mock\",\"allow_private_network\":true}" \
        "http://127.0.0.1:$admin_port/admin/channels"
    requests 1 || return 1
    kill "$server_pid"
    wait "$server_pid"
    server_pid=""
}

# prepare_nginx — a config for one nginx process (no master) in front of the mock; sets
# port, key (none) and nginx_cmd.
prepare_nginx() {
    local dir="$work_dir/nginx.prefix"
    mkdir -p "$dir"
    port=$(free_port)
    key=-
    sed -e "s|@DIR@|$dir|g" -e "s|@WORKERS@|1|g" -e '/worker_cpu_affinity/d' \
        -e 's|master_process on;|master_process off;|' \
        -e "s|@PORT@|$port|g" -e "s|@UPSTREAM_PORT@|$mock_port|g" \
        "$script_dir/proxy_nginx.conf.in" >"$dir/nginx.conf"
    nginx_cmd=(nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf")
}

# server_cmd BUILD — what runs the measured server (after prepare / prepare_nginx).
server_cmd() {
    if [[ $target == nginx ]]; then
        printf '%s\0' "${nginx_cmd[@]}"
    else
        printf '%s\0' "$1/ringway"
    fi
}

# count_callgrind BUILD N — "shard writer other" user-space instructions per request, each
# thread's count summed into its class (a thread that ran rw::Shard code is a shard, else one
# that ran rw::Writer code is the writer). The shard's count repeats within a percent; the
# writer's moves with how many rows each commit carries (one commit per RINGWAY_LOG_FLUSH_MS).
count_callgrind() {
    local build=$1 n=$2 out="$work_dir/callgrind.out" cmd
    mapfile -d '' cmd < <(server_cmd "$build")
    rm -f "$out"*
    valgrind --tool=callgrind --separate-threads=yes --compress-strings=no \
        --callgrind-out-file="$out" "${cmd[@]}" >"$work_dir/valgrind.log" 2>&1 &
    server_pid=$!
    wait_healthy "$port" || { log "ringway under valgrind did not start"; return 1; }
    requests "$warmup" || return 1
    callgrind_control -z "$server_pid" >/dev/null 2>&1
    requests "$n" || return 1
    sleep 2
    callgrind_control -d "$server_pid" >/dev/null 2>&1
    kill -9 "$server_pid"
    wait "$server_pid" 2>/dev/null
    server_pid=""
    if [[ -n ${KEEP_PROFILES:-} ]]; then
        mkdir -p "$KEEP_PROFILES"
        local f
        for f in "$out".1-*; do cp "$f" "$KEEP_PROFILES/$target.$mode.${f##*/}"; done
    fi
    awk -v n="$n" '
        /^summary:/ { count[FILENAME] = $2 }
        /^fn=rw::Shard::/ || /^fn=ngx_http_/ { shard[FILENAME] = 1 }
        /^fn=rw::Writer::/ { writer[FILENAME] = 1 }
        END {
            for (f in count) {
                class = (f in shard) ? "shard" : (f in writer) ? "writer" : "other"
                sum[class] += count[f]
            }
            printf "%.0f %.0f %.0f", sum["shard"] / n, sum["writer"] / n, sum["other"] / n
        }' "$out".1-*
}

# count_syscalls BUILD N — "syscalls/req context-switches/req shard-us writer-us other-us"
# from perf stat per thread: the last three are CPU microseconds per request by thread class
# (a thread named rw-shard-* or nginx is the shard, rw-writer the writer).
count_syscalls() {
    local build=$1 n=$2 out="$work_dir/perf.txt" perf_pid cmd
    mapfile -d '' cmd < <(server_cmd "$build")
    "${cmd[@]}" >"$work_dir/run.log" 2>&1 &
    server_pid=$!
    wait_healthy "$port" || return 1
    requests "$warmup" || return 1
    perf stat --per-thread -x, -e task-clock,raw_syscalls:sys_enter,context-switches \
        -p "$server_pid" -o "$out" &
    perf_pid=$!
    sleep 0.3
    requests "$n" || return 1
    sleep 2
    kill -INT "$perf_pid"
    wait "$perf_pid"
    kill -9 "$server_pid"
    wait "$server_pid" 2>/dev/null
    server_pid=""
    awk -F, -v n="$n" '
        $4 ~ /raw_syscalls/ { s += $2 }
        $4 ~ /context-switches/ { c += $2 }
        $4 ~ /task-clock/ {
            class = ($1 ~ /^(rw-shard|nginx)/) ? "shard" : ($1 ~ /^rw-writer/) ? "writer" : "other"
            ms[class] += $2
        }
        END {
            printf "%.2f %.2f %.2f %.2f %.2f", s / n, c / n, ms["shard"] * 1000 / n,
                ms["writer"] * 1000 / n, ms["other"] * 1000 / n
        }' "$out"
}

measure() {  # measure NAME BUILD KEY_JSON — one line per mode into $work_dir/NAME.
    local name=$1 build=$2 key_json=$3 ir="n/a n/a n/a" sys="n/a n/a n/a n/a n/a"
    target=$name
    for mode in $modes; do
        if [[ $name == nginx ]]; then prepare_nginx; else prepare "$build" "$key_json" || exit 1; fi
        [[ $counters == *callgrind* ]] && { ir=$(count_callgrind "$build" "$n_callgrind") || exit 1; }
        [[ $counters == *syscalls* ]] && { sys=$(count_syscalls "$build" "$n_syscalls") || exit 1; }
        echo "$mode $ir $sys" >>"$work_dir/$name"
        log "$name $mode: instructions/req (shard writer other) $ir, syscalls/req, context switches/req, CPU us/req (shard writer other) $sys"
    done
}

main() {
    [[ -x $build_dir/ringway ]] || { log "$build_dir/ringway not found"; exit 1; }
    [[ $counters == *callgrind* ]] && { ensure_tool valgrind valgrind || exit 1; }
    [[ $counters == *syscalls* ]] && { ensure_tool perf linux-perf || exit 1; }
    local messages='"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write one short sentence about load balancers."}]'
    # nginx asks for include_usage itself, which ringway injects: the mock sends the same bytes.
    local t
    for t in ringway baseline nginx; do
        printf '{"model":"gpt-4o-mini",%s}' "$messages" >"$work_dir/json.$t.body"
        printf '{"model":"gpt-4o-mini",%s,"stream":true}' "$messages" >"$work_dir/stream.$t.body"
    done
    printf '{"model":"gpt-4o-mini",%s,"stream":true,"stream_options":{"include_usage":true}}' \
        "$messages" >"$work_dir/stream.nginx.body"
    [[ -n $with_nginx ]] && { ensure_tool nginx nginx || exit 1; }
    start_mock || exit 1
    measure ringway "$build_dir" "$rw_key_json"
    [[ -n $baseline_build ]] && measure baseline "$baseline_build" "$baseline_key_json"
    [[ -n $with_nginx ]] && measure nginx "" ""
    printf '\n## ringway: cost per proxied request, counted (bench/load/count.sh)\n\n'
    printf 'callgrind: %s requests, perf: %s, after %s warm-up; %s connection(s); RINGWAY_SHARDS=1\n\n' \
        "$n_callgrind" "$n_syscalls" "$warmup" "$conns"
    printf '| mode | build | instructions/req: shard | writer (see above) | other threads | syscalls/req | context switches/req | CPU µs/req: shard | writer | other |\n'
    printf '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n'
    local line target
    for target in ringway baseline nginx; do
        [[ -f $work_dir/$target ]] || continue
        while read -r line; do
            # shellcheck disable=SC2086  # one line of space-separated fields
            set -- $line
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$target" "$2" "$3" \
                "$4" "$5" "$6" "$7" "$8" "$9"
        done <"$work_dir/$target"
    done
    if [[ -f $work_dir/baseline ]]; then
        printf '\nringway/baseline:'
        paste -d' ' "$work_dir/ringway" "$work_dir/baseline" | awk '
            function r(a, b) { return (b + 0 > 0) ? sprintf("%.3f", a / b) : "n/a" }
            { printf "  %s: shard instructions %s, syscalls %s, CPU shard %s, all threads %s;",
                  $1, r($2, $11), r($5, $14), r($7, $16), r($7 + $8 + $9, $16 + $17 + $18) }'
        printf '\n'
    fi
    if [[ -f $work_dir/nginx ]]; then
        printf '\nringway/nginx:'
        paste -d' ' "$work_dir/ringway" "$work_dir/nginx" | awk '
            function r(a, b) { return (b + 0 > 0) ? sprintf("%.3f", a / b) : "n/a" }
            { printf "  %s: shard instructions %s, syscalls %s, CPU shard %s, all threads %s;",
                  $1, r($2, $11), r($5, $14), r($7, $16), r($7 + $8 + $9, $16 + $17 + $18) }'
        printf '\n'
    fi
}

main
