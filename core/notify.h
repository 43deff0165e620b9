// core/notify.h — systemd's readiness protocol without libsystemd: a datagram with
// "READY=1" or "STOPPING=1" to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an
// abstract name starting with '@') [sd_notify(3), "Notes"]. A no-op outside systemd.
// Called from the main thread only.
#pragma once

namespace rw {

// Sends state (e.g. "READY=1") if NOTIFY_SOCKET is set. Returns false only when the
// socket is set but the message could not be sent (logged by the caller).
[[nodiscard]] bool notify_systemd(const char* state);

}  // namespace rw
