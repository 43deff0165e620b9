// proxy/main.cc — the program's entry and composition root: the CLI when the first
// argument names a command, --help/--version, otherwise the gateway server started in
// named steps (config, signals, io_uring probe, listeners, storage, services, shards),
// then a wait for SIGTERM/SIGINT (or a SIGHUP reload, proxy/reload.h) and an orderly stop. Every
// startup failure is one clear line on stderr and exit status 1 before any request is served.
#include <signal.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/listen.h"
#include "core/llhttp_simd.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/shard.h"
#include "proxy/admin/backup.h"
#include "proxy/admin/cli.h"
#include "proxy/admin/secrets_cli.h"
#include "proxy/reload.h"
#include "proxy/services.h"

namespace rw {
namespace {

constexpr const char* version_text = "ringway 0.1.0";

const char* env_lookup(const char* name, void*) {
    return std::getenv(name);
}

[[noreturn]] void die(const std::string& message) {
    std::fprintf(stderr, "ringway: %s\n", message.c_str());
    std::exit(1);
}

// Signals are taken by the main thread with sigwait; every thread inherits the mask.
sigset_t signals_block() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);  // systemctl reload (ExecReload): must not kill the process.
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    return signals;
}

void announce_ready(const Services& services) {
    const Config& config = services.config;
    RW_LOG_INFO("event=ready listen=%s shards=%u admin=%s version=\"%s\"%s", config.listen.text,
                config.shards,
                services.admin.is_enabled() ? services.admin.listen_text().c_str() : "off",
                version_text, services.is_reload ? " reload=1" : "");
    // Under a reload the previous process, still systemd's main PID, names this one.
    if (!services.is_reload && !notify_systemd("READY=1")) {
        RW_LOG_WARN("event=notify_failed state=READY");
    }
}

// SIGHUP: a new process on these listeners; once it is ready this one stops like on
// SIGTERM (it stops accepting and drains). True when the new one took over.
bool reload(const Services& services, const std::vector<int>& listen_fds) {
    RW_LOG_INFO("event=reload_started env_file=%s",
                services.config.env_file.empty() ? "-" : services.config.env_file.c_str());
    const ReloadOutcome outcome =
        reload_start(services.config.env_file, listen_fds, services.admin.listen_fd());
    if (!outcome.is_ready) {
        RW_LOG_ERROR("event=reload_failed pid=%d error=\"%s\" action=\"still serving\"",
                     int(outcome.pid), outcome.error.c_str());
        return false;
    }
    RW_LOG_INFO("event=reload_handover new_pid=%d", int(outcome.pid));
    char state[64];
    std::snprintf(state, sizeof(state), "MAINPID=%d\nREADY=1", int(outcome.pid));
    if (!notify_systemd(state)) {
        RW_LOG_WARN("event=notify_failed state=MAINPID");
    }
    return true;
}

int signal_wait(const sigset_t& signals, const Services& services,
                const std::vector<int>& listen_fds) {
    int signal_number = 0;
    for (;;) {
        sigwait(&signals, &signal_number);
        if (signal_number != SIGHUP || reload(services, listen_fds)) {
            break;
        }
    }
    const char* name = signal_number == SIGINT ? "INT" : signal_number == SIGHUP ? "HUP" : "TERM";
    RW_LOG_INFO("event=stopping signal=%s timeout_ms=%u", name,
                services.config.shutdown_timeout_ms);
    if (signal_number != SIGHUP) {  // After a handover the new process is the main PID.
        [[maybe_unused]] const bool notified = notify_systemd("STOPPING=1");
    }
    return signal_number;
}

