// tests/e2e/node/translate_openai_sdk_test.mjs — the official OpenAI Node SDK against an
// Anthropic channel: ringway translates Chat Completions to Messages and the answers back
// (proxy/translate.h). Run with `node --test` by tests/e2e/proxy_node_sdk_test.cc, which
// passes RINGWAY_BASE_URL (http://127.0.0.1:PORT/v1), RINGWAY_API_KEY and MOCK_STATS_URL.
// The mock's tool behaviour is described in translate_anthropic_sdk_test.mjs.
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
const model = 'claude-sonnet-4';
const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello.' }];
const tools = [{
  type: 'function',
  function: {
    name: 'lookup', description: 'Looks a word up',
    parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] },
  },
}];

async function lastUpstreamRequest() {
  const stats = await (await fetch(mockStatsURL)).json();
  return { path: stats.last_request.path, body: JSON.parse(stats.last_request.body) };
}

test('chat.completions.create, whole, reaches /v1/messages and comes back a ChatCompletion', async () => {
  const completion = await client.chat.completions.create({ model, messages, stop: 'END' });
  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.choices[0].message.role, 'assistant');
  assert.equal(completion.choices[0].message.content, 'aaaabbbbcccc');
  assert.equal(completion.choices[0].finish_reason, 'stop');
  assert.equal(completion.usage.completion_tokens, 3);
  assert.equal(completion.usage.total_tokens,
    completion.usage.prompt_tokens + completion.usage.completion_tokens);
  const upstream = await lastUpstreamRequest();
  assert.equal(upstream.path, '/v1/messages');
  assert.equal(upstream.body.max_tokens, 1234, 'RINGWAY_ANTHROPIC_MAX_TOKENS filled it');
  assert.deepEqual(upstream.body.system, [{ type: 'text', text: 'Be brief.' }]);
  assert.deepEqual(upstream.body.stop_sequences, ['END']);
  assert.deepEqual(upstream.body.messages, [{ role: 'user', content: [{ type: 'text', text: 'Say hello.' }] }]);
});

test('a stream, chunk by chunk, with the usage chunk asked for', async () => {
  const stream = await client.chat.completions.create({
    model, messages, max_tokens: 50, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    if (chunk.usage) usage = chunk.usage;
    if (chunk.choices.length > 0) {
      text += chunk.choices[0].delta.content ?? '';
      finish = chunk.choices[0].finish_reason ?? finish;
    }
  }
  assert.equal(text, 'aaaabbbbcccc');
  assert.equal(finish, 'stop');
  assert.ok(usage, 'the final usage chunk arrived');
  assert.equal(usage.completion_tokens, 3);
  assert.ok(chunks >= 5);
  const upstream = await lastUpstreamRequest();
  assert.equal(upstream.body.max_tokens, 50);
  assert.equal(upstream.body.stream, true);
});

test('a stream without stream_options has no usage chunk', async () => {
  const stream = await client.chat.completions.create({ model, messages, stream: true });
  for await (const chunk of stream) {
    assert.equal(chunk.choices.length, 1, 'every chunk has a choice');
  }
});

async function toolRoundTrip(stream) {
  const ask = { model, messages, tools, tool_choice: 'required' };
  let message;
  if (stream) {
    const runner = client.chat.completions.stream(ask);
    const completion = await runner.finalChatCompletion();
    message = completion.choices[0].message;
    assert.equal(completion.choices[0].finish_reason, 'tool_calls');
  } else {
    const completion = await client.chat.completions.create(ask);
    message = completion.choices[0].message;
    assert.equal(completion.choices[0].finish_reason, 'tool_calls');
  }
  assert.equal(message.tool_calls.length, 1);
  const call = message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'lookup');
  assert.deepEqual(JSON.parse(call.function.arguments), { q: 'mock' });
  let upstream = await lastUpstreamRequest();
  assert.deepEqual(upstream.body.tool_choice, { type: 'any' });
  assert.equal(upstream.body.tools[0].name, 'lookup');

  const answer = {
    model, tools,
    messages: [...messages, { role: 'assistant', content: null, tool_calls: message.tool_calls },
      { role: 'tool', tool_call_id: call.id, content: 'found' }],
  };
  const second = stream
    ? await client.chat.completions.stream(answer).finalChatCompletion()
    : await client.chat.completions.create(answer);
  assert.equal(second.choices[0].finish_reason, 'stop');
  assert.equal(second.choices[0].message.content, 'aaaabbbbcccc');
  upstream = await lastUpstreamRequest();
  assert.deepEqual(upstream.body.messages[1].content[0],
    { type: 'tool_use', id: call.id, name: 'lookup', input: { q: 'mock' } });
  assert.deepEqual(upstream.body.messages[2].content[0],
    { type: 'tool_result', tool_use_id: call.id, content: [{ type: 'text', text: 'found' }] });
}

test('a tool round trip, whole', async () => { await toolRoundTrip(false); });
test('a tool round trip, streamed (tool-call argument deltas from input_json_delta)', async () => {
  await toolRoundTrip(true);
});

test('a field Messages has no equivalent for is a 400 naming it', async () => {
  await assert.rejects(
    client.chat.completions.create({ model, messages, logprobs: true }),
    (error) => {
      assert.ok(error instanceof OpenAI.BadRequestError, `${error}`);
      assert.match(error.message, /logprobs/);
      return true;
    });
});
