// tests/e2e/node/translate_responses_sdk_test.mjs — the official OpenAI Node SDK's Responses
// API (client.responses) against an openai-compatible (chat-only) channel: ringway
// translates the request to Chat Completions and the answer and stream back
// (proxy/translate_responses.h). Run with `node --test` by tests/e2e/proxy_node_sdk_test.cc,
// which passes RINGWAY_BASE_URL (http://127.0.0.1:PORT/v1), RINGWAY_API_KEY and
// MOCK_STATS_URL. The mock answers a request with tools whose last message is not a tool
// result with a call of the first tool, arguments {"q":"mock"}; otherwise 3 deltas "aaaa",
// "bbbb", "cccc".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = process.env.RINGWAY_BASE_URL;
const apiKey = process.env.RINGWAY_API_KEY;
const mockStatsURL = process.env.MOCK_STATS_URL;
if (!baseURL || !apiKey || !mockStatsURL) {
  throw new Error('RINGWAY_BASE_URL, RINGWAY_API_KEY and MOCK_STATS_URL must be set');
}

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
const model = 'local-llama';
const tools = [{
  type: 'function', name: 'lookup', description: 'Looks a word up', strict: false,
  parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] },
}];

async function lastUpstreamRequest() {
  const stats = await (await fetch(mockStatsURL)).json();
  return { path: stats.last_request.path, body: JSON.parse(stats.last_request.body) };
}

test('responses.create, whole, reaches /v1/chat/completions and comes back a Response', async () => {
  const response = await client.responses.create({
    model, instructions: 'Be brief.', input: 'Say hello.', max_output_tokens: 64, store: false,
  });
  assert.equal(response.object, 'response');
  assert.equal(response.status, 'completed');
  assert.equal(response.output_text, 'aaaabbbbcccc');
  assert.equal(response.output.length, 1);
  assert.equal(response.output[0].type, 'message');
  assert.equal(response.usage.output_tokens, 3);
  assert.ok(response.usage.input_tokens > 0);
  assert.equal(response.usage.total_tokens, response.usage.input_tokens + 3);
  const upstream = await lastUpstreamRequest();
  assert.equal(upstream.path, '/v1/chat/completions');
  assert.equal(upstream.body.max_tokens, 64);
  assert.deepEqual(upstream.body.messages, [
    { role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello.' }]);
});

test('responses.create({stream: true}) and responses.stream(), event by event', async () => {
  const stream = await client.responses.create({ model, input: 'Say hello.', stream: true });
  const types = [];
  let text = '';
  let completed = null;
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === 'response.output_text.delta') text += event.delta;
    if (event.type === 'response.completed') completed = event.response;
  }
  assert.deepEqual(types, ['response.created', 'response.in_progress',
    'response.output_item.added', 'response.content_part.added', 'response.output_text.delta',
    'response.output_text.delta', 'response.output_text.delta', 'response.output_text.done',
    'response.content_part.done', 'response.output_item.done', 'response.completed']);
  assert.equal(text, 'aaaabbbbcccc');
  assert.equal(completed.usage.output_tokens, 3, 'the usage chunk became response.completed.usage');
  assert.equal(completed.output[0].content[0].text, 'aaaabbbbcccc');
  const upstream = await lastUpstreamRequest();
  assert.deepEqual(upstream.body.stream_options, { include_usage: true });

  const final = await client.responses.stream({ model, input: 'Say hello.' }).finalResponse();
  assert.equal(final.output_text, 'aaaabbbbcccc');
  assert.equal(final.status, 'completed');
});

async function toolRoundTrip(stream) {
  const input = [{ role: 'user', content: 'Look up "mock".' }];
  const ask = { model, input, tools, tool_choice: 'required', parallel_tool_calls: false };
  const first = stream ? await client.responses.stream(ask).finalResponse()
    : await client.responses.create(ask);
  const call = first.output.find((item) => item.type === 'function_call');
  assert.ok(call, JSON.stringify(first.output));
  assert.equal(call.name, 'lookup');
  assert.deepEqual(JSON.parse(call.arguments), { q: 'mock' });
  let upstream = await lastUpstreamRequest();
  assert.equal(upstream.body.tool_choice, 'required');
  assert.equal(upstream.body.parallel_tool_calls, false);
  assert.equal(upstream.body.tools[0].function.name, 'lookup');

  const answer = {
    model, tools,
    input: [...input, { type: 'function_call', call_id: call.call_id, name: call.name,
      arguments: call.arguments },
    { type: 'function_call_output', call_id: call.call_id, output: 'found' }],
  };
  const second = stream ? await client.responses.stream(answer).finalResponse()
    : await client.responses.create(answer);
  assert.equal(second.output_text, 'aaaabbbbcccc');
  upstream = await lastUpstreamRequest();
  const assistant = upstream.body.messages[1];
  assert.equal(assistant.tool_calls[0].id, call.call_id);
  assert.deepEqual(JSON.parse(assistant.tool_calls[0].function.arguments), { q: 'mock' });
  assert.deepEqual(upstream.body.messages[2],
    { role: 'tool', tool_call_id: call.call_id, content: 'found' });
}

test('a tool round trip, whole', async () => { await toolRoundTrip(false); });
test('a tool round trip, streamed (function_call_arguments deltas)', async () => {
  await toolRoundTrip(true);
});

test('a built-in tool or stored state is a 400 naming it', async () => {
  for (const [body, name] of [
    [{ tools: [{ type: 'web_search' }] }, /web_search/],
    [{ previous_response_id: 'resp_1' }, /previous_response_id/],
    [{ store: true }, /store/],
  ]) {
    await assert.rejects(client.responses.create({ model, input: 'x', ...body }), (error) => {
      assert.ok(error instanceof OpenAI.BadRequestError, `${error}`);
      assert.equal(error.code, 'unsupported_parameter');
      assert.match(error.message, name);
      return true;
    });
  }
});
