#!/usr/bin/env bash
# bench/load/redis_cost.sh — what sharing rate limits through Redis (RINGWAY_REDIS) costs:
# two ringways from the same build, each with RINGWAY_SHARDS=1 and the same key (rpm, tpm and
# max_concurrency set high enough never to refuse; requests set max_tokens so the tpm
# reservation stays small), one with RINGWAY_REDIS pointing at a
# redis-server this script starts, one without; wrk alternates between them (ROUNDS times,
# DURATION_S each, CONCURRENCY connections) and the CPU time of each part is read from
# /proc/PID/task/TID/stat: the shard thread per request, the rw-redis thread and
# redis-server per second and per request, and the batches' round trip from /metrics.
# Usage: bench/load/redis_cost.sh [BUILD_DIR]   (default build; Release build; needs wrk,
#        redis-server). Loopback only; bounded in time; stops what it started, by pid.
set -u -o pipefail
build_dir=${1:-build}
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
duration_s=${DURATION_S:-10}
concurrency=${CONCURRENCY:-16}
rounds=${ROUNDS:-2}
key_json='{"name":"bench","rpm":4000000000,"tpm":4000000000,"max_concurrency":100000}'
admin_token=bench-admin-token-123456
clk_tck=$(getconf CLK_TCK)
work_dir=$(mktemp -d /tmp/rediscost.XXXXXX)
pids=()
declare -A port pid
log() { printf '[redis_cost] %s\n' "$*" >&2; }
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
    done
    rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
source "$script_dir/lib.sh"  # ensure_tool, free_port
ensure_tool wrk wrk && ensure_tool redis-server redis-server || { log "missing tools"; exit 1; }

until_ok() {  # until_ok SECONDS COMMAND... — polls the command until it succeeds.
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do (( SECONDS < deadline )) || return 1; sleep 0.1; done
}

