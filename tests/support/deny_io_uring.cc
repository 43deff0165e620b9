// tests/support/deny_io_uring.cc — runs a program with io_uring_setup(2) refused (EPERM)
// by a seccomp filter, as a container runtime's default profile or the sysctl
// kernel.io_uring_disabled=2 refuses it, without changing anything machine-wide.
// Usage: deny_io_uring PROGRAM [ARGS...] (the environment is passed on unchanged).
// Used by tests/e2e/startup_test.cc; exit 2 when the filter cannot be installed.
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define RW_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define RW_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "deny_io_uring: add this architecture's AUDIT_ARCH_* value"
#endif

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: deny_io_uring PROGRAM [ARGS...]\n");
        return 2;
    }
    sock_filter filter[] = {
        // Another architecture's system call numbers mean something else: allow them
        // unchanged rather than guess (the tests run native binaries only).
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, RW_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog program{static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])), filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
        fprintf(stderr, "deny_io_uring: cannot install the seccomp filter: %s\n", strerror(errno));
        return 2;
    }
    execv(argv[1], argv + 1);
    fprintf(stderr, "deny_io_uring: cannot run %s: %s\n", argv[1], strerror(errno));
    return 2;
}
