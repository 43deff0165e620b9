// proxy/admin/bootstrap.cc — bootstrap_channels_from_env: one channel per provider key
// found, through Catalog (the Writer thread, then a snapshot reload) and checked by the
// same rules as an admin API create (admin_base_url_check, channel_spec_check). The
// upstream key is wiped from memory once written and never logged.
#include "proxy/admin/bootstrap.h"

#include <openssl/crypto.h>

#include <string_view>
#include <vector>

#include "core/log.h"
#include "proxy/admin/base_url.h"
#include "storage/keys.h"
#include "storage/queries.h"

namespace rw {

namespace {

bool bootstrap_channel(Catalog& catalog, std::string_view name, ChannelKind kind,
                       std::string base_url, std::string_view api_key, bool is_url_explicit,
                       std::string_view source, std::string& error) {
    ChannelSpec spec;
    spec.name = std::string(name);
    spec.kind = kind;
    spec.base_url = std::move(base_url);
    spec.api_key = std::string(api_key);
    spec.models_json = "[]";  // Every model.
    std::string check = admin_base_url_check(spec.base_url, false);
    if (!check.empty() && is_url_explicit && admin_base_url_check(spec.base_url, true).empty()) {
        spec.allow_private_network = true;  // The operator named this address on purpose.
        check.clear();
    }
    if (check.empty()) {
        check = channel_spec_check(spec);
    }
    if (!check.empty()) {
        error = "cannot create a channel from " + std::string(source) + ": " + check;
        return false;
    }
    const Result<int64_t> created = catalog.create_channel(spec);
    OPENSSL_cleanse(spec.api_key.data(), spec.api_key.size());
    if (!created.ok()) {
        error = "cannot create a channel from " + std::string(source) + ": " + created.error;
        return false;
    }
    RW_LOG_INFO(
        "event=channel_bootstrapped id=%lld name=%s kind=%s base_url=%s source=%s "
        "allow_private_network=%d models=all",
        (long long)created.value, spec.name.c_str(), std::string(channel_kind_name(kind)).c_str(),
        spec.base_url.c_str(), std::string(source).c_str(), spec.allow_private_network);
    return true;
}

// OPENAI_BASE_URL follows the SDK convention (".../v1"); channels store the origin the
// proxy appends /v1/... to, so a trailing "/v1" and slashes are dropped.
std::string openai_base_url(const char* text) {
    std::string url = text;
    while (url.ends_with('/')) {
        url.pop_back();
    }
    if (url.ends_with("/v1")) {
        url.resize(url.size() - 3);
    }
    while (url.ends_with('/')) {
        url.pop_back();
    }
    return url;
}

}  // namespace

bool bootstrap_channels_from_env(Catalog& catalog, Queries& queries, EnvLookup lookup,
                                 void* lookup_context, std::string& error) {
    const char* openai_key = lookup("OPENAI_API_KEY", lookup_context);
    const char* anthropic_key = lookup("ANTHROPIC_API_KEY", lookup_context);
    const bool has_openai = openai_key != nullptr && *openai_key != '\0';
    const bool has_anthropic = anthropic_key != nullptr && *anthropic_key != '\0';
    if (!has_openai && !has_anthropic) {
        return true;
    }
    const Result<std::vector<ChannelInfo>> channels = queries.list_channels();
    if (!channels.ok()) {
        error = "cannot list channels: " + channels.error;
        return false;
    }
    if (!channels.value.empty()) {
        RW_LOG_INFO("event=channel_bootstrap_skipped reason=channels_exist count=%zu",
                    channels.value.size());
        return true;
    }
    if (has_openai) {
        const char* base = lookup("OPENAI_BASE_URL", lookup_context);
        const bool is_explicit = base != nullptr && *base != '\0';
        if (!bootstrap_channel(catalog, "openai", ChannelKind::openai,
                               openai_base_url(is_explicit ? base : "https://api.openai.com"),
                               openai_key, is_explicit, "OPENAI_API_KEY", error)) {
            return false;
        }
    }
    if (has_anthropic && !bootstrap_channel(catalog, "anthropic", ChannelKind::anthropic,
                                            "https://api.anthropic.com", anthropic_key, false,
                                            "ANTHROPIC_API_KEY", error)) {
        return false;
    }
    return true;
}

}  // namespace rw