ticks_of() {  # ticks_of PID [THREAD_NAME_PREFIX] — utime+stime of a process or of its threads.
    local total=0 task fields
    for task in /proc/"$1"/task/*; do
        [[ -n ${2:-} && $(cat "$task/comm" 2>/dev/null) != "$2"* ]] && continue
        fields=$(sed 's/.*) //' "$task/stat" 2>/dev/null) || continue
        total=$((total + $(awk '{print $12 + $13}' <<<"$fields")))
    done
    echo "$total"
}

metric() { curl -sS -m 5 "http://127.0.0.1:${port[$1]}/metrics" | awk -v n="$2" '$1 == n {print $2}'; }

ln -s "$(realpath "$build_dir/tests/support/mock_upstream")" "$work_dir/bench-upstream"
"$work_dir/bench-upstream" --listen 127.0.0.1:0 --threads 1 >"$work_dir/mock.out" 2>&1 &
pids+=($!)
until_ok 15 grep -q '^listening ' "$work_dir/mock.out" || { log "mock did not start"; exit 1; }
port[mock]=$(awk '/^listening / {split($2, a, ":"); print a[2]}' "$work_dir/mock.out")
port[redis]=$(free_port)
redis-server --port "${port[redis]}" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work_dir" --daemonize no --logfile "$work_dir/redis.log" &
pid[redis]=$!
pids+=("${pid[redis]}")
until_ok 15 redis-cli -p "${port[redis]}" ping || { log "redis-server did not start"; exit 1; }
printf '{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"Write one short sentence about load balancers."}]}' \
    >"$work_dir/body.json"

for name in shared alone; do
    port[$name]=$(free_port)
    port[admin_$name]=$(free_port)
    extra=()
    [[ $name == shared ]] && extra=("RINGWAY_REDIS=redis://127.0.0.1:${port[redis]}")
    ln -s "$(realpath "$build_dir/ringway")" "$work_dir/bench-gateway-$name"
    env RINGWAY_LISTEN="127.0.0.1:${port[$name]}" RINGWAY_ADMIN_LISTEN="127.0.0.1:${port[admin_$name]}" \
        RINGWAY_ADMIN_TOKEN="$admin_token" RINGWAY_DB="$work_dir/$name.db" RINGWAY_SHARDS=1 \
        RINGWAY_LOG_LEVEL=warn "${extra[@]}" "$work_dir/bench-gateway-$name" >"$work_dir/$name.log" 2>&1 &
    pid[$name]=$!
    pids+=("${pid[$name]}")
    until_ok 60 curl -fsS -m 1 "http://127.0.0.1:${port[$name]}/healthz" ||
        { log "$name did not start"; cat "$work_dir/$name.log" >&2; exit 1; }
    admin() { curl -fsS -m 10 -X "$1" -H "Authorization: Bearer $admin_token" \
        -H 'Content-Type: application/json' -d "$3" "http://127.0.0.1:${port[admin_$name]}$2"; }
    created=$(admin POST /admin/keys "$key_json") || exit 1
    declare -g "key_$name=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])' <<<"$created")"
    admin POST /admin/channels "{\"name\":\"mock\",\"kind\":\"openai\",\"base_url\":\"http://127.0.0.1:${port[mock]}\",\"api_key\":\"sk-mock\",\"allow_private_network\":true,\"models\":[\"gpt-4o-mini\"]}" >/dev/null || exit 1
    secret_var=key_$name
    until_ok 20 curl -fsS -m 2 -H "Authorization: Bearer ${!secret_var}" -H 'Content-Type: application/json' \
        --data-binary @"$work_dir/body.json" "http://127.0.0.1:${port[$name]}/v1/chat/completions" ||
        { log "$name: no 200"; exit 1; }
done
[[ $(metric shared ringway_redis_up) == 1 ]] || { log "the shared gateway is not connected to Redis"; exit 1; }

declare -A shard_ticks requests redis_thread_ticks redis_server_ticks seconds non2xx
for name in shared alone; do non2xx[$name]=0; shard_ticks[$name]=0; requests[$name]=0; redis_thread_ticks[$name]=0; redis_server_ticks[$name]=0; seconds[$name]=0; done
for ((round = 0; round < rounds; round++)); do
    for name in shared alone; do
        secret_var=key_$name
        s0=$(ticks_of "${pid[$name]}" rw-shard); r0=$(ticks_of "${pid[$name]}" rw-redis)
        q0=$(ticks_of "${pid[redis]}"); t0=$SECONDS
        WRK_BODY_FILE="$work_dir/body.json" WRK_AUTH=${!secret_var} timeout -k 5 $((duration_s + 20)) \
            wrk -t1 -c"$concurrency" -d"${duration_s}s" --timeout 5s -s "$script_dir/post.lua" \
            "http://127.0.0.1:${port[$name]}" >"$work_dir/wrk.$name.$round" 2>&1
        done_requests=$(awk '/requests in/ {print $1}' "$work_dir/wrk.$name.$round")
        # A usage queue full (503 local_log_full: the writer behind on a loaded machine) is
        # counted and shown, not fatal; any other non-2xx is.
        failed=$(awk '/Non-2xx/ {print $NF}' "$work_dir/wrk.$name.$round")
        non2xx[$name]=$((non2xx[$name] + ${failed:-0}))
        if [[ -n $failed ]] && curl -sS -m 5 "http://127.0.0.1:${port[$name]}/metrics" |
            grep '^ringway_request_errors_total' | grep -v 'local_log_full\|client_gone' | grep -q .; then
            log "$name: non-2xx answers other than 503 local_log_full"; exit 1
        fi
        shard_ticks[$name]=$((shard_ticks[$name] + $(ticks_of "${pid[$name]}" rw-shard) - s0))
        redis_thread_ticks[$name]=$((redis_thread_ticks[$name] + $(ticks_of "${pid[$name]}" rw-redis) - r0))
        redis_server_ticks[$name]=$((redis_server_ticks[$name] + $(ticks_of "${pid[redis]}") - q0))
        requests[$name]=$((requests[$name] + done_requests))
        seconds[$name]=$((seconds[$name] + SECONDS - t0))
    done
done
batches=$(metric shared ringway_redis_batches_total)
round_trip_total=$(metric shared ringway_redis_round_trip_us_total)
printf '\n== RINGWAY_REDIS cost: wrk -c%s, %s x %ss per gateway, interleaved; RINGWAY_SHARDS=1 ==\n' \
    "$concurrency" "$rounds" "$duration_s"
printf '%-8s %10s %8s %14s %18s %20s\n' gateway requests non-2xx shard_us/req rw-redis_us/req \
    redis-server_us/req
for name in shared alone; do
    awk -v n="$name" -v r="${requests[$name]}" -v f="${non2xx[$name]}" -v s="${shard_ticks[$name]}" -v t="${redis_thread_ticks[$name]}" \
        -v q="${redis_server_ticks[$name]}" -v h="$clk_tck" 'BEGIN {
        printf "%-8s %10d %8d %14.2f %18.2f %20.2f\n", n, r, f, s * 1e6 / h / r, t * 1e6 / h / r, q * 1e6 / h / r }'
done
awk -v s="${shard_ticks[shared]}" -v rs="${requests[shared]}" -v a="${shard_ticks[alone]}" -v ra="${requests[alone]}" \
    -v t="${redis_thread_ticks[shared]}" -v sec="${seconds[shared]}" -v h="$clk_tck" \
    -v b="${batches:-0}" -v rt="${round_trip_total:-0}" 'BEGIN {
    printf "shard CPU per request, shared/alone: %.3f\n", (s / rs) / (a / ra)
    printf "rw-redis thread: %.1f ms CPU per second of load; batches %d, mean round trip %.0f us\n",
        t * 1000 / h / sec, b, (b > 0 ? rt / b : 0) }'
printf 'clock ticks are 1/%s s; the machine may be shared: compare the ratio, not the absolutes.\n' "$clk_tck"
