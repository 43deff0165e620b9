#!/usr/bin/env python3
# bench/soak/soak.py — what `make soak` runs: ringway against the mock upstream for DURATION
# seconds (default 600) with valid traffic, abusive clients and misbehaving upstreams at
# once, then the invariants checked and the figures printed. Not a CTest test (too long for
# CI's default path); bounded in time: every worker stops at the deadline, every socket
# call has a timeout, and the whole run is killed at DURATION + 180 s.
#
# Usage: bench/soak/soak.py BUILD_DIR [--duration SECONDS]   (DURATION env: seconds, or
#        with an s/m/h suffix). Needs BUILD_DIR/ringway and BUILD_DIR/tests/support/mock_upstream.
#
# Traffic (threads, each looping until the deadline):
#   valid      keep-alive chat/completions/embeddings, streamed or not, with the mock's fault
#              modes mixed in (reset, truncate, close-early, bad-chunk, extra-bytes,
#              error-event, 5xx and 429 answers that retry, http10, connection-close)
#   limited    a key with rpm and max_concurrency: 429s, uploads abandoned mid-body
#   strangers  no key or a wrong key with 12 MB bodies, Expect: 100-continue without a key
#   slowloris  header bytes one at a time (408 at the header deadline)
#   trickle    a valid key sending its body a byte at a time (408 at the minimum rate)
#   pipeline   floods of pipelined requests read slowly or never (send deadline)
# Invariants at the end (exit status 1 if one fails): ringway never crashed and exits 0 on
# SIGTERM; nothing is in flight; usage rows == ringway_usage_records_total; every upstream
# request the mock saw is counted in some row's attempts; keys.quota_used == SUM(tokens of
# the log) per key, daily_usage agrees; PRAGMA integrity_check is ok; after the idle trim
# the anonymous RSS is back near its warmed-up start: + what fixed structures commit on
# first touch (the usage queue rings as records advance, SQLite's page caches) +
# max(16 MiB, 15 %); mapped files (SQLite's mmap of the database) are reported apart.
import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

ADMIN_TOKEN = "soak-admin-token-0123456789abcdef"
UPSTREAM_KEY = "sk-upstream-soak-0123456789abcdefgh"


def parse_duration(text):
    match = re.fullmatch(r"(\d+)([smh]?)", text.strip())
    if not match:
        sys.exit(f"soak: DURATION={text!r}: expected seconds, or a number with s, m or h")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def log(message):
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", flush=True)


