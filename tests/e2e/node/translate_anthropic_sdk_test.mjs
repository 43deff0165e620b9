// tests/e2e/node/translate_anthropic_sdk_test.mjs — the official Anthropic Node SDK against
// an OpenAI channel: ringway translates Messages to Chat Completions and the answers back
// (proxy/translate.h). Run with `node --test` by tests/e2e/proxy_node_sdk_test.cc, which
// passes RINGWAY_BASE_URL (http://127.0.0.1:PORT), RINGWAY_API_KEY and MOCK_STATS_URL. The
// mock answers a request with tools whose last message is not a tool result with a call of
// the first tool, arguments {"q":"mock"}; otherwise 3 deltas "aaaa", "bbbb", "cccc".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';

const baseURL = process.env.RINGWAY_BASE_URL;
const apiKey = process.env.RINGWAY_API_KEY;
const mockStatsURL = process.env.MOCK_STATS_URL;
if (!baseURL || !apiKey || !mockStatsURL) {
  throw new Error('RINGWAY_BASE_URL, RINGWAY_API_KEY and MOCK_STATS_URL must be set');
}

const client = new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
const model = 'gpt-4o-mini';
const messages = [{ role: 'user', content: 'Say hello to the gateway.' }];
const tools = [{
  name: 'lookup', description: 'Looks a word up',
  input_schema: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] },
}];

async function lastUpstreamRequest() {
  const stats = await (await fetch(mockStatsURL)).json();
  return { path: stats.last_request.path, body: JSON.parse(stats.last_request.body) };
}

test('messages.create, whole, reaches /v1/chat/completions and comes back a Message', async () => {
  const message = await client.messages.create({
    model, max_tokens: 64, system: 'Be brief.', messages, stop_sequences: ['END'],
  });
  assert.equal(message.type, 'message');
  assert.equal(message.role, 'assistant');
  assert.equal(message.content.length, 1);
  assert.equal(message.content[0].type, 'text');
  assert.equal(message.content[0].text, 'aaaabbbbcccc');
  assert.equal(message.stop_reason, 'end_turn');
  assert.equal(message.usage.output_tokens, 3);
  assert.ok(message.usage.input_tokens > 0);
  const upstream = await lastUpstreamRequest();
  assert.equal(upstream.path, '/v1/chat/completions');
  assert.equal(upstream.body.max_tokens, 64);
  assert.deepEqual(upstream.body.stop, ['END']);
  assert.deepEqual(upstream.body.messages[0], { role: 'system', content: 'Be brief.' });
});

test('messages.create({stream: true}) and messages.stream(), event by event', async () => {
  const stream = await client.messages.create({ model, max_tokens: 64, messages, stream: true });
  const types = [];
  let text = '';
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === 'content_block_delta') text += event.delta.text;
  }
  assert.deepEqual(types, ['message_start', 'content_block_start', 'content_block_delta',
    'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta',
    'message_stop']);
  assert.equal(text, 'aaaabbbbcccc');
  const upstream = await lastUpstreamRequest();
  assert.deepEqual(upstream.body.stream_options, { include_usage: true });

  const final = await client.messages.stream({ model, max_tokens: 64, messages }).finalMessage();
  assert.equal(final.content[0].text, 'aaaabbbbcccc');
  assert.equal(final.stop_reason, 'end_turn');
  assert.equal(final.usage.output_tokens, 3, 'the usage chunk became message_delta.usage');
});

async function toolRoundTrip(stream) {
  const ask = { model, max_tokens: 64, messages, tools, tool_choice: { type: 'any' } };
  const first = stream ? await client.messages.stream(ask).finalMessage()
    : await client.messages.create(ask);
  assert.equal(first.stop_reason, 'tool_use');
  const call = first.content.find((block) => block.type === 'tool_use');
  assert.ok(call, JSON.stringify(first.content));
  assert.equal(call.name, 'lookup');
  assert.deepEqual(call.input, { q: 'mock' });
  let upstream = await lastUpstreamRequest();
  assert.equal(upstream.body.tool_choice, 'required');
  assert.equal(upstream.body.tools[0].function.name, 'lookup');

  const answer = {
    model, max_tokens: 64, tools,
    messages: [...messages, { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: 'found' }] }],
  };
  const second = stream ? await client.messages.stream(answer).finalMessage()
    : await client.messages.create(answer);
  assert.equal(second.stop_reason, 'end_turn');
  assert.equal(second.content[0].text, 'aaaabbbbcccc');
  upstream = await lastUpstreamRequest();
  const assistant = upstream.body.messages[1];
  assert.equal(assistant.tool_calls[0].id, call.id);
  assert.deepEqual(JSON.parse(assistant.tool_calls[0].function.arguments), { q: 'mock' });
  assert.deepEqual(upstream.body.messages[2], { role: 'tool', tool_call_id: call.id, content: 'found' });
}

test('a tool round trip, whole', async () => { await toolRoundTrip(false); });
test('a tool round trip, streamed (input_json_delta from tool-call argument deltas)', async () => {
  await toolRoundTrip(true);
});

test('a field Chat Completions has no equivalent for is a 400 naming it', async () => {
  await assert.rejects(
    client.messages.create({ model, max_tokens: 8, messages, top_k: 5 }),
    (error) => {
      assert.ok(error instanceof Anthropic.BadRequestError, `${error}`);
      assert.equal(error.error.error.type, 'invalid_request_error');
      assert.match(error.error.error.message, /top_k/);
      return true;
    });
});
