#!/usr/bin/env python3
"""bench/load/ttfb.py — time to first byte of a streamed chat completion, for proxy.sh.

Usage: ttfb.py PORT BODY_FILE AUTH COUNT WARMUP
Sends COUNT sequential POST /v1/chat/completions requests (after WARMUP unmeasured ones) on
one keep-alive connection to 127.0.0.1:PORT and prints one line:
    ttfb_p50_us=.. ttfb_p90_us=.. event_p50_us=.. total_p50_us=.. requests=N failures=N
ttfb: request sent -> first response byte; event: -> first byte of the first SSE "data:"
line; total: -> last byte of the response. Python's own overhead is the same for every
target, so only differences between targets are meaningful. Exit 1 on any non-200 answer or
protocol surprise; every socket operation has a 10 s timeout.
"""
import socket
import statistics
import sys
import time


def read_response(sock, start_ns):
    """Reads one HTTP/1.1 response; returns (status, ttfb_ns, event_ns, total_ns)."""
    buf = b""
    ttfb_ns = event_ns = None
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("connection closed before the response head")
        if ttfb_ns is None:
            ttfb_ns = time.perf_counter_ns() - start_ns
        buf += data
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    if b"data:" in body:
        event_ns = time.perf_counter_ns() - start_ns
    if headers.get(b"transfer-encoding") == b"chunked":
        # The last chunk "0\r\n\r\n" (no trailers from the mock or the proxies).
        while not body.endswith(b"0\r\n\r\n"):
            data = sock.recv(65536)
            if not data:
                raise RuntimeError("connection closed inside a chunked body")
            if event_ns is None and b"data:" in body[-8:] + data:
                event_ns = time.perf_counter_ns() - start_ns
            body += data
    else:
        length = int(headers.get(b"content-length", b"0"))
        while len(body) < length:
            data = sock.recv(65536)
            if not data:
                raise RuntimeError("connection closed inside a body")
            body += data
    total_ns = time.perf_counter_ns() - start_ns
    return status, ttfb_ns, event_ns if event_ns is not None else total_ns, total_ns


def main():
    port, body_file, auth = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    count, warmup = int(sys.argv[4]), int(sys.argv[5])
    with open(body_file, "rb") as f:
        body = f.read()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\n"
        + (f"Authorization: Bearer {auth}\r\n" if auth != "-" else "")
        + f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    request = head + body
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ttfb, event, total = [], [], []
    failures = 0
    for i in range(warmup + count):
        start_ns = time.perf_counter_ns()
        sock.sendall(request)
        status, t, e, a = read_response(sock, start_ns)
        if status != 200:
            failures += 1
        if i >= warmup:
            ttfb.append(t / 1000)
            event.append(e / 1000)
            total.append(a / 1000)
    sock.close()
    p90 = statistics.quantiles(ttfb, n=10)[-1]
    print(
        f"ttfb_p50_us={statistics.median(ttfb):.1f} ttfb_p90_us={p90:.1f} "
        f"event_p50_us={statistics.median(event):.1f} "
        f"total_p50_us={statistics.median(total):.1f} requests={count} failures={failures}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, RuntimeError, ValueError) as error:
        print(f"ttfb.py: {error}", file=sys.stderr)
        sys.exit(1)
