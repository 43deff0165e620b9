// proxy/admin/bootstrap.h — the first start of an empty database: channels made from the
// provider keys already in the environment (OPENAI_API_KEY, ANTHROPIC_API_KEY), so
// `OPENAI_API_KEY=... ringway` proxies at once. Control plane, main thread, at startup.
#pragma once

#include <string>

#include "core/config.h"

namespace rw {

class Catalog;
class Queries;

// First start: when the database has no channel and OPENAI_API_KEY (base URL from
// OPENAI_BASE_URL, default https://api.openai.com) or ANTHROPIC_API_KEY (base
// https://api.anthropic.com) is set, creates one channel per variable, named "openai" /
// "anthropic", with models [] — an empty list means the channel serves every model —
// and priority 0. An OPENAI_BASE_URL whose host is a private or loopback literal is the
// operator's explicit choice, so that channel gets allow_private_network. Call before
// the shards start, with the Writer running. Returns false only on a real failure (bad
// OPENAI_BASE_URL, storage error); nothing to do is success. Logs without the secret.
[[nodiscard]] bool bootstrap_channels_from_env(Catalog& catalog, Queries& queries, EnvLookup lookup,
                                               void* lookup_context, std::string& error);

}  // namespace rw
