// tests/e2e/node/sdk_test.mjs — ringway through the official OpenAI Node SDK, the way
// applications use it. Run with `node --test` by tests/e2e/proxy_node_sdk_test.cc, which
// starts the mock upstream and ringway, creates a key and a channel, and passes:
//   RINGWAY_BASE_URL   http://127.0.0.1:PORT/v1
//   RINGWAY_API_KEY    the gateway key (sk-rw-...)
//   RINGWAY_SPENT_KEY  a gateway key whose quota is used up
//   RINGWAY_METRICS    http://127.0.0.1:PORT/metrics
//   MOCK_STATS_URL     http://127.0.0.1:MOCKPORT/__mock/stats
//   UPSTREAM_KEY       the channel's upstream key (the mock must see it, never ours)
// The mock is steered through the body member x_mock (the SDK sends unknown params as-is).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = process.env.RINGWAY_BASE_URL;
const apiKey = process.env.RINGWAY_API_KEY;
const mockStatsURL = process.env.MOCK_STATS_URL;
const upstreamKey = process.env.UPSTREAM_KEY;
const spentKey = process.env.RINGWAY_SPENT_KEY;
const metricsURL = process.env.RINGWAY_METRICS;
if (!baseURL || !apiKey || !mockStatsURL || !upstreamKey || !spentKey || !metricsURL) {
  throw new Error('RINGWAY_BASE_URL, RINGWAY_API_KEY, RINGWAY_SPENT_KEY, RINGWAY_METRICS, ' +
    'MOCK_STATS_URL and UPSTREAM_KEY must be set');
}

// No SDK retries: a retried request would hide a gateway failure.
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
const messages = [{ role: 'user', content: 'Say hello to the gateway.' }];

async function mockStats() {
  const response = await fetch(mockStatsURL);
  assert.equal(response.status, 200);
  return response.json();
}

test('chat completion, whole', async () => {
  const { data: completion, response } = await client.chat.completions.create({
    model: 'gpt-4o-mini', messages, x_mock: { chunks: 4 },
  }).withResponse();
  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.choices[0].message.content, 'aaaabbbbccccdddd');
  assert.equal(completion.choices[0].finish_reason, 'stop');
  assert.equal(completion.usage.completion_tokens, 4);
  assert.equal(completion.usage.total_tokens,
    completion.usage.prompt_tokens + completion.usage.completion_tokens);
  // The SDK's _request_id is ringway's x-request-id (which `ringway logs --request` finds);
  // the provider's own id is relayed beside it as x-upstream-request-id.
  assert.match(String(completion._request_id), /^rw-/, 'ringway\'s x-request-id');
  assert.match(String(response.headers.get('x-upstream-request-id')), /^req_mock/,
    'the provider x-request-id is relayed as x-upstream-request-id');
  const stats = await mockStats();
  assert.equal(stats.last_request.headers.authorization, `Bearer ${upstreamKey}`);
  assert.ok(!JSON.stringify(stats).includes(apiKey), 'the gateway key reached the upstream');
});

test('chat completion, streamed with stream_options.include_usage', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini', messages, stream: true,
    stream_options: { include_usage: true }, x_mock: { chunks: 3, 'split-bytes': 9 },
  });
  let text = '';
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.choices.length > 0) text += chunk.choices[0].delta.content ?? '';
    if (chunk.usage) {
      usage = chunk.usage;
      assert.equal(chunk.choices.length, 0, 'the usage chunk carries no choices');
    }
  }
  assert.equal(text, 'aaaabbbbcccc');
  assert.ok(chunks >= 5, `only ${chunks} chunks`);
  assert.ok(usage, 'no usage chunk');
  assert.equal(usage.completion_tokens, 3);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
});

// The loop most applications write: every chunk has choices[0]. The usage chunk ringway
// asks the provider for (to meter the stream) must not reach a client that did not ask.
test('chat completion, streamed without include_usage: every chunk has choices[0]', async () => {
  for (const x_mock of [{ chunks: 4 }, { chunks: 4, 'split-bytes': 5 }]) {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini', messages, stream: true, x_mock,
    });
    let text = '';
    let finish = null;
    for await (const chunk of stream) {
      const delta = chunk.choices[0].delta;
      text += delta.content ?? '';
      finish = chunk.choices[0].finish_reason ?? finish;
      assert.ok(!chunk.usage, 'a usage chunk reached a client that did not ask for it');
    }
    assert.equal(text, 'aaaabbbbccccdddd');
    assert.equal(finish, 'stop');
    const stats = await mockStats();
    assert.equal(stats.last_request.body_json.stream_options.include_usage, true,
      'the gateway still meters the stream');
  }
});

test('chat completion stream helper gives the final message', async () => {
  const runner = client.chat.completions.stream({
    model: 'gpt-4o-mini', messages, x_mock: { chunks: 2 },
  });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].message.content, 'aaaabbbb');
});

