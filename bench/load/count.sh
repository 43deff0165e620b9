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
# usage writer and the timers that ran during the window, divided by N.
#
# Usage: bench/load/count.sh [BUILD_DIR]   (needs BUILD_DIR/ringway and the mock_upstream)
# Env: BASELINE_BUILD (another build dir measured the same way, e.g. main's, for ratios)
#   RW_KEY_JSON ({"name":"bench"}) BASELINE_KEY_JSON (RW_KEY_JSON): the keys' admin bodies
#   MODES ("json stream") N_CALLGRIND (1000) N_SYSCALLS (2000) WARMUP (50)
#   COUNTERS ("callgrind syscalls"): drop one to skip it
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

# wait_healthy PORT — up to 60 s (valgrind starts slowly).
wait_healthy() {
    local i
    for ((i = 0; i < 600; i++)); do
        curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$1/healthz" 2>/dev/null && return 0
        kill -0 "$server_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# requests N — N sequential requests on one keep-alive connection, each checked for 200.
requests() {
    python3 - "$port" "$key" "$work_dir/$mode.body" "$1" <<'PY'
import http.client, sys
port, key, body_file, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
body = open(body_file, 'rb').read()
conn = http.client.HTTPConnection('127.0.0.1', int(port), timeout=60)
headers = {'Authorization': 'Bearer ' + key, 'Content-Type': 'application/json'}
for _ in range(n):
    conn.request('POST', '/v1/chat/completions', body, headers)
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        sys.exit(f'status {response.status}: {data[:200]!r}')
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

# count_callgrind BUILD N — "shard writer other" user-space instructions per request, each
# thread's count summed into its class (a thread that ran rw::Shard code is a shard, else one
# that ran rw::Writer code is the writer). The shard's count repeats within a percent; the
# writer's moves with how many rows each commit carries (one commit per RINGWAY_LOG_FLUSH_MS).
count_callgrind() {
    local build=$1 n=$2 out="$work_dir/callgrind.out"
    rm -f "$out"*
    valgrind --tool=callgrind --separate-threads=yes --compress-strings=no \
        --callgrind-out-file="$out" "$build/ringway" >"$work_dir/valgrind.log" 2>&1 &
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
    awk -v n="$n" '
        /^summary:/ { count[FILENAME] = $2 }
        /^fn=rw::Shard::/ { shard[FILENAME] = 1 }
        /^fn=rw::Writer::/ { writer[FILENAME] = 1 }
        END {
            for (f in count) {
                class = (f in shard) ? "shard" : (f in writer) ? "writer" : "other"
                sum[class] += count[f]
            }
            printf "%.0f %.0f %.0f", sum["shard"] / n, sum["writer"] / n, sum["other"] / n
        }' "$out".1-*
}

# count_syscalls BUILD N — "syscalls/req context-switches/req" from perf stat.
count_syscalls() {
    local build=$1 n=$2 out="$work_dir/perf.txt" perf_pid
    "$build/ringway" >"$work_dir/run.log" 2>&1 &
    server_pid=$!
    wait_healthy "$port" || return 1
    requests "$warmup" || return 1
    perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$server_pid" -o "$out" &
    perf_pid=$!
    sleep 0.3
    requests "$n" || return 1
    sleep 2
    kill -INT "$perf_pid"
    wait "$perf_pid"
    kill -9 "$server_pid"
    wait "$server_pid" 2>/dev/null
    server_pid=""
    awk -F, -v n="$n" '$3 ~ /raw_syscalls/ {s = $1} $3 ~ /context-switches/ {c = $1}
        END {printf "%.2f %.2f", s / n, c / n}' "$out"
}

measure() {  # measure NAME BUILD KEY_JSON — one line per mode into $work_dir/NAME.
    local name=$1 build=$2 key_json=$3 ir="n/a n/a n/a" sys="n/a n/a"
    for mode in $modes; do
        prepare "$build" "$key_json" || exit 1
        [[ $counters == *callgrind* ]] && { ir=$(count_callgrind "$build" "$n_callgrind") || exit 1; }
        [[ $counters == *syscalls* ]] && { sys=$(count_syscalls "$build" "$n_syscalls") || exit 1; }
        echo "$mode $ir $sys" >>"$work_dir/$name"
        log "$name $mode: instructions/req (shard writer other) $ir, syscalls/req and context switches/req $sys"
    done
}

main() {
    [[ -x $build_dir/ringway ]] || { log "$build_dir/ringway not found"; exit 1; }
    [[ $counters == *callgrind* ]] && { ensure_tool valgrind valgrind || exit 1; }
    [[ $counters == *syscalls* ]] && { ensure_tool perf linux-perf || exit 1; }
    local messages='"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write one short sentence about load balancers."}]'
    printf '{"model":"gpt-4o-mini",%s}' "$messages" >"$work_dir/json.body"
    printf '{"model":"gpt-4o-mini",%s,"stream":true}' "$messages" >"$work_dir/stream.body"
    start_mock || exit 1
    measure ringway "$build_dir" "$rw_key_json"
    [[ -n $baseline_build ]] && measure baseline "$baseline_build" "$baseline_key_json"
    printf '\n## ringway: cost per proxied request, counted (bench/load/count.sh)\n\n'
    printf 'callgrind: %s requests, perf: %s, after %s warm-up; RINGWAY_SHARDS=1\n\n' \
        "$n_callgrind" "$n_syscalls" "$warmup"
    printf '| mode | build | instructions/req: shard | writer | other threads | syscalls/req | context switches/req |\n'
    printf '| --- | --- | --- | --- | --- | --- | --- |\n'
    local line target
    for target in ringway baseline; do
        [[ -f $work_dir/$target ]] || continue
        while read -r line; do
            # shellcheck disable=SC2086  # one line of space-separated fields
            set -- $line
            printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$target" "$2" "$3" "$4" "$5" "$6"
        done <"$work_dir/$target"
    done
    if [[ -f $work_dir/baseline ]]; then
        printf '\nringway/baseline:'
        paste -d' ' "$work_dir/ringway" "$work_dir/baseline" | awk '
            function r(a, b) { return (b + 0 > 0) ? sprintf("%.3f", a / b) : "n/a" }
            { printf "  %s: shard instructions %s, writer %s, syscalls %s;", $1, r($2, $8),
                  r($3, $9), r($5, $11) }'
        printf '\n'
    fi
}

main
