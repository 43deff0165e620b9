#!/usr/bin/env bash
# bench/run.sh — what `make bench` runs: every micro-benchmark binary in BUILD_DIR/bench/
# (*_bench, Google Benchmark), then every load script in bench/load/ (*.sh, given BUILD_DIR).
# Usage: bench/run.sh BUILD_DIR. Each step has a time limit; a failed or timed-out step is
# reported and the others still run; the exit status is 1 if any step failed. It ends with
# bench/summary.py: a Markdown summary (BUILD_DIR/bench-results/summary.md, also printed) and
# a plot (bench-results/proxy.png, gnuplot) of CPU per request, p99 latency and peak RSS by
# concurrency for direct, nginx and ringway.
# Knobs (env): MICRO_TIMEOUT_S (per binary, 300), LOAD_TIMEOUT_S (per script, 600), FLOOR
# (proxy.sh: 1, the floor relays beside nginx and ringway; the other scripts: 0),
# BENCH_ARGS (extra flags for every micro-benchmark, e.g. --benchmark_filter=Arena).
set -u -o pipefail

build_dir=${1:?usage: bench/run.sh BUILD_DIR}
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
micro_timeout_s=${MICRO_TIMEOUT_S:-300}
load_timeout_s=${LOAD_TIMEOUT_S:-600}
read -r -a bench_args <<<"${BENCH_ARGS:-}"
results_dir="$build_dir/bench-results"
rm -rf "$results_dir"
mkdir -p "$results_dir"
failed=()
ran_count=0

# Runs one step under a deadline. timeout sends SIGTERM first (the load scripts' traps stop
# their servers), then SIGKILL 15 s later.
run_step() {
    local limit_s=$1 label=$2 status
    shift 2
    printf '\n=== %s (limit %ss) ===\n' "$label" "$limit_s"
    timeout -k 15 "$limit_s" "$@"
    status=$?
    ran_count=$((ran_count + 1))
    if ((status == 124 || status == 137)); then
        printf '=== %s: timed out after %ss ===\n' "$label" "$limit_s"
        failed+=("$label (timeout)")
    elif ((status != 0)); then
        printf '=== %s: exit status %s ===\n' "$label" "$status"
        failed+=("$label (exit $status)")
    fi
}

micro_count=0
if [[ -d "$build_dir/bench" ]]; then
    while IFS= read -r binary; do
        micro_count=$((micro_count + 1))
        run_step "$micro_timeout_s" "micro $(basename "$binary")" "$binary" "${bench_args[@]}" \
            --benchmark_out="$results_dir/$(basename "$binary").json" --benchmark_out_format=json
    done < <(find "$build_dir/bench" -maxdepth 1 -type f -name '*_bench' -perm -u+x | sort)
fi
((micro_count > 0)) ||
    printf 'no micro-benchmarks in %s/bench/ (is libbenchmark-dev installed?)\n' "$build_dir"

for script in "$script_dir"/load/*.sh; do
    [[ $(basename "$script") == lib.sh ]] && continue  # Sourced helpers, not a benchmark.
    [[ -f "$script" ]] || continue
    # proxy.sh's points feed the summary and the plot.
    # proxy.sh also measures the floor relays (FLOOR, default 1 here): the least any relay pays.
    run_step "$load_timeout_s" "load $(basename "$script")" \
        env RESULTS_TSV="$results_dir/$(basename "$script" .sh).tsv" \
        FLOOR="$([[ $(basename "$script") == proxy.sh ]] && echo "${FLOOR:-1}" || echo "${FLOOR:-0}")" \
        bash "$script" "$build_dir"
done

printf '\n=== summary (%s) ===\n' "$results_dir/summary.md"
python3 "$script_dir/summary.py" "$results_dir" || failed+=("summary")

printf '\n=== bench: %s step(s) run, %s failed ===\n' "$ran_count" "${#failed[@]}"
for label in "${failed[@]}"; do printf '  failed: %s\n' "$label"; done
((${#failed[@]} == 0))
