#!/usr/bin/env bash
# bench/load/translate.sh — CPU per request of ringway when it translates Chat ⇄ Messages
# and Responses → Chat (proxy/translate.h) against passthrough, measured in one run against
# the same mock upstream: an openai channel serving gpt-x, an anthropic channel serving
# claude-x and an openai-compatible (chat-only) one serving local-x, and for each of chat,
# messages and responses clients, whole (json) and streamed (STREAM_CHUNKS content events):
# passthrough (the client's own kind; responses: the openai channel) and translated (the
# other kind; responses: the chat-only channel). Prints, per
# row, requests/s and ringway's CPU microseconds per request (utime+stime deltas from
# /proc/PID/stat over the measured run) and the translated/passthrough ratio.
#
# Usage: bench/load/translate.sh [BUILD_DIR]   (default: build; needs BUILD_DIR/ringway and
#        BUILD_DIR/tests/support/mock_upstream, Release build)
# Knobs (env): DURATION_S (5) CONCURRENCY (8) STREAM_CHUNKS (20) SERVER_CPU (0) CLIENT_CPU (1)
# Loopback only; bounded in time; the EXIT trap stops what this script started.
set -u -o pipefail

build_dir=${1:-build}
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
duration_s=${DURATION_S:-5}
concurrency=${CONCURRENCY:-8}
stream_chunks=${STREAM_CHUNKS:-20}
cpu_count=$(nproc)
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-$(( cpu_count > 1 ? 1 : 0 ))}
clk_tck=$(getconf CLK_TCK)
admin_token=bench-admin-token-123456
work_dir=$(mktemp -d /tmp/translatebench.XXXXXX)
mock_pid=""
ringway_pid=""

log() { echo "translate.sh: $*" >&2; }
# shellcheck source=bench/load/lib.sh
source "$script_dir/lib.sh"

cleanup() {
    [[ -n $ringway_pid ]] && kill "$ringway_pid" 2>/dev/null && wait "$ringway_pid" 2>/dev/null
    [[ -n $mock_pid ]] && kill "$mock_pid" 2>/dev/null && wait "$mock_pid" 2>/dev/null
    rm -rf "$work_dir"
}
trap cleanup EXIT

ensure_tool wrk wrk || { log "wrk is missing"; exit 1; }
[[ -x $build_dir/ringway && -x $build_dir/tests/support/mock_upstream ]] ||
    { log "build ringway and mock_upstream in $build_dir first"; exit 1; }

# Symlinks with neutral names: a colleague's pkill -f on the real names cannot hit them.
ln -s "$(realpath "$build_dir/tests/support/mock_upstream")" "$work_dir/bench-upstream"
ln -s "$(realpath "$build_dir/ringway")" "$work_dir/bench-gateway"

taskset -c "$client_cpu" "$work_dir/bench-upstream" --listen 127.0.0.1:0 --threads 1 \
    --default "chunks=$stream_chunks" >"$work_dir/mock.out" 2>"$work_dir/mock.err" &
mock_pid=$!
mock_port=""
for _ in $(seq 100); do
    mock_port=$(awk '/^listening / {split($2, a, ":"); print a[2]}' "$work_dir/mock.out")
    [[ -n $mock_port ]] && break
    sleep 0.05
done
[[ -n $mock_port ]] || { log "mock did not start"; exit 1; }

port=$(free_port)
admin_port=$(free_port)
env RINGWAY_LISTEN="127.0.0.1:$port" RINGWAY_ADMIN_LISTEN="127.0.0.1:$admin_port" \
    RINGWAY_ADMIN_TOKEN="$admin_token" RINGWAY_DB="$work_dir/rw.db" RINGWAY_SHARDS=1 \
    RINGWAY_LOG_LEVEL=warn taskset -c "$server_cpu" "$work_dir/bench-gateway" \
    >"$work_dir/ringway.log" 2>&1 &
ringway_pid=$!
for _ in $(seq 150); do
    curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break
    sleep 0.1
done

