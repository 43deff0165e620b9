// proxy/admin/cli_usage.cc — what `ringway <command> [verb] --help` prints (see
// cli_usage.h): one entry per command and verb, printed alone or together.
#include "proxy/admin/cli_usage.h"

namespace rw {
namespace {

// One command's usage; `ringway <command> [verb] --help` prints the entries that match.
struct CommandUsage {
    std::string_view command;
    std::string_view verb;  // Empty: the command has no verbs.
    std::string_view text;
};

constexpr CommandUsage command_usages[] = {
    {"key", "create",
     "  ringway key create --name NAME [--quota TOKENS] [--models a,b] [--rpm N]\n"
     "                     [--concurrency N] [--tpm N] [--limits JSON]\n"
     "                     [--expires 30d|UNIX_SECONDS] [--key-env VAR]\n"
     "                     [--allowed-cidrs 10.0.0.0/8,2001:db8::/32]\n"
     "                     [--budget-usd USD] [--period none|daily|weekly|monthly]\n"
     "                     [--strict]   (requests without an output limit get the largest\n"
     "                     the remaining budget affords)\n"
     "                     (--limits '{\"gpt-4o\":{\"rpm\":60,\"tpm\":90000}}': per model)\n"},
    {"key", "list", "  ringway key list\n"},
    {"key", "show", "  ringway key show ID\n"},
    {"key", "revoke", "  ringway key revoke ID\n"},
    {"key", "update",
     "  ringway key update ID [--name N] [--quota TOKENS|none] [--models a,b|all] [--rpm N]\n"
     "                     [--concurrency N] [--tpm N] [--limits JSON|none]\n"
     "                     [--expires 30d|UNIX_SECONDS|never] [--allowed-cidrs CIDR,CIDR|any]\n"
     "                     [--budget-usd USD|none] [--period none|daily|weekly|monthly]\n"
     "                     [--strict[=false]]\n"},
    {"key", "topup", "  ringway key topup ID AMOUNT_USD [--reason TEXT]\n"},
    {"channel", "add",
     "  ringway channel add --name NAME --kind openai|anthropic|openai-compatible\n"
     "                     --base-url URL --api-key-env VAR [--models a,b]\n"
     "                     [--model-map asked=sent,...] [--priority N] [--weight N]\n"
     "                     [--allow-private-network[=false]] [--ca-file PATH] [--disabled]\n"
     "                     [--auto-disable=false] [--stream-usage inject|off]\n"
     "                     [--probe-model MODEL]   (a down channel idle past its backoff is\n"
     "                     probed on it: max_tokens 1, a usage row of the system key)\n"},
    {"channel", "list", "  ringway channel list\n"},
    {"channel", "show", "  ringway channel show ID\n"},
    {"channel", "remove", "  ringway channel remove ID\n"},
    {"channel", "update",
     "  ringway channel update ID [--name N] [--kind K] [--base-url URL] [--api-key-env VAR]\n"
     "                     [--models a,b] [--model-map asked=sent,...|none] [--priority N]\n"
     "                     [--weight N] [--enabled|--disabled] [--allow-private-network[=false]]\n"
     "                     [--ca-file PATH] [--auto-disable[=false]] [--stream-usage "
     "inject|off]\n"
     "                     [--probe-model MODEL]\n"},
    {"channel", "test",
     "  ringway channel test ID     (probes the channel now: its probe model with max_tokens 1,\n"
     "                     recorded under the system key, or GET /v1/models without one)\n"},
    {"price", "set",
     "  ringway price set --model NAME|PREFIX* --input USD --output USD [--channel ID]\n"
     "                     [--cached-input USD] [--cache-write USD] [--reasoning USD]\n"
     "                     [--per-request USD] [--effective-from UNIX_SECONDS]\n"},
    {"price", "list", "  ringway price list [--all]\n"},
    {"price", "rm", "  ringway price rm ID\n"},
    {"alias", "add",
     "  ringway alias add NAME --models a,b   (asked as NAME: a's channels, then b's)\n"},
    {"alias", "list", "  ringway alias list\n"},
    {"alias", "update", "  ringway alias update ID [--name NAME] [--models a,b]\n"},
    {"alias", "rm", "  ringway alias rm ID\n"},
    {"usage", "",
     "  ringway usage [--key ID|NAME] [--since 7d|YYYY-MM-DD] [--until YYYY-MM-DD]\n"
     "                     [--group-by key,model,channel,day]\n"},
    {"logs", "",
     "  ringway logs [--key ID|NAME] [--status CODE] [--end-reason REASON] [--limit N]\n"
     "                     [--before ID]   (newest first; --status: the status the client got,\n"
     "                     --end-reason: complete, client_gone, upstream_error, ...)\n"
     "  ringway logs --request ID   (ringway's x-request-id, the client's or the provider's)\n"},
    {"latency", "",
     "  ringway latency [--key ID|NAME] [--since 7d|YYYY-MM-DD] [--until YYYY-MM-DD]\n"
     "                     (per day: p50/p90/p99 of latency and time to first byte, ms)\n"},
};

constexpr std::string_view usage_notes =
    "USD amounts are decimal strings per million tokens (0.15), at most 9 decimal places.\n"
    "Every command accepts --json (print the API's JSON as is) and --help.\n"
    "--key ID|NAME: all digits is a key id (0: the system key, the idle probe's rows);\n"
    "anything else is the name of exactly one key (revoked keys count).\n"
    "The server is found at RINGWAY_ADMIN_LISTEN (default 127.0.0.1:8081) and authorised\n"
    "with RINGWAY_ADMIN_TOKEN.\n";

}  // namespace

std::string admin_cli_usage(std::string_view command, std::string_view verb) {
    std::string text = "usage:\n";
    for (const CommandUsage& usage : command_usages) {
        if ((command.empty() || usage.command == command) && (verb.empty() || usage.verb == verb)) {
            text += usage.text;
        }
    }
    return text.append(usage_notes);
}

bool admin_cli_is_verb(std::string_view command, std::string_view verb) {
    for (const CommandUsage& usage : command_usages) {
        if (usage.command == command && usage.verb == verb) {
            return true;
        }
    }
    return false;
}

}  // namespace rw