// One line with the limits every shard runs with, and where the derived ones came from.
void log_limits(const Config& config, uint64_t nofile_hard, bool is_nofile_raised) {
    if (!is_nofile_raised) {
        RW_LOG_WARN("event=nofile_not_raised soft=%lu hard=%lu",
                    static_cast<unsigned long>(config.nofile_limit),
                    static_cast<unsigned long>(nofile_hard));
    }
    RW_LOG_INFO(
        "event=limits nofile=%lu nofile_hard=%lu memory_bytes=%lu shards=%u "
        "max_connections=%u%s upstream_connections_max=%u%s recv_buffers=%u "
        "recv_buffer_bytes=%u stream_buffer_bytes=%u llhttp=%s",
        static_cast<unsigned long>(config.nofile_limit), static_cast<unsigned long>(nofile_hard),
        static_cast<unsigned long>(config.memory_bytes), config.shards, config.max_connections,
        config.is_max_connections_derived ? "(derived)" : "", config.upstream_connections_max,
        config.is_upstream_connections_derived ? "(derived)" : "", config.recv_buffers,
        config.recv_buffer_bytes, config.stream_buffer_bytes,
        llhttp_simd_active() ? "sse4.2" : "baseline");
}

int run_server() {
    reload_remember_program();
    Inherited inherited;  // Set when a reload started this process.
    // The soft descriptor limit goes up to the hard one first: the derived connection
    // limits are read from it.
    uint64_t nofile_soft = 0;
    uint64_t nofile_hard = 0;
    const bool is_nofile_raised = config_raise_nofile(nofile_soft, nofile_hard);
    Config config;
    std::string error;
    if (!reload_inherited(inherited, error) ||
        !config_from_env(config, env_lookup, nullptr, error)) {
        die(error);
    }
    log_set_level(config.log_level);
    const sigset_t signals = signals_block();
    // io_uring first: a refused ring (sysctl, seccomp) is the one line an operator sees.
    std::vector<int> listen_fds;
    if (!io_uring_probe(error) ||
        !(inherited.is_reload
              ? reload_listeners(inherited, config.listen, config.shards, listen_fds, error)
              : listeners_open(config.listen, config.shards, listen_fds, error))) {
        die(error);
    }
    // Logged once the ring and the listeners exist: a refusal above stays the one line.
    log_limits(config, nofile_hard, is_nofile_raised);
    auto services = std::make_unique<Services>(config);
    services->is_reload = inherited.is_reload;
    services->admin.adopt_listener(inherited.admin_fd);
    if (!services_open_storage(*services, error) || !services_start(*services, env_lookup, error)) {
        die(error);
    }
    if (!services_start_shards(*services, listen_fds, error)) {
        std::fprintf(stderr, "ringway: %s\n", error.c_str());
        std::_Exit(1);  // Threads are running: no destructors, no atexit.
    }
    announce_ready(*services);
    reload_signal_ready(inherited);
    if (signal_wait(signals, *services, listen_fds) == SIGHUP) {
        services->shared.is_handing_over.store(true, std::memory_order_release);
    }
    const bool is_drained = services_stop(*services);
    RW_LOG_INFO("event=stopped rows_written=%lu",
                static_cast<unsigned long>(services->writer.rows_written()));
    return is_drained ? 0 : 1;
}

}  // namespace
}  // namespace rw

int main(int argc, char** argv) {
    if (argc > 1 && rw::secrets_cli_is_command(argv[1])) {
        return rw::secrets_cli_main(argc, argv);
    }
    if (argc > 1 && std::string_view(argv[1]) == "backup") {
        return rw::admin_backup_main(argc, argv);
    }
    if (argc > 1 && rw::admin_cli_is_command(argv[1])) {
        return rw::admin_cli_main(argc, argv);
    }
    for (int i = 1; i < argc; i++) {
        const std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::fputs(rw::config_help_text().c_str(), stdout);
            return 0;
        }
        if (arg == "--version") {
            std::puts(rw::version_text);
            return 0;
        }
        std::fprintf(stderr, "ringway: unknown argument %s (see --help)\n", argv[i]);
        return 2;
    }
    return rw::run_server();
}
