#!/usr/bin/env python3
"""bench/summary.py — the end of `make bench`: a Markdown summary and a plot a reader can
compare at a glance. Reads RESULTS_DIR/proxy.tsv (bench/load/proxy.sh with RESULTS_TSV) and
the micro-benchmarks' Google Benchmark JSON files (RESULTS_DIR/*_bench.json); writes
RESULTS_DIR/summary.md (also printed) and RESULTS_DIR/proxy.png (gnuplot: CPU per request,
p99 latency and peak RSS by concurrency for direct, nginx and ringway, and the floor relays
when proxy.sh measured them (FLOOR=1, as make bench runs it), one row per mode).

Usage: bench/summary.py RESULTS_DIR. Exit status 0 even with missing inputs (the summary
says what is missing); 1 only when gnuplot is present and fails.
"""
import csv
import json
import os
import shutil
import subprocess
import sys

# The floor relays (bench/load/floor_relay.cc, proxy.sh FLOOR=1): what the least possible
# relay costs on the same loopback; rows and lines appear only when measured.
TARGETS = ("direct", "nginx", "ringway", "floor-uring", "floor-epoll")
PANELS = (("cpu_us", "CPU per request (us)"), ("p99_us", "p99 latency (us)"),
          ("rss_mb", "peak RSS (MB)"))


def read_proxy(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def ratio(a, b):
    a, b = number(a), number(b)
    return "n/a" if a is None or not b else f"{a / b:.2f}"


def proxy_tables(rows):
    lines = []
    modes = sorted({r["mode"] for r in rows}, key=lambda m: (m != "json", m))
    for mode in modes:
        lines += [f"### {mode}", "",
                  "| c | target | req/s | p50 us | p99 us | CPU us/req | RSS MB | non-2xx |"
                  " 503 overloaded | ringway/nginx CPU | ringway/floor-uring CPU |",
                  "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        by_c = {}
        for r in rows:
            if r["mode"] == mode:
                by_c.setdefault(int(r["c"]), {})[r["target"]] = r
        for c in sorted(by_c):
            points = by_c[c]
            for target in TARGETS:
                r = points.get(target)
                if r is None:
                    continue
                cpu_ratio = floor_ratio = ""
                if target == "ringway" and "nginx" in points:
                    cpu_ratio = ratio(r["cpu_us"], points["nginx"]["cpu_us"])
                if target == "ringway" and "floor-uring" in points:
                    floor_ratio = ratio(r["cpu_us"], points["floor-uring"]["cpu_us"])
                overloaded = r.get("overloaded", "") if target == "ringway" else ""
                lines.append(f"| {c} | {target} | {r['rps']} | {r['p50_us']} | {r['p99_us']} |"
                             f" {r['cpu_us']} | {r['rss_mb']} | {r['non2xx']} | {overloaded} |"
                             f" {cpu_ratio} | {floor_ratio} |")
        lines.append("")
    return lines


def micro_lines(results_dir):
    lines = []
    for name in sorted(os.listdir(results_dir)):
        if not name.endswith("_bench.json"):
            continue
        try:
            with open(os.path.join(results_dir, name)) as f:
                data = json.load(f)
        except (OSError, ValueError):
            lines.append(f"- {name}: unreadable")
            continue
        for b in data.get("benchmarks", []):
            if b.get("run_type") == "aggregate":
                continue
            extra = []
            if "items_per_second" in b:
                extra.append(f"{b['items_per_second']:,.0f} items/s")
            for key in ("rows_per_cpu_s", "cpu_us_per_row"):
                if key in b:
                    extra.append(f"{key} {b[key]:,.2f}")
            time = f"{b.get('real_time', 0):.3g} {b.get('time_unit', '')}"
            lines.append(f"| {b.get('name', '?')} | {time} | {', '.join(extra)} |")
    if lines:
        lines = ["| benchmark | time/iteration | throughput |", "|---|---:|---|"] + lines
    return lines


def plot(rows, results_dir):
    gnuplot = shutil.which("gnuplot")
    if gnuplot is None or not rows:
        return None, "gnuplot not installed (make deps installs gnuplot-nox)" if rows else None
    modes = sorted({r["mode"] for r in rows}, key=lambda m: (m != "json", m))
    data_files = {}
    for mode in modes:
        for target in TARGETS:
            points = sorted((int(r["c"]), r) for r in rows
                            if r["mode"] == mode and r["target"] == target)
            if not points:
                continue
            path = os.path.join(results_dir, f"plot.{mode}.{target}.dat")
            with open(path, "w") as f:
                f.write("# c cpu_us p99_us rss_mb\n")
                for c, r in points:
                    f.write(f"{c} {r['cpu_us'] or 'NaN'} {r['p99_us'] or 'NaN'}"
                            f" {r['rss_mb'] or 'NaN'}\n")
            data_files[(mode, target)] = path
    png = os.path.join(results_dir, "proxy.png")
    script = [f"set terminal png size 1500,{450 * len(modes)} font ',11'",
              f"set output '{png}'",
              f"set multiplot layout {len(modes)},{len(PANELS)}"
              " title 'POST /v1/chat/completions: direct vs nginx vs ringway (bench/load/proxy.sh)'",
              "set logscale x 2", "set xlabel 'concurrency (connections)'", "set grid",
              "set key top left opaque", "set yrange [0:*]",
              "set offsets graph 0.03, graph 0.03, graph 0.25, 0"]
    for mode in modes:
        for column, (_, label) in enumerate(PANELS, start=2):
            series = [f"'{data_files[(mode, t)]}' using 1:{column} with linespoints lw 2"
                      f" title '{t}'" for t in TARGETS if (mode, t) in data_files]
            script.append(f"set title '{mode}: {label}'")
            script.append("plot " + ", ".join(series))
    script.append("unset multiplot")
    done = subprocess.run([gnuplot], input="\n".join(script) + "\n", text=True,
                          capture_output=True, timeout=60)
    if done.returncode != 0:
        return None, f"gnuplot failed: {done.stderr.strip()}"
    return png, None


def main():
    if len(sys.argv) != 2:
        print("usage: bench/summary.py RESULTS_DIR", file=sys.stderr)
        return 2
    results_dir = sys.argv[1]
    rows = read_proxy(os.path.join(results_dir, "proxy.tsv"))
    lines = ["# ringway bench summary", ""]
    micro = micro_lines(results_dir)
    if micro:
        lines += ["## Micro-benchmarks", ""] + micro + [""]
    lines += ["## Load: direct vs nginx vs ringway (bench/load/proxy.sh)", ""]
    if rows:
        lines += ["CPU us/req: the server's utime+stime per completed request; RSS: peak"
                  " (VmHWM); 503 overloaded: ringway's usage queue was full"
                  " (ringway_overloaded_total during the point).", ""]
        lines += proxy_tables(rows)
    else:
        lines += ["(no proxy.tsv: the load comparison did not run or failed)", ""]
    png, problem = plot(rows, results_dir)
    if png:
        lines += [f"Plot: `{png}` (CPU per request, p99 latency, peak RSS by concurrency).", ""]
    elif problem:
        lines += [f"No plot: {problem}.", ""]
    text = "\n".join(lines)
    with open(os.path.join(results_dir, "summary.md"), "w") as f:
        f.write(text)
    print(text)
    return 1 if problem and problem.startswith("gnuplot failed") else 0


if __name__ == "__main__":
    sys.exit(main())
