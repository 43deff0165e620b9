#!/usr/bin/env python3
"""bench/load/floor_relay_test.py — the floor relay (floor_relay.cc) moves bytes exactly, with
each engine and with only 4 provided buffers (uring) so that its short-write, queueing and
empty-buffer-ring paths run. CTest: floor_relay_bytes. Two cases per engine, on loopback:
  echo     the client streams 4 MB in pieces of random size to an upstream that echoes them
           and reads the echo at the same time: it gets back exactly what it sent. (It does
           not half-close: the relay ends a pair when either side ends.)
  close    the upstream sends 8 MB and closes at once while the client has not read yet: the
           client still gets all 8 MB, then the end of stream (the relay closes a pair only
           once what the ended side sent is delivered).
Usage: floor_relay_test.py FLOOR_RELAY_BINARY   (exit 0: every case passed)
"""
import hashlib
import os
import random
import socket
import subprocess
import sys
import threading
import time

TIMEOUT_S = 30


def upstream_server(mode, payload):
    """A listening socket whose one connection echoes (mode "echo") or sends payload, then closes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve():
        conn, _ = listener.accept()
        conn.settimeout(TIMEOUT_S)
        if mode == "echo":
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
        else:
            conn.sendall(payload)
        conn.close()
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def start_relay(binary, engine, upstream_port):
    relay = subprocess.Popen([binary, "--engine", engine, "--listen", "127.0.0.1:0", "--upstream",
                              "127.0.0.1:%d" % upstream_port, "--buffers", "4", "--buffer-bytes", "4096"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = relay.stdout.readline().split()
    if len(line) != 2 or line[0] != "listening":
        relay.kill()
        raise RuntimeError("relay did not start: %r %s" % (line, relay.stderr.read()))
    return relay, int(line[1].rsplit(":", 1)[1])


def connect(port):
    """A client socket with a small receive buffer (set before connecting, and above the
    loopback MSS: below it the receiver never reopens its window and the sender waits on
    zero-window probes), so the relay meets a full client and queues."""
    conn = socket.socket()
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 128 << 10)
    conn.settimeout(TIMEOUT_S)
    conn.connect(("127.0.0.1", port))
    return conn


def read_all(conn, bytes_count=None):
    """(sha256, bytes) of what conn yields until the end of stream, or until bytes_count."""
    digest, total = hashlib.sha256(), 0
    while bytes_count is None or total < bytes_count:
        data = conn.recv(65536)
        if not data:
            break
        digest.update(data)
        total += len(data)
    return digest.hexdigest(), total


def case_echo(port):
    sent = os.urandom(4 << 20)
    conn = connect(port)
    result = {}
    reader = threading.Thread(target=lambda: result.update(got=read_all(conn, len(sent))))
    reader.start()
    offset, rng = 0, random.Random(7)
    while offset < len(sent):
        piece = rng.randint(1, 100000)
        conn.sendall(sent[offset:offset + piece])
        offset += piece
    reader.join(TIMEOUT_S)  # (no half-close: the relay would end the pair at once)
    conn.close()
    return result.get("got") == (hashlib.sha256(sent).hexdigest(), len(sent))


def case_close(port, payload):
    conn = connect(port)
    time.sleep(0.5)  # the upstream has sent and closed; the relay holds what the client did not read
    got = read_all(conn)
    conn.close()
    return got == (hashlib.sha256(payload).hexdigest(), len(payload))


def main():
    binary = sys.argv[1]
    failures = 0
    payload = os.urandom(8 << 20)
    for engine in ("epoll", "uring"):
        for name in ("echo", "close"):
            relay, port = start_relay(binary, engine, upstream_server(name, payload))
            try:
                passed = case_echo(port) if name == "echo" else case_close(port, payload)
            except OSError as error:
                passed, name = False, "%s (%s)" % (name, error)
            relay.terminate()
            _, counters = relay.communicate(timeout=TIMEOUT_S)
            print("%s %s: %s  %s" % (engine, name, "ok" if passed else "FAILED", counters.strip()))
            failures += 0 if passed else 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