def rss_bytes(pid, field="VmRSS"):
    """VmRSS (everything), RssAnon (heap, stacks) or RssFile (mapped files: the binary,
    SQLite's mmap of the database) from /proc/PID/status, in bytes."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# ---- HTTP over raw sockets (every call bounded by a timeout) --------------------------------


def read_response(sock, deadline_s=10.0):
    """Reads one HTTP/1.1 response; returns (status, headers dict, body) or None."""
    sock.settimeout(deadline_s)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            piece = sock.recv(65536)
            if not piece:
                return None
            data += piece
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status == 100:
            return status, headers, rest
        if "content-length" in headers:
            length = int(headers["content-length"])
            while len(rest) < length:
                piece = sock.recv(65536)
                if not piece:
                    return None
                rest += piece
            return status, headers, rest[:length]
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in rest:
                    piece = sock.recv(65536)
                    if not piece:
                        return status, headers, None  # Cut stream: incomplete body.
                    rest += piece
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                while len(rest) < size + 2:
                    piece = sock.recv(65536)
                    if not piece:
                        return status, headers, None
                    rest += piece
                if size == 0:
                    return status, headers, body
                body += rest[:size]
                rest = rest[size + 2:]
        while True:  # Close-delimited.
            piece = sock.recv(65536)
            if not piece:
                return status, headers, rest
            rest += piece
    except (OSError, ValueError, IndexError):
        return None


def connect(port, timeout_s=5.0):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout_s)


def exchange(port, request, timeout_s=10.0):
    try:
        with connect(port) as sock:
            sock.sendall(request)
            return read_response(sock, timeout_s)
    except OSError:
        return None


def post(path, body, key="", extra=""):
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return (f"POST {path} HTTP/1.1\r\nHost: soak\r\n{auth}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def admin(admin_port, method, path, body=None):
    payload = json.dumps(body).encode() if body is not None else b""
    request = (f"{method} {path} HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode()
    response = exchange(admin_port, request + payload)
    if response is None:
        raise RuntimeError(f"admin {method} {path}: no answer")
    return response[0], json.loads(response[2] or b"{}")


def metrics(port):
    response = exchange(port, b"GET /metrics HTTP/1.1\r\nHost: soak\r\n\r\n", 5.0)
    values = {}
    if response is None or response[0] != 200:
        return values
    for line in response[2].decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def metric_sum(values, prefix):
    return sum(v for k, v in values.items() if k == prefix or k.startswith(prefix + "{"))


# ---- Workers ---------------------------------------------------------------------------------


class Soak:
    def __init__(self, port, keys, deadline):
        self.port = port
        self.keys = keys
        self.deadline = deadline
        self.lock = threading.Lock()
        self.counts = Counter()
        self.chat_ok = 0  # 200 answers to proxied requests (each has a usage row).

    def count(self, label):
        with self.lock:
            self.counts[label] += 1

    def running(self):
        return time.monotonic() < self.deadline

    def valid(self, seed):
        rng = random.Random(seed)
        faults = [None] * 12 + [
            {"fault": "reset"}, {"fault": "truncate"}, {"fault": "close-early"},
            {"fault": "bad-chunk"}, {"fault": "extra-bytes"}, {"fault": "error-event"},
            {"status": 500}, {"status": 429}, {"status": 503, "fail-first": 1},
            {"http10": 1}, {"connection-close": 1}, {"split-bytes": 7},
            {"fault": "reset-early"}, {"status": 401},
        ]
        sock = None
        while self.running():
            endpoint = rng.choice(["/v1/chat/completions"] * 4 + ["/v1/completions", "/v1/embeddings"])
            stream = endpoint != "/v1/embeddings" and rng.random() < 0.5
            controls = {"chunks": rng.randint(1, 20)}
            fault = rng.choice(faults)
            if fault:
                controls.update(fault)
                if "fail-first" in fault:
                    controls["scenario-id"] = f"s{seed}-{rng.random()}"
            body = {"model": "gpt-4o-mini", "x_mock": controls}
            if endpoint == "/v1/embeddings":
                body["input"] = "soak " * rng.randint(1, 50)
            elif endpoint == "/v1/completions":
                body["prompt"] = "soak " * rng.randint(1, 50)
            else:
                body["messages"] = [{"role": "user", "content": "soak " * rng.randint(1, 200)}]
            if stream:
                body["stream"] = True
            try:
                if sock is None:
                    sock = connect(self.port)
                sock.sendall(post(endpoint, json.dumps(body).encode(), self.keys["app"]))
                response = read_response(sock, 30.0)
            except OSError:
                response = None
            if response is None:
                self.count("valid:no-answer")
                sock = self.close(sock)
                continue
            self.count(f"valid:{response[0]}")
            if response[0] == 200 and response[2] is not None:
                with self.lock:
                    self.chat_ok += 1
            if response[1].get("connection", "").lower() == "close" or response[2] is None:
                sock = self.close(sock)
        self.close(sock)

    @staticmethod
    def close(sock):
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
        return None

    def limited(self, seed):
        rng = random.Random(seed)
        body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}],
                           "x_mock": {"chunks": 3, "event-delay-ms": 20}, "stream": True}).encode()
        while self.running():
            if rng.random() < 0.3:  # An upload abandoned mid-body: its slot must come back.
                try:
                    with connect(self.port) as sock:
                        request = post("/v1/chat/completions", body, self.keys["limited"])
                        sock.sendall(request[: len(request) - len(body) // 2])
                    self.count("limited:abandoned")
                except OSError:
                    self.count("limited:connect-failed")
                continue
            response = exchange(self.port, post("/v1/chat/completions", body, self.keys["limited"]), 30.0)
            self.count(f"limited:{response[0] if response else 'no-answer'}")

    def strangers(self, seed):
        rng = random.Random(seed)
        chunk = b"x" * (1 << 20)
        while self.running():
            kind = rng.choice(["none", "wrong", "continue", "small"])
            key = "" if kind != "wrong" else "sk-rw-wrong-" + "z" * 40
            try:
                with connect(self.port) as sock:
                    if kind == "continue":
                        sock.sendall(post("/v1/chat/completions", b"", key, "Expect: 100-continue\r\n")
                                     .replace(b"Content-Length: 0", b"Content-Length: 500"))
                        response = read_response(sock, 5.0)
                    elif kind == "small":
                        sock.sendall(post("/v1/chat/completions", b'{"model":"gpt-4o-mini"}'))
                        response = read_response(sock, 5.0)
                    else:
                        sock.sendall(post("/v1/chat/completions", b"", key)
                                     .replace(b"Content-Length: 0", b"Content-Length: 12000000"))
                        sent = 0
                        try:
                            while sent < 12_000_000 and self.running():
                                sock.sendall(chunk)
                                sent += len(chunk)
                        except OSError:
                            pass
                        response = read_response(sock, 5.0)
                self.count(f"stranger-{kind}:{response[0] if response else 'no-answer'}")
            except OSError:
                self.count(f"stranger-{kind}:connect-failed")

    def slowloris(self, seed):
        head = b"GET /v1/models HTTP/1.1\r\nHost: soak\r\nX-Slow: " + b"a" * 200
        while self.running():
            try:
                with connect(self.port) as sock:
                    for byte in head:
                        if not self.running():
                            break
                        sock.sendall(bytes([byte]))
                        sock.settimeout(0.2)
                        try:
                            if sock.recv(4096, socket.MSG_PEEK):
                                break  # Answered (408).
                        except socket.timeout:
                            continue
                    response = read_response(sock, 2.0)
                    self.count(f"slowloris:{response[0] if response else 'closed'}")
            except OSError:
                self.count("slowloris:reset")

    def trickle(self, seed):
        body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "t" * 3000}]})
        while self.running():
            try:
                with connect(self.port) as sock:
                    request = post("/v1/chat/completions", body.encode(), self.keys["app"])
                    head_bytes = len(request) - len(body)
                    sock.sendall(request[:head_bytes])
                    answered = False
                    for byte in request[head_bytes:]:
                        if not self.running():
                            break
                        sock.sendall(bytes([byte]))
                        sock.settimeout(0.5)
                        try:
                            if sock.recv(4096, socket.MSG_PEEK):
                                answered = True
                                break
                        except socket.timeout:
                            continue
                    response = read_response(sock, 2.0) if answered else None
                    self.count(f"trickle:{response[0] if response else 'unanswered'}")
            except OSError:
                self.count("trickle:reset")

    def pipeline(self, seed):
        rng = random.Random(seed)
        while self.running():
            batch = b"".join(
                rng.choice([b"GET /healthz HTTP/1.1\r\nHost: s\r\n\r\n",
                            b"GET /metrics HTTP/1.1\r\nHost: s\r\n\r\n",
                            b"GET /nope HTTP/1.1\r\nHost: s\r\n\r\n"])
                for _ in range(rng.randint(100, 2000)))
            try:
                with connect(self.port) as sock:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    sock.settimeout(2.0)
                    try:
                        sock.sendall(batch)
                    except OSError:
                        pass
                    if rng.random() < 0.5:  # Read everything; else leave it unread.
                        while self.running():
                            if not sock.recv(65536):
                                break
                    self.count("pipeline:flood")
            except OSError:
                self.count("pipeline:reset")


# ---- The run ---------------------------------------------------------------------------------


def start_processes(build_dir, work_dir):
    # Copies under neutral names: a colleague's `pkill -f mock_upstream` must not end the run.
    gateway_bin = os.path.join(work_dir, "gw-soak")
    mock_bin = os.path.join(work_dir, "upstream-stub")
    shutil.copy(os.path.join(build_dir, "ringway"), gateway_bin)
    shutil.copy(os.path.join(build_dir, "tests/support/mock_upstream"), mock_bin)
    mock = subprocess.Popen([mock_bin, "--threads", "2"], stdout=subprocess.PIPE, text=True)
    mock_port = int(mock.stdout.readline().split(":")[-1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGWAY_")}
    env.update({
        "RINGWAY_LISTEN": "127.0.0.1:0", "RINGWAY_ADMIN_LISTEN": "127.0.0.1:0",
        "RINGWAY_ADMIN_TOKEN": ADMIN_TOKEN, "RINGWAY_DB": os.path.join(work_dir, "soak.db"),
        "RINGWAY_SHARDS": "2", "RINGWAY_HEADER_TIMEOUT_MS": "3000",
        "RINGWAY_BODY_TIMEOUT_MS": "3000", "RINGWAY_BODY_RATE_GRACE_MS": "2000",
        "RINGWAY_SEND_TIMEOUT_MS": "3000", "RINGWAY_UPSTREAM_FIRST_BYTE_TIMEOUT_MS": "5000",
        "RINGWAY_UPSTREAM_IDLE_TIMEOUT_MS": "5000", "RINGWAY_POOL_TRIM_MS": "2000",
        "RINGWAY_LOG_LEVEL": "info",
    })
    stderr_path = os.path.join(work_dir, "ringway.stderr")
    stderr = open(stderr_path, "w")
    gateway = subprocess.Popen([gateway_bin], env=env, stderr=stderr, cwd=work_dir)
    deadline = time.monotonic() + 20
    ready = None
    while time.monotonic() < deadline and ready is None:
        with open(stderr_path) as text:
            ready = next((line for line in text if "event=ready" in line), None)
        if gateway.poll() is not None:
            sys.exit("soak: ringway exited at startup:\n" + open(stderr_path).read())
        time.sleep(0.05)
    if ready is None:
        sys.exit("soak: ringway never logged event=ready")
    port = int(re.search(r" listen=\S+:(\d+)", ready).group(1))
    admin_port = int(re.search(r" admin=\S+:(\d+)", ready).group(1))
    return mock, mock_port, gateway, port, admin_port, stderr_path


def setup_gateway(port, admin_port, mock_port):
    base = f"http://127.0.0.1:{mock_port}"
    # auto_disable off: the valid traffic asks the mock for 5xx, resets and cut streams on
    # purpose, enough for channel health to disable both channels within seconds and turn
    # the rest of the run into 503 no_channel_available (health has its own e2e tests).
    for name, priority in (("primary", 1), ("secondary", 0)):
        status, _ = admin(admin_port, "POST", "/admin/channels", {
            "name": name, "kind": "openai", "base_url": base, "api_key": UPSTREAM_KEY,
            "models": [], "priority": priority, "allow_private_network": True,
            "auto_disable": False})
        assert status == 201, f"channel {name}: {status}"
    keys = {}
    for name, extra in (("app", {}), ("limited", {"rpm": 300, "max_concurrency": 2})):
        status, body = admin(admin_port, "POST", "/admin/keys", {"name": name, **extra})
        assert status == 201, f"key {name}: {status}"
        keys[name] = body["key"]
    probe = json.dumps({"model": "gpt-4o-mini", "messages": []}).encode()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # The resolver publishes the channels' addresses.
        response = exchange(port, post("/v1/chat/completions", probe, keys["app"]))
        if response and response[0] == 200:
            return keys
        time.sleep(0.1)
    sys.exit("soak: the channels never became routable")


def check_database(db_path, records_total, mock_requests, problems, figures):
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    rows = db.execute("SELECT COUNT(*), COALESCE(SUM(attempts),0), COALESCE(SUM(total_tokens),0) "
                      "FROM usage_logs").fetchone()
    figures["usage rows"] = rows[0]
    figures["usage attempts"] = rows[1]
    figures["usage tokens"] = rows[2]
    figures["mock requests"] = mock_requests
    if rows[0] != records_total:
        problems.append(f"usage rows {rows[0]} != ringway_usage_records_total {records_total}")
    if mock_requests > rows[1]:
        problems.append(f"the mock saw {mock_requests} requests, rows count {rows[1]} attempts")
    mismatched = db.execute(
        "SELECT k.id, k.quota_used, COALESCE((SELECT SUM(total_tokens) FROM usage_logs u "
        "WHERE u.key_id = k.id), 0), COALESCE((SELECT SUM(total_tokens) FROM daily_usage d "
        "WHERE d.key_id = k.id), 0) FROM keys k").fetchall()
    for key_id, quota_used, logged, daily in mismatched:
        if quota_used != logged or daily != logged:
            problems.append(f"key {key_id}: quota_used {quota_used}, log {logged}, daily {daily}")
    integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    if integrity != "ok":
        problems.append(f"integrity_check: {integrity}")
    figures["end reasons"] = dict(db.execute(
        "SELECT end_reason, COUNT(*) FROM usage_logs GROUP BY end_reason").fetchall())
    db.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build_dir")
    parser.add_argument("--duration", default=os.environ.get("DURATION", "600"))
    parser.add_argument("--only", default="", help="comma-separated worker kinds (diagnosis): "
                        "valid,limited,strangers,slowloris,trickle,pipeline")
    args = parser.parse_args()
    duration_s = parse_duration(str(args.duration))
    signal.signal(signal.SIGALRM, lambda *_: os._exit(3))
    signal.alarm(duration_s + 180)  # The whole run is bounded, whatever hangs.
    work_dir = tempfile.mkdtemp(prefix="ringway-soak-")
    mock, mock_port, gateway, port, admin_port, stderr_path = start_processes(args.build_dir, work_dir)
    problems, figures = [], {}
    try:
        keys = setup_gateway(port, admin_port, mock_port)
        # Warm up before the baseline: valid traffic, and large uploads (refused at their
        # heads), whose bytes write every page of the shards' recv buffer rings
        # (RINGWAY_RECV_BUFFERS x RINGWAY_RECV_BUFFER_BYTES, 16 MiB a shard, allocated at
        # start and committed by the kernel's first write into each page). That memory is
        # fixed, not taken by abuse; small requests alone touch one page per buffer.
        warm = Soak(port, keys, time.monotonic() + 8)
        threads = [threading.Thread(target=warm.valid, args=(i,)) for i in range(4)]
        threads += [threading.Thread(target=warm.strangers, args=(100 + i,)) for i in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        rss_start = rss_bytes(gateway.pid)
        rows_start = int(metric_sum(metrics(port), "ringway_usage_records_total"))
        anon_start = rss_bytes(gateway.pid, "RssAnon")
        log(f"port {port}, mock {mock_port}, RSS at start {rss_start >> 20} MiB; running {duration_s} s")
        soak = Soak(port, keys, time.monotonic() + duration_s)
        plan = ([soak.valid] * 6 + [soak.limited] * 2 + [soak.strangers] * 4 + [soak.slowloris] * 4
                + [soak.trickle] * 2 + [soak.pipeline] * 2)
        if args.only:
            plan = [work for work in plan if work.__name__ in args.only.split(",")]
        threads = [threading.Thread(target=work, args=(i,), daemon=True) for i, work in enumerate(plan)]
        [t.start() for t in threads]
        rss_peak, pool_peak, next_report = rss_start, 0, time.monotonic() + 30
        while soak.running():
            time.sleep(1)
            if gateway.poll() is not None:
                problems.append(f"ringway died during the soak (status {gateway.returncode})")
                break
            rss_peak = max(rss_peak, rss_bytes(gateway.pid))
            values = metrics(port)
            pool_peak = max(pool_peak, metric_sum(values, "ringway_arena_pool_bytes"))
            if time.monotonic() >= next_report:
                next_report += 30
                log(f"RSS {rss_bytes(gateway.pid) >> 20} MiB, pool {metric_sum(values, 'ringway_arena_pool_bytes') / 2**20:.1f} MiB, "
                    f"answers {sum(soak.counts.values())}")
        [t.join(timeout=40) for t in threads]
        if any(t.is_alive() for t in threads):
            problems.append("a worker did not stop within 40 s of the deadline")
        if gateway.poll() is None:
            # Idle: the requests end, the pools trim (RINGWAY_POOL_TRIM_MS=2000).
            idle_deadline = time.monotonic() + 30
            values = metrics(port)
            while time.monotonic() < idle_deadline and (
                    metric_sum(values, "ringway_requests_in_flight") > 0
                    or metric_sum(values, "ringway_arena_pool_bytes") > 4 * 2**20):
                time.sleep(0.5)
                values = metrics(port)
            time.sleep(3)  # Two more trim periods and mimalloc's purge delay.
            values = metrics(port)
            rss_end = rss_bytes(gateway.pid)
            anon_end = rss_bytes(gateway.pid, "RssAnon")
            figures.update({
                "RSS start MiB": rss_start >> 20, "RSS peak MiB": rss_peak >> 20,
                "RSS end MiB": rss_end >> 20, "RssAnon start MiB": anon_start >> 20,
                "RssAnon end MiB": anon_end >> 20,
                "RssFile end MiB": rss_bytes(gateway.pid, "RssFile") >> 20,
                "pool peak MiB": round(pool_peak / 2**20, 1),
                "pool end MiB": round(metric_sum(values, "ringway_arena_pool_bytes") / 2**20, 1),
                "pool trimmed MiB": round(metric_sum(values, "ringway_arena_pool_trimmed_bytes_total") / 2**20, 1),
                "head refusals": int(metric_sum(values, "ringway_head_refusals_total")),
                "timeouts": {k.split('"')[1]: int(v) for k, v in values.items()
                             if k.startswith("ringway_timeouts_total{")},
                "requests in flight": int(metric_sum(values, "ringway_requests_in_flight")),
                "heap allocations": int(metric_sum(values, "ringway_heap_allocations_total")),
            })
            if figures["requests in flight"] != 0:
                problems.append(f"{figures['requests in flight']} requests still in flight when idle")
            # Near its start: anonymous memory within a margin of the warmed-up baseline,
            # after what fixed structures commit on first touch as the run goes on: each
            # shard's usage queue ring (65536 slots of <= 384 B, storage/config.h) pages in
            # as records advance through it, and SQLite's page caches (8 MiB a connection,
            # 3 connections) fill as the database grows. Mapped files (SQLite's mmap of the
            # database) are reported apart as RssFile. Memory the abuse took (bodies,
            # pools) must be back: the margin is max(16 MiB, 15 %).
            rows_now = int(metric_sum(values, "ringway_usage_records_total"))
            queue_touch = min((rows_now - rows_start) * 384, 2 * 65536 * 384)
            sqlite_caches = 3 * 8 << 20
            allowed = (anon_start + queue_touch + sqlite_caches
                       + max(16 << 20, anon_start * 15 // 100))
            figures["RSS allowance MiB (queue rings, SQLite caches, margin)"] = [
                queue_touch >> 20, sqlite_caches >> 20, max(16 << 20, anon_start * 15 // 100) >> 20]
            if anon_end > allowed:
                problems.append(f"RSS {rss_end >> 20} MiB (anon {anon_end >> 20} MiB) did not come "
                                f"back near {rss_start >> 20} MiB (anon {anon_start >> 20} MiB)")
            records_total = int(metric_sum(values, "ringway_usage_records_total"))
            stats = exchange(mock_port, b"GET /__mock/stats HTTP/1.1\r\nHost: m\r\n\r\n")
            mock_requests = json.loads(stats[2])["requests_total"] if stats else -1
            gateway.send_signal(signal.SIGTERM)
            try:
                code = gateway.wait(timeout=60)
                if code != 0:
                    problems.append(f"ringway exited {code} after SIGTERM")
            except subprocess.TimeoutExpired:
                problems.append("ringway did not exit within 60 s of SIGTERM")
            check_database(os.path.join(work_dir, "soak.db"), records_total, mock_requests,
                           problems, figures)
        figures["client answers"] = dict(sorted(soak.counts.items()))
        figures["valid 200s"] = soak.chat_ok
        errors = [line for line in open(stderr_path) if "level=error" in line]
        figures["error log lines"] = len(errors)
    finally:
        for process in (gateway, mock):
            if process.poll() is None:
                process.kill()
                process.wait()
    print(json.dumps(figures, indent=2))
    if problems:
        for problem in problems:
            print(f"soak: FAILED: {problem}")
        print(f"soak: kept {work_dir} for inspection")
        return 1
    shutil.rmtree(work_dir, ignore_errors=True)
    print("soak: all invariants hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
