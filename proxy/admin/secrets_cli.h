// proxy/admin/secrets_cli.h — `ringway secrets rotate --new-key-file FILE`: re-encrypts
// every channel key in the database under a new key, offline. It runs against RINGWAY_DB
// while the server is stopped (it takes the database's process lock and refuses while a
// server holds it); the current key comes from RINGWAY_SECRET_KEY_FILE (or the
// ringway-secret-key credential), and channel keys still in plain text are encrypted too.
// Afterwards the server is started with the new key file.
#pragma once

namespace rw {

[[nodiscard]] bool secrets_cli_is_command(const char* arg);
[[nodiscard]] int secrets_cli_main(int argc, char** argv);

}  // namespace rw
