// proxy/translate_responses.h — Responses API → Chat Completions, for a /v1/responses client
// on a chat-only channel: the request (translate_responses_request.cc), the whole answer and
// the stream back (translate_responses_response.cc, translate_responses_stream.cc). Called
// through translate.h's entry points; internal to translate_*.cc.
#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>

#include "arena/arena.h"
#include "proxy/translate.h"
#include "proxy/translate_json.h"
#include "proxy/translate_shared.h"

namespace rw {

// The Chat Completions body for a Responses request; false (refuse called) when a member
// has no Chat equivalent.
[[nodiscard]] bool responses_request_to_chat(simdjson::dom::object root,
                                             const TranslateRequestOptions& options,
                                             std::string& out, Refusal& refuse);

// Usage in the Responses shape (input_tokens includes the cached ones, as Chat's
// prompt_tokens does).
void responses_usage_write(std::string& out, const TranslatedUsage& usage);

// "completed", or "incomplete" (reason set) for finish_reason length or content_filter.
[[nodiscard]] std::string_view responses_status(std::string_view finish_reason,
                                                std::string_view& reason);
// A `response` object up to its open "output":[ (the caller writes the items, then
// "],\"usage\":…}"). Its id is "resp_" + the upstream's id.
void responses_object_open(std::string& out, std::string_view id, uint64_t created_s,
                           std::string_view status, std::string_view reason,
                           std::string_view model);

// A whole chat.completion as a Responses `response` object; false when it is not one.
[[nodiscard]] bool completion_to_response(simdjson::dom::object completion,
                                          std::string_view model_requested, uint64_t created_s,
                                          std::string& out);

// A chat.completion.chunk (or a {"error":…} event) as Responses events; false when the
// answer outgrows translate_output_bytes_max or the arena.
[[nodiscard]] bool responses_stream_chunk(Arena& arena, StreamTranslator& t,
                                          simdjson::dom::object chunk, std::string& out);
// [DONE] or the end of the upstream's stream: the open item closed, response.completed
// (or response.incomplete) with every output item and the usage.
// False when the open item could not be kept (its output_item.done went out, the
// completed response lacks it).
bool responses_stream_end(StreamTranslator& t, std::string& out);

}  // namespace rw
