// core/listen.h — the shards' listening sockets and the pinning of shard threads to CPUs.
// Control plane: called once by the program's startup on its main thread (and the pin by
// each shard thread on itself). Every failure is one line in `error`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"

namespace rw {

// One listening socket per shard, all on the same address with SO_REUSEPORT so the
// kernel spreads connections across shards. A port of 0 is replaced by the port picked,
// and listen.text is rewritten to name it. False with one line in `error`.
[[nodiscard]] bool listeners_open(ListenAddress& listen, uint32_t count, std::vector<int>& fds,
                                  std::string& error);

// A listening socket inherited from the process that started this one (a reload): true
// when fd listens on listen's address (a port of 0 takes the socket's port, and listen
// is rewritten to name it). False with one line in `error`.
[[nodiscard]] bool listener_adopt(int fd, ListenAddress& listen, std::string& error);

// Names the calling thread (ps -L, top -H, perf; 15 characters at most) and pins it to
// the index-th CPU of the process's affinity mask when there is one. Pinning is best
// effort: a container may forbid it and the thread still runs.
void thread_name_and_pin(const char* name, int64_t cpu_index);

}  // namespace rw
