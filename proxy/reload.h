// proxy/reload.h — the zero-downtime reload on SIGHUP, both sides of it. The running
// process re-reads RINGWAY_ENV_FILE, fork+execs the binary at its path (a new one after
// an upgrade) with the listening sockets inherited (their numbers in RINGWAY_INHERITED_FDS)
// and a pipe (RINGWAY_RELOAD_READY_FD), and waits for one byte on it: the new process
// writes it once its shards accept. Only then does the old process stop accepting and
// drain. A new process that exits (bad configuration) or stays silent for
// reload_ready_timeout_ms leaves the old one serving. Main thread only, both sides.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/config.h"

namespace rw {

constexpr uint32_t reload_ready_timeout_ms = 60000;  // The unit's TimeoutStartSec.

// systemd's EnvironmentFile= syntax, the part ringway.env uses: KEY=value lines, blank
// lines and lines starting with '#' or ';' skipped, whitespace around the key and value
// trimmed, one pair of matching quotes removed. False with the line's number in `error`.
[[nodiscard]] bool env_file_parse(std::string_view text,
                                  std::vector<std::pair<std::string, std::string>>& entries,
                                  std::string& error);

// The new process's side. Filled from (and then removed from) the environment.
struct Inherited {
    bool is_reload = false;
    std::vector<int> listen_fds;
    int admin_fd = -1;  // -1: the previous process had no admin listener.
    int ready_fd = -1;
};

// Reads RINGWAY_INHERITED_FDS and RINGWAY_RELOAD_READY_FD (absent: a cold start) and marks
// the descriptors close-on-exec again. False with one line in `error` when malformed.
[[nodiscard]] bool reload_inherited(Inherited& inherited, std::string& error);

// The shard listeners from the inherited sockets: checked to be on `listen`'s address,
// one per shard, shared when there are more shards than sockets; fewer shards than sockets
// is refused (closing one would reset the connections in its accept queue).
[[nodiscard]] bool reload_listeners(Inherited& inherited, ListenAddress& listen,
                                    uint32_t shard_count, std::vector<int>& fds,
                                    std::string& error);

// The new process is serving: one byte to the old one, and the pipe closed.
void reload_signal_ready(Inherited& inherited);

// The old process's side: the program's path, taken at startup (before an upgrade
// replaces the file, /proc/self/exe would still name the old one).
void reload_remember_program();

struct ReloadOutcome {
    bool is_ready = false;  // The new process accepts: stop accepting and drain.
    pid_t pid = -1;
    std::string error;  // Why not, when !is_ready.
};

// Starts the new process with these listeners and waits for its readiness.
[[nodiscard]] ReloadOutcome reload_start(const std::string& env_file,
                                         const std::vector<int>& listen_fds, int admin_fd);

}  // namespace rw
