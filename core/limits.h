// core/limits.h — every compile-time maximum of the program in one leaf header, grouped by
// the room that holds the resource, with the relationships between them as static_asserts.
// Values an operator tunes come from Config (RINGWAY_*); these are the fixed bounds those
// values are checked against. A base header: it includes nothing of ringway's, so every
// layer (arena, core, storage, proxy) may include it.
#pragma once

#include <bit>
#include <cstdint>

namespace rw {

// ---- arena/: chunks and large blocks --------------------------------------------------

constexpr uint32_t arena_chunk_bytes = 16 * 1024;  // One small arena chunk, header included.
constexpr uint32_t arena_chunk_header_bytes = 16;  // Chunk::next, padded to 16.
constexpr uint32_t chunk_payload_bytes = arena_chunk_bytes - arena_chunk_header_bytes;
constexpr uint32_t large_block_bytes_min = 64 * 1024;  // Smallest large size class.
constexpr uint32_t large_class_count = 16;             // 64 KiB .. 2 GiB.
// Small chunks a shard's pool reserves at start and never trims below (RINGWAY_POOL_TRIM_MS
// gives back only what is cached above it).
constexpr uint32_t pool_small_chunks_floor = 64;

// ---- core/: shards, rings, client connections ------------------------------------------

constexpr uint32_t shards_max = 256;
constexpr uint32_t conns_per_shard_max = 1u << 20;  // Slot index fits the 32-bit tag field.
constexpr uint32_t ring_entries = 4096;             // SQ size; the CQ is four times that.
constexpr uint32_t recv_buffers_max = 32768;        // Kernel limit for a provided ring.
constexpr uint32_t recv_buffer_bytes_min = 1024;
constexpr uint32_t recv_buffer_bytes_max = 1u << 20;

// A connection parks received buffers it has not parsed yet (pipelined requests that
// arrive while the previous one is answered). Past the pause mark its multishot recv is
// cancelled; the extra room holds CQEs that were already on the way.
constexpr uint32_t conn_pending_bufs_max = 16;
constexpr uint32_t conn_pending_bufs_pause = 8;
// Received pieces up to this size are merged into the last parked buffer (see on_recv).
constexpr uint32_t pending_merge_bytes_max = 512;

// New connections that wait for the slot of an idle keep-alive connection closed to make
// room for them (at RINGWAY_MAX_CONNECTIONS); past this many at once they are refused.
constexpr uint32_t accept_waiting_max = 256;

// Pieces queued for one client's sends: response heads, chunk framing, arena memory and
// upstream recv buffers lent to the send. One chunk of a relayed stream takes three.
constexpr uint32_t conn_send_segments_max = 32;
constexpr uint32_t segment_inline_bytes_max = 20;  // A chunk-size line kept in the segment.

// After an error response the connection is half-closed and its input discarded for at
// most this long or this many bytes before the final close (nginx lingering_close), so
// the client reads the error instead of an RST.
constexpr uint32_t linger_ms_max = 2000;
constexpr uint64_t linger_bytes_max = 1u << 20;

// Deadlines are checked by a sweep of the shard's connections at this period; it is the
// granularity of every timeout.
constexpr uint32_t timer_sweep_ms = 25;

// Response heads and small bodies the core writes itself.
constexpr uint32_t response_head_bytes_max = 1024;
constexpr uint32_t metrics_text_bytes_max = 256 * 1024;  // Histograms by endpoint included.
constexpr uint32_t date_line_bytes = 37;  // "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"

// Zeros after a client body that are not part of it, for simdjson's padded reads (proxy/
// asserts that this equals simdjson::SIMDJSON_PADDING; core/ does not include simdjson).
constexpr uint32_t body_padding_bytes = 64;
// Upper bound for RINGWAY_MAX_RESPONSE_BYTES: a whole answer plus its padding fits one
// large block (the largest class).
constexpr uint64_t response_bytes_max = 1ull << 30;
constexpr uint32_t parse_error_kinds_max = 32;  // Metric slots for ParseError values.
constexpr int listen_backlog = 4096;

// ---- storage/: the writer, its queues, the snapshot ------------------------------------

constexpr uint32_t log_batch_rows_max = 8192;       // Upper bound for RINGWAY_LOG_BATCH.
constexpr uint32_t writer_yield_rows = 32;          // Rows inserted between sched_yield()s.
constexpr uint32_t log_queue_slots_max = 1u << 22;  // Per shard; 4M * ~320 B is plenty.
constexpr uint32_t storage_shards_max = 512;        // Queues the writer drains; snapshot readers.
// Retention (storage/retention.h): rows deleted per pruning step, adapted within these
// bounds so a step takes about the target; free pages given back per step; how often the
// writer looks for work when the last step found none.
constexpr uint32_t retention_step_rows_min = 64;
constexpr uint32_t retention_step_rows_max = 4096;
constexpr uint32_t retention_step_ms_target = 5;
constexpr uint32_t retention_vacuum_pages_max = 128;
constexpr uint32_t retention_check_ms = 1000;
// The spill file's reserve (storage/spill.h): every row the queues can hold, at most this.
constexpr uint64_t spill_reserve_bytes_max = 16ull << 20;
constexpr uint32_t writer_latency_bucket_count = 24;  // log2(us) buckets: <2us .. >=8.4s
constexpr uint32_t query_rows_max = 1000;             // Upper bound on any admin page size.
// Stored text lengths in a UsageRecord (the arrays hold one more for the NUL).
constexpr uint32_t record_model_bytes_max = 95;       // Longest real model ids are ~60.
constexpr uint32_t record_endpoint_bytes_max = 39;    // "/v1/chat/completions" is 20.
constexpr uint32_t record_request_id_bytes_max = 47;  // Gateway ids are 32 hex chars.
// A client's x-request-id and a provider's request id (OpenAI "req_" + 32 hex, Anthropic
// "req_" + 24 base62): a client id longer than this is neither recorded nor passed on.
constexpr uint32_t record_foreign_id_bytes_max = 63;
constexpr uint32_t traceparent_bytes = 55;  // W3C Trace Context version 00, fixed length.
// Prices (storage/prices.h): integers in nano-USD (1 USD = 10^9). A rate is per million
// tokens and at most $10,000 per million; a per-request fee at most $1,000. With 32-bit
// token counts these bounds keep a row's cost far inside int64 (proxy/cost.cc asserts it).
constexpr int64_t nano_per_usd = 1'000'000'000;
constexpr uint32_t usd_fraction_digits = 9;  // "0.000000001" is the finest amount accepted.
constexpr int64_t price_per_mtok_nano_max = 10'000 * nano_per_usd;
constexpr int64_t price_per_request_nano_max = 1'000 * nano_per_usd;
constexpr uint32_t price_model_bytes_max = 200;  // A model name or "prefix*" pattern.
constexpr uint32_t prices_max = 100'000;         // Price versions loaded into a snapshot.
// Gateway keys: "sk-rw-" + unpadded base64url of 32 random bytes (RULES Security 1).
constexpr uint32_t key_secret_random_bytes = 32;
constexpr uint32_t key_secret_bytes = 6 + 43;
constexpr uint32_t key_display_prefix_bytes = 10;  // "sk-rw-" + 4 random chars.
constexpr uint32_t imported_secret_bytes_min = 16;
constexpr uint32_t imported_secret_bytes_max = 256;

// ---- proxy/: the gateway on a shard ----------------------------------------------------

constexpr uint32_t channel_states_max = 1024;  // Channels a shard tracks health/pools for.
// Metric label values of open sets (models, channels): this many each, then "other".
constexpr uint32_t metric_labels_max = 32;
constexpr uint32_t metric_label_bytes_max = 63;
constexpr uint32_t attempts_max = 9;                     // 1 + RINGWAY_RETRIES (at most 8).
constexpr uint32_t route_group_channels_max = 64;        // Channels judged in one priority group.
constexpr uint32_t json_document_bytes_max = 64u << 20;  // The shard parser's default ceiling.
constexpr uint32_t sse_event_bytes_max = 1u << 20;       // Longest event the scanner keeps.
constexpr uint32_t upstream_body_spans_max = 32;         // Body spans per upstream parse call.
constexpr uint32_t upstream_interim_heads_max = 8;       // 1xx heads skipped before the final one.
constexpr uint64_t resolver_retire_delay_ms = 10000;     // An old address book lives this long.
// Usage-only events one scanned piece may report for cutting (one per stream in practice).
constexpr uint32_t sse_cuts_per_feed_max = 4;
// The start of a stream event that a recv piece cut, held back (copied) while the injected
// usage chunk is being cut out; a longer open event is relayed uncut.
constexpr uint32_t stream_hold_bytes_max = 64 * 1024;
// The provider's response headers relayed to the client (request ids, rate-limit advice;
// Anthropic sends about a dozen of ~60 bytes), per request in its arena.
constexpr uint32_t upstream_relayed_headers_bytes_max = 2048;
constexpr uint32_t resolver_wait_ms_max = 5000;  // An admin channel write waits for its address.
// GET /v1/models: distinct models listed at most, and the longest model (or channel) name
// listed; a JSON-escaped byte is at most 6 bytes (\u00XX).
constexpr uint32_t models_listed_max = 256;
constexpr uint32_t model_name_bytes_max = 200;
// TLS session cache (proxy/tls): hosts with a remembered session per context (one context
// serves one channel, so a handful is plenty; the oldest is evicted), and the longest host
// accepted (a DNS name is at most 253 characters, RFC 1035 2.3.4; an IPv6 literal 45).
constexpr uint32_t tls_session_hosts_max = 8;
constexpr uint32_t tls_host_bytes_max = 253;

// ---- proxy/admin/: the control plane ----------------------------------------------------

constexpr uint32_t admin_request_line_bytes_max = 8 * 1024;
constexpr uint32_t admin_header_bytes_max = 16 * 1024;
constexpr uint32_t admin_header_count_max = 64;
constexpr uint32_t admin_body_bytes_max = 1024 * 1024;   // JSON bodies are tiny; 1 MiB is lavish.
constexpr uint32_t admin_connection_timeout_ms = 10000;  // Whole request + response.
constexpr uint32_t admin_listen_backlog = 64;
constexpr uint32_t admin_logs_limit_default = 50;
// GET /admin/latency reads at most this many rows (the newest of its window), ~3 MB.
constexpr uint32_t admin_latency_rows_max = 100000;
constexpr uint32_t admin_models_count_max = 4096;  // Entries in a models list or model map.
constexpr uint32_t admin_chunk_count_max = 64;     // Small chunks of an admin request's head.
constexpr uint64_t admin_large_bytes_max = 8ull * 1024 * 1024;  // The body's block (+ growth).
constexpr uint64_t admin_arena_bytes_max = 4ull * 1024 * 1024;
constexpr uint32_t admin_chunk_ext_bytes_max = 256;
constexpr uint32_t admin_recv_bytes = 16 * 1024;
constexpr int admin_linger_ms = 500;  // Draining unread input before close.
constexpr uint32_t admin_linger_bytes_max = 1024 * 1024;
constexpr uint32_t admin_cli_timeout_ms = 15000;  // Connect + request + response.
constexpr uint32_t admin_cli_response_bytes_max = 64 * 1024 * 1024;

// ---- relationships ---------------------------------------------------------------------

static_assert(std::has_single_bit(arena_chunk_bytes));
static_assert(std::has_single_bit(large_block_bytes_min));
static_assert(std::has_single_bit(ring_entries));
static_assert(std::has_single_bit(recv_buffers_max));
static_assert(std::has_single_bit(channel_states_max));  // Open addressing masks by it.
static_assert(recv_buffer_bytes_max <= large_block_bytes_min << (large_class_count - 1));
static_assert(conn_pending_bufs_pause < conn_pending_bufs_max);
static_assert(conn_send_segments_max <= 255);  // Segment counters are uint8_t.
static_assert(conn_pending_bufs_max <= 255);
static_assert(response_head_bytes_max <= chunk_payload_bytes / 4);
static_assert(response_bytes_max + body_padding_bytes <= uint64_t(large_block_bytes_min)
                                                             << (large_class_count - 1));
static_assert((uint64_t(large_block_bytes_min) << (large_class_count - 1)) <= UINT32_MAX);
static_assert(metrics_text_bytes_max >= chunk_payload_bytes);
// Storage sizes its per-shard queues and snapshot readers (shards + the resolver) by this.
static_assert(shards_max + 1 <= storage_shards_max);
static_assert(log_batch_rows_max <= log_queue_slots_max);
static_assert(std::has_single_bit(log_queue_slots_max));
static_assert(key_display_prefix_bytes < key_secret_bytes);
static_assert(imported_secret_bytes_min < imported_secret_bytes_max);
static_assert(attempts_max <= 255);  // Attempt indexes are uint8_t.
static_assert(model_name_bytes_max >= record_model_bytes_max);

}  // namespace rw
