// tests/e2e/node/endpoints_sdk_test.mjs — the passthrough endpoints and SSE keep-alive
// through the official OpenAI and Anthropic Node SDKs. Run with `node --test` by
// tests/e2e/proxy_node_sdk_test.cc against a ringway with RINGWAY_SSE_KEEPALIVE_MS=100, an
// openai channel and an anthropic one on the mock:
//   RINGWAY_BASE_URL     http://127.0.0.1:PORT/v1 (OpenAI SDK)
//   RINGWAY_ROOT_URL     http://127.0.0.1:PORT (Anthropic SDK)
//   RINGWAY_API_KEY      the gateway key
//   RINGWAY_METRICS      http://127.0.0.1:PORT/metrics
//   MOCK_SPEECH_URL      the mock's /v1/audio/speech (the bytes the gateway must relay)
// The mock is steered through the body member x_mock (the SDKs send unknown params as-is).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const baseURL = process.env.RINGWAY_BASE_URL;
const rootURL = process.env.RINGWAY_ROOT_URL;
const apiKey = process.env.RINGWAY_API_KEY;
const metricsURL = process.env.RINGWAY_METRICS;
const mockSpeechURL = process.env.MOCK_SPEECH_URL;
if (!baseURL || !rootURL || !apiKey || !metricsURL || !mockSpeechURL) {
  throw new Error('RINGWAY_BASE_URL, RINGWAY_ROOT_URL, RINGWAY_API_KEY, RINGWAY_METRICS and ' +
    'MOCK_SPEECH_URL must be set');
}

// No SDK retries: a retried request would hide a gateway failure.
const openai = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 30000 });
const anthropic = new Anthropic({ baseURL: rootURL, apiKey, maxRetries: 0, timeout: 30000 });
const messages = [{ role: 'user', content: 'Say hello to the gateway.' }];

async function metric(name) {
  const text = await (await fetch(metricsURL)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

test('images.generate returns the images and their usage', async () => {
  const image = await openai.images.generate({
    model: 'gpt-image-1', prompt: 'a lighthouse', n: 2, x_mock: { 'prompt-tokens': 20, chunks: 5 },
  });
  assert.equal(image.data.length, 2);
  assert.ok(image.data[0].b64_json.length > 0);
  assert.equal(image.usage.input_tokens, 20);
  assert.equal(image.usage.output_tokens, 10);
});

test('moderations.create', async () => {
  const moderation = await openai.moderations.create({
    model: 'omni-moderation-latest', input: ['first', 'second'],
  });
  assert.equal(moderation.results.length, 2);
  assert.equal(moderation.results[0].flagged, false);
});

test('audio.speech.create streams the audio bytes unchanged', async () => {
  const body = {
    model: 'gpt-4o-mini-tts', voice: 'alloy', input: 'Hello.', response_format: 'mp3',
    x_mock: { chunks: 16, 'chunk-text-bytes': 16384 },
  };
  const response = await openai.audio.speech.create(body);
  assert.equal(response.headers.get('content-type'), 'audio/mpeg');
  const audio = Buffer.from(await response.arrayBuffer());
  const direct = await fetch(mockSpeechURL, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  const expected = Buffer.from(await direct.arrayBuffer());
  assert.equal(audio.length, 16 * 16384);
  assert.ok(audio.equals(expected), 'the audio differs from the provider\'s');
});

test('a chat stream behind keep-alive comments reads cleanly', async () => {
  const before = await metric('ringway_sse_keepalives_total');
  const stream = await openai.chat.completions.create({
    model: 'gpt-4o-mini', messages, stream: true, x_mock: { 'first-byte-delay-ms': 800, chunks: 3 },
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'aaaabbbbcccc');
  assert.ok(await metric('ringway_sse_keepalives_total') > before, 'no keep-alive was sent');
});

test('an error after the keep-alive head raises in the OpenAI SDK', async () => {
  const stream = await openai.chat.completions.create({
    model: 'gpt-4o-mini', messages, stream: true,
    x_mock: { 'first-byte-delay-ms': 800, status: 400 },
  });
  await assert.rejects(async () => {
    for await (const chunk of stream) void chunk;
  }, (error) => {
    assert.ok(error instanceof OpenAI.APIError, `not an APIError: ${error?.constructor?.name} ${error}`);
    return true;
  });
});

test('an Anthropic stream behind keep-alive comments reads cleanly', async () => {
  const before = await metric('ringway_sse_keepalives_total');
  const stream = await anthropic.messages.create({
    model: 'claude-sonnet-4', max_tokens: 64, messages, stream: true,
    x_mock: { 'first-byte-delay-ms': 800, chunks: 3 },
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
  assert.ok(await metric('ringway_sse_keepalives_total') > before, 'no keep-alive was sent');
});

test('an error after the keep-alive head raises in the Anthropic SDK (event: error)', async () => {
  const stream = await anthropic.messages.create({
    model: 'claude-sonnet-4', max_tokens: 64, messages, stream: true,
    x_mock: { 'first-byte-delay-ms': 800, status: 529 },
  });
  await assert.rejects(async () => {
    for await (const event of stream) void event;
  }, (error) => {
    assert.ok(error instanceof Anthropic.APIError, `not an APIError: ${error?.constructor?.name} ${error}`);
    return true;
  });
});