test('responses API, streamed with create({stream: true})', async () => {
  const stream = await client.responses.create({
    model: 'gpt-4o-mini', input: 'Write one line.', stream: true, x_mock: { chunks: 3 },
  });
  const types = [];
  let text = '';
  let completed = null;
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === 'response.output_text.delta') text += event.delta;
    if (event.type === 'response.completed') completed = event.response;
  }
  assert.equal(types[0], 'response.created');
  assert.equal(types.at(-1), 'response.completed');
  assert.equal(text, 'aaaabbbbcccc');
  assert.ok(completed, 'no response.completed event');
  assert.equal(completed.usage.output_tokens, 3);
});

test('responses API, responses.stream() helper', async () => {
  const stream = client.responses.stream({
    model: 'gpt-4o-mini', input: 'Write one line.', x_mock: { chunks: 2 },
  });
  let deltas = '';
  stream.on('response.output_text.delta', (event) => { deltas += event.delta; });
  const final = await stream.finalResponse();
  assert.equal(final.output_text, 'aaaabbbb');
  assert.equal(deltas, 'aaaabbbb');
  assert.equal(final.status, 'completed');
});

test('stored responses: retrieve, inputItems.list, delete (then NotFoundError)', async () => {
  const created = await client.responses.create({
    model: 'gpt-4o-mini', input: 'Keep this one.', x_mock: { chunks: 2 },
  });
  assert.match(created.id, /^resp_mock/);
  const retrieved = await client.responses.retrieve(created.id);
  assert.equal(retrieved.id, created.id);
  assert.equal(retrieved.output_text, 'aaaabbbb');
  assert.equal((await mockStats()).last_request.path, `/v1/responses/${created.id}`);
  const items = [];
  for await (const item of client.responses.inputItems.list(created.id, { limit: 5 })) {
    items.push(item);
  }
  assert.equal(items.length, 1);
  assert.equal(items[0].content[0].text, 'Keep this one.');
  await client.responses.delete(created.id);
  await assert.rejects(client.responses.retrieve(created.id), (error) => {
    assert.ok(error instanceof OpenAI.NotFoundError, `${error}`);
    assert.equal(error.status, 404);
    return true;
  });
});

test('embeddings (the SDK asks for base64 and decodes it)', async () => {
  const result = await client.embeddings.create({
    model: 'text-embedding-3-small', input: ['one', 'two'], x_mock: { 'embedding-dims': 12 },
  });
  assert.equal(result.data.length, 2);
  assert.equal(result.data[0].embedding.length, 12);
  assert.ok(result.data[0].embedding.every((value) => Number.isFinite(value)));
  assert.equal(result.usage.total_tokens, result.usage.prompt_tokens);
});

test('models.list', async () => {
  const ids = [];
  for await (const model of client.models.list()) ids.push(model.id);
  assert.ok(ids.includes('gpt-4o-mini'), `models: ${ids.join(', ')}`);
  assert.ok(ids.includes('text-embedding-3-small'), `models: ${ids.join(', ')}`);
});

test('a stream cut by the upstream raises APIError in the SDK', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini', messages, stream: true,
    x_mock: { chunks: 6, fault: 'reset', 'fault-after': 2 },
  });
  let text = '';
  await assert.rejects(async () => {
    for await (const chunk of stream) {
      if (chunk.choices.length > 0) text += chunk.choices[0].delta.content ?? '';
    }
  }, (error) => {
    assert.ok(error instanceof OpenAI.APIError, `not an APIError: ${error?.constructor?.name} ${error}`);
    assert.match(String(error.message), /upstream connection lost/);
    return true;
  });
  assert.equal(text, 'aaaa', 'the content before the cut was delivered');
});

test('a bad gateway key is an AuthenticationError', async () => {
  const stranger = new OpenAI({ baseURL, apiKey: 'sk-rw-not-a-real-key-0000000000000000', maxRetries: 0 });
  await assert.rejects(
    stranger.chat.completions.create({ model: 'gpt-4o-mini', messages }),
    (error) => {
      assert.ok(error instanceof OpenAI.AuthenticationError, `${error}`);
      assert.equal(error.status, 401);
      assert.equal(error.code, 'invalid_api_key');
      return true;
    });
});

test('a spent quota is not retried even with retries on (x-should-retry: false)', async () => {
  const spent = new OpenAI({ baseURL, apiKey: spentKey, maxRetries: 3 });
  const limited = async () => {
    const text = await (await fetch(metricsURL)).text();
    const line = text.split('\n').find((l) => l.startsWith('ringway_limited_total '));
    return Number(line.split(' ').at(-1));
  };
  const before = await limited();
  await assert.rejects(
    spent.chat.completions.create({ model: 'gpt-4o-mini', messages }),
    (error) => {
      assert.ok(error instanceof OpenAI.RateLimitError, `${error}`);
      assert.equal(error.code, 'insufficient_quota');
      assert.equal(error.type, 'insufficient_quota');
      return true;
    });
  assert.equal(await limited() - before, 1, 'the SDK retried');
});