admin() {
    curl -sS -m 5 -X "$1" -H "Authorization: Bearer $admin_token" \
        -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "http://127.0.0.1:$admin_port$2"
}
key=$(admin POST /admin/keys '{"name":"bench"}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])') || { log "no key"; exit 1; }
for kind in openai anthropic openai-compatible; do
    model=$([[ $kind == openai ]] && echo gpt-x || ([[ $kind == anthropic ]] && echo claude-x || echo local-x))
    admin POST /admin/channels "{\"name\":\"$kind\",\"kind\":\"$kind\",\"models\":[\"$model\"],\
\"base_url\":\"http://127.0.0.1:$mock_port\",\"api_key\":\"sk-mock\",\
\"allow_private_network\":true}" >/dev/null || exit 1
done
sleep 1  # The channels' addresses are published within a second of their creation.

cpu_ticks() {
    local total=0 task
    for task in /proc/"$ringway_pid"/task/*; do
        total=$((total + $(sed 's/.*) //' "$task/stat" | awk '{print $12 + $13}')))
    done
    echo "$total"
}

# run NAME PATH MODEL STREAM: one wrk run; prints "NAME requests/s cpu_us_per_request".
run() {
    local name=$1 path=$2 model=$3 stream=$4 body_file="$work_dir/body.json" before after out requests
    if [[ $path == /v1/responses ]]; then
        printf '{"model":"%s","stream":%s,"input":"Say hello to the gateway, please."}' \
            "$model" "$stream" >"$body_file"
    elif [[ $path == /v1/messages ]]; then
        printf '{"model":"%s","max_tokens":256,"stream":%s,"messages":[{"role":"user","content":"Say hello to the gateway, please."}]}' \
            "$model" "$stream" >"$body_file"
    else
        printf '{"model":"%s","stream":%s,"messages":[{"role":"user","content":"Say hello to the gateway, please."}]}' \
            "$model" "$stream" >"$body_file"
    fi
    local status
    status=$(curl -sS -o /dev/null -w '%{http_code}' -m 10 -H "Authorization: Bearer $key" \
        -H 'Content-Type: application/json' --data-binary @"$body_file" "http://127.0.0.1:$port$path")
    [[ $status == 200 ]] || { log "$name: a probe request answered $status"; return 1; }
    before=$(cpu_ticks)
    out=$(WRK_BODY_FILE=$body_file WRK_AUTH=$key WRK_PATH=$path taskset -c "$client_cpu" \
        wrk -t1 -c"$concurrency" -d"${duration_s}s" -s "$script_dir/post.lua" \
        "http://127.0.0.1:$port" 2>&1)
    after=$(cpu_ticks)
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    if grep -q "Non-2xx" <<<"$out"; then log "$name: wrk saw failures:"; echo "$out" >&2; fi
    awk -v n="$name" -v r="$requests" -v d="$duration_s" -v t=$((after - before)) -v hz="$clk_tck" \
        'BEGIN { printf "%-34s %10.0f %12.1f\n", n, r / d, t * 1e6 / hz / r }'
}

printf '%-34s %10s %12s\n' "row" "req/s" "cpu_us/req"
results=()
for stream in false true; do
    mode=$([[ $stream == true ]] && echo stream || echo json)
    for client in chat messages responses; do
        case $client in
            chat) path=/v1/chat/completions native=gpt-x other=claude-x ;;
            messages) path=/v1/messages native=claude-x other=gpt-x ;;
            responses) path=/v1/responses native=gpt-x other=local-x ;;
        esac
        pass=$(run "$client $mode passthrough" "$path" "$native" "$stream") || exit 1
        trans=$(run "$client $mode translated" "$path" "$other" "$stream") || exit 1
        echo "$pass"
        echo "$trans"
        results+=("$client $mode: translated/passthrough CPU per request = $(awk -v a="$(awk '{print $NF}' <<<"$trans")" \
            -v b="$(awk '{print $NF}' <<<"$pass")" 'BEGIN { printf "%.2f", a / b }')")
    done
done
printf '%s\n' "${results[@]}"
