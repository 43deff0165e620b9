#!/usr/bin/env python3
"""bench/load/kernel_split.py — where a proxy's CPU goes, from a `perf record -e cpu-clock -g`
profile: reads `perf script -F comm,ip,sym` on stdin and prints one line of key=value pairs,
the CPU time per unit (stream or request) of each class, given that unit's total CPU time:

  python3 kernel_split.py CPU_US_PER_UNIT [TOP] < <(perf script -i FILE -F comm,ip,sym)
  -> k_user=… k_send=… k_recv=… k_poll=… k_sched=… k_entry=… k_other=… samples=N
With TOP, then the TOP leaf symbols of each class, one per line ("  k_send tcp_v4_rcv 3.1").

A sample whose first frame is in user space is k_user. A kernel sample takes the first class
(in this order) whose marker is anywhere in its call chain:
  k_send   a send and what it runs: tcp_sendmsg and below, which on loopback includes the
           receiver's delivery (IP, tcp_v4_rcv, its wake-up) in the sender's context; also
           the write/sendmsg syscall layers above it (sock_write_iter, __sys_sendto, ...).
  k_recv   a read and what it runs: tcp_recvmsg and below (the copy, the ACK it sends and
           that ACK's delivery to the peer), and the read/recvmsg syscall layers.
  k_sched  a context switch: __schedule (going to sleep in epoll_wait/io_uring_enter, and
           the samples that land when interrupts are enabled again after the switch).
  k_poll   the event machinery: epoll (ep_*, do_epoll_*) and io_uring (io_uring_enter, SQE
           issue, task work, CQE posting, provided buffers, poll arming) outside the above.
  k_entry  syscall entry and exit only (every kernel frame is entry code: entry_SYSCALL_64,
           do_syscall_64, syscall_exit_to_user_mode, the syscall's thin wrapper, ...).
  k_other  the rest: accept, connect, close, timers and softirqs from interrupts (delayed
           ACKs), page faults, perf's own sampling.
"""
import re
import sys

CLASSES = [
    ("k_send", re.compile(r"^(tcp_sendmsg|sock_sendmsg|sock_write_iter|__sys_sendto|"
                          r"__sys_sendmsg|do_writev|vfs_writev|ksys_write)")),
    ("k_recv", re.compile(r"^(tcp_recvmsg|sock_recvmsg|sock_read_iter|__sys_recvfrom|"
                          r"__sys_recvmsg|ksys_read|tcp_cleanup_rbuf)")),
    ("k_sched", re.compile(r"^(__schedule|schedule$|finish_task_switch)")),
    ("k_poll", re.compile(r"^(ep_|do_epoll_|__x64_sys_epoll|__do_sys_epoll|io_|__io_|"
                          r"__do_sys_io_uring|__x64_sys_io_uring)")),
]
ENTRY = re.compile(r"^(entry_SYSCALL|do_syscall_64|syscall_exit|exit_to_user_mode|"
                   r"syscall_return|x64_sys_call|__x64_sys_|__do_sys_|fdget|fput|"
                   r"__fdget|__rcu_read|pvm_|__raw_callee_save_pvm)")
NAMES = ["k_user", "k_send", "k_recv", "k_sched", "k_poll", "k_entry", "k_other"]


def classify(frames):
    """frames: [(ip, symbol)], leaf first."""
    if not frames or not frames[0][0].startswith("ffff"):
        return "k_user"
    kernel = [symbol for ip, symbol in frames if ip.startswith("ffff")]
    for name, marker in CLASSES:
        if any(marker.match(symbol) for symbol in kernel):
            return name
    if all(ENTRY.match(symbol) for symbol in kernel):
        return "k_entry"
    return "k_other"


def main():
    cpu_us = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    counts = {name: 0 for name in NAMES}
    leaves = {name: {} for name in NAMES}
    frames = []

    def count(frames):
        name = classify(frames)
        counts[name] += 1
        leaves[name][frames[0][1]] = leaves[name].get(frames[0][1], 0) + 1

    for line in sys.stdin:
        if line.startswith(("\t", " ")):
            parts = line.split(None, 1)
            if len(parts) == 2:
                frames.append((parts[0], parts[1].strip()))
            continue
        if frames:
            count(frames)
        frames = []
        if not line.strip():
            continue
        fields = line.split()
        # A sample without a call chain prints "comm ip sym" on one line.
        if len(fields) >= 3 and re.match(r"^[0-9a-f]+$", fields[-2]):
            frames = [(fields[-2], fields[-1])]
    if frames:
        count(frames)
    total = sum(counts.values())
    if total == 0:
        print("samples=0")
        return
    parts = ["%s=%.1f" % (name, cpu_us * counts[name] / total) for name in NAMES]
    print(" ".join(parts) + " samples=%d" % total)
    for name in NAMES if top > 0 else []:
        ranked = sorted(leaves[name].items(), key=lambda item: -item[1])[:top]
        for symbol, n in ranked:
            print("  %s %s %.1f" % (name, symbol, cpu_us * n / total))


if __name__ == "__main__":
    main()
