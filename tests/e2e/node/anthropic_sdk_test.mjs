// tests/e2e/node/anthropic_sdk_test.mjs — ringway through the official Anthropic Node SDK
// against an anthropic channel on the mock, the way applications use it. Run with
// `node --test` by tests/e2e/proxy_node_sdk_test.cc, which starts the mock upstream and
// ringway, creates keys and the channel, and passes:
//   RINGWAY_BASE_URL   http://127.0.0.1:PORT (the SDK appends /v1/messages)
//   RINGWAY_API_KEY    the gateway key (sk-rw-...)
//   RINGWAY_SPENT_KEY  a gateway key whose quota is used up
//   RINGWAY_METRICS    http://127.0.0.1:PORT/metrics
//   MOCK_STATS_URL     http://127.0.0.1:MOCKPORT/__mock/stats
//   UPSTREAM_KEY       the channel's upstream key (the mock must see it, never ours)
// The mock is steered through the body member x_mock (the SDK sends unknown params as-is).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';

const baseURL = process.env.RINGWAY_BASE_URL;
const apiKey = process.env.RINGWAY_API_KEY;
const spentKey = process.env.RINGWAY_SPENT_KEY;
const metricsURL = process.env.RINGWAY_METRICS;
const mockStatsURL = process.env.MOCK_STATS_URL;
const upstreamKey = process.env.UPSTREAM_KEY;
if (!baseURL || !apiKey || !spentKey || !metricsURL || !mockStatsURL || !upstreamKey) {
  throw new Error('RINGWAY_BASE_URL, RINGWAY_API_KEY, RINGWAY_SPENT_KEY, RINGWAY_METRICS, ' +
    'MOCK_STATS_URL and UPSTREAM_KEY must be set');
}

// No SDK retries unless a test asks: a retried request would hide a gateway failure.
const client = new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
const model = 'claude-sonnet-4';
const messages = [{ role: 'user', content: 'Say hello to the gateway.' }];

async function mockStats() {
  const response = await fetch(mockStatsURL);
  assert.equal(response.status, 200);
  return response.json();
}

async function metric(name) {
  const text = await (await fetch(metricsURL)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(name + ' ') || line.startsWith(name + '{')) sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

test('messages.create, whole', async () => {
  const message = await client.messages.create({
    model, max_tokens: 64, messages, x_mock: { chunks: 4 },
  });
  assert.equal(message.type, 'message');
  assert.equal(message.content[0].text, 'aaaabbbbccccdddd');
  assert.equal(message.stop_reason, 'end_turn');
  assert.equal(message.usage.output_tokens, 4);
  assert.match(String(message._request_id), /^req_mock/, 'the provider request-id is relayed');
  const stats = await mockStats();
  assert.equal(stats.last_request.headers['x-api-key'], upstreamKey);
  assert.ok(!JSON.stringify(stats).includes(apiKey), 'the gateway key reached the upstream');
});

test('messages.create({stream: true}) and messages.stream()', async () => {
  const stream = await client.messages.create({
    model, max_tokens: 64, messages, stream: true, x_mock: { chunks: 3, 'split-bytes': 7 },
  });
  const types = [];
  let text = '';
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === 'content_block_delta') text += event.delta.text;
  }
  assert.equal(types[0], 'message_start');
  assert.equal(types.at(-1), 'message_stop');
  assert.equal(text, 'aaaabbbbcccc');

  const helper = client.messages.stream({ model, max_tokens: 64, messages, x_mock: { chunks: 2 } });
  const final = await helper.finalMessage();
  assert.equal(final.content[0].text, 'aaaabbbb');
  assert.equal(final.usage.output_tokens, 2);
});

test('a stream cut by the upstream raises in the SDK (event: error)', async () => {
  const stream = await client.messages.create({
    model, max_tokens: 64, messages, stream: true,
    x_mock: { chunks: 6, fault: 'reset', 'fault-after': 4 },
  });
  let text = '';
  await assert.rejects(async () => {
    for await (const event of stream) {
      if (event.type === 'content_block_delta') text += event.delta.text;
    }
  }, (error) => {
    assert.ok(error instanceof Anthropic.APIError, `not an APIError: ${error?.constructor?.name} ${error}`);
    assert.match(String(error.message), /upstream connection lost/);
    return true;
  });
  assert.equal(text, 'aaaa', 'the content before the cut was delivered');
});

test('messages.countTokens passes through to the anthropic channel', async () => {
  const counted = await client.messages.countTokens({ model, messages });
  assert.ok(Number.isInteger(counted.input_tokens) && counted.input_tokens > 0, `${JSON.stringify(counted)}`);
  const stats = await mockStats();
  assert.equal(stats.last_request.path, '/v1/messages/count_tokens');
});

test('a bad gateway key is an AuthenticationError in Anthropic\'s shape', async () => {
  const stranger = new Anthropic({ baseURL, apiKey: 'sk-rw-not-a-real-key-0000000000000000', maxRetries: 0 });
  await assert.rejects(
    stranger.messages.create({ model, max_tokens: 8, messages }),
    (error) => {
      assert.ok(error instanceof Anthropic.AuthenticationError, `${error}`);
      assert.equal(error.status, 401);
      assert.equal(error.error.type, 'error');
      assert.equal(error.error.error.type, 'authentication_error');
      return true;
    });
});

test('a spent quota is not retried even with retries on (x-should-retry: false)', async () => {
  const spent = new Anthropic({ baseURL, apiKey: spentKey, maxRetries: 3 });
  const before = await metric('ringway_limited_total');
  const started = Date.now();
  await assert.rejects(
    spent.messages.create({ model, max_tokens: 8, messages }),
    (error) => {
      assert.ok(error instanceof Anthropic.RateLimitError, `${error}`);
      assert.equal(error.error.error.type, 'rate_limit_error');
      return true;
    });
  assert.equal(await metric('ringway_limited_total') - before, 1, 'the SDK retried');
  assert.ok(Date.now() - started < 5000);
});
