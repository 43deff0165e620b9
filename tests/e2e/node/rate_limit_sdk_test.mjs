// tests/e2e/node/rate_limit_sdk_test.mjs — a key's rate limit as the official OpenAI Node
// SDK meets it. Run with `node --test` by tests/e2e/proxy_node_sdk_test.cc, which passes:
//   RINGWAY_BASE_URL     http://127.0.0.1:PORT/v1
//   RINGWAY_LIMITED_KEY  a gateway key with rpm RINGWAY_LIMITED_RPM (and nothing else)
//   RINGWAY_LIMITED_RPM  its rpm: that many requests pass at once, then one per 60/rpm s
// The SDK sees RateLimitError with the x-ratelimit-* headers, and its own retry (which
// reads retry-after-ms / Retry-After) succeeds once the bucket has room again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = process.env.RINGWAY_BASE_URL;
const apiKey = process.env.RINGWAY_LIMITED_KEY;
const rpm = Number(process.env.RINGWAY_LIMITED_RPM);
if (!baseURL || !apiKey || !(rpm > 0)) {
  throw new Error('RINGWAY_BASE_URL, RINGWAY_LIMITED_KEY and RINGWAY_LIMITED_RPM must be set');
}
const messages = [{ role: 'user', content: 'Say hello to the gateway.' }];

test('RateLimitError carries the limit headers; the SDK retry succeeds after the wait', async () => {
  const once = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
  for (let index = 0; index < rpm; index++) {
    const { response } = await once.chat.completions.create({
      model: 'gpt-4o-mini', messages,
    }).withResponse();
    assert.equal(response.headers.get('x-ratelimit-limit-requests'), String(rpm));
    assert.equal(response.headers.get('x-ratelimit-remaining-requests'), String(rpm - 1 - index));
  }
  let waitMs = 0;
  await assert.rejects(
    once.chat.completions.create({ model: 'gpt-4o-mini', messages }),
    (error) => {
      assert.ok(error instanceof OpenAI.RateLimitError, `${error}`);
      assert.equal(error.status, 429);
      assert.equal(error.code, 'rate_limit_exceeded');
      assert.equal(error.headers.get('x-ratelimit-limit-requests'), String(rpm));
      assert.equal(error.headers.get('x-ratelimit-remaining-requests'), '0');
      assert.match(error.headers.get('x-ratelimit-reset-requests'), /^([0-9]+m)?[0-9.]+m?s$/);
      waitMs = Number(error.headers.get('retry-after-ms'));
      assert.ok(waitMs > 0 && waitMs <= 60000 / rpm + 1000, `retry-after-ms ${waitMs}`);
      assert.equal(Number(error.headers.get('retry-after')), Math.ceil(waitMs / 1000));
      assert.equal(error.headers.get('x-should-retry'), null);
      return true;
    });
  // The SDK's own retry: it waits retry-after-ms and then gets through.
  const retrying = new OpenAI({ baseURL, apiKey, maxRetries: 3, timeout: 20000 });
  const started = Date.now();
  const { data: completion, response } = await retrying.chat.completions.create({
    model: 'gpt-4o-mini', messages,
  }).withResponse();
  assert.equal(completion.object, 'chat.completion');
  assert.equal(response.status, 200);
  assert.ok(Date.now() - started >= Math.min(waitMs, 1000) - 200,
    `answered after ${Date.now() - started} ms, before the ${waitMs} ms wait`);
});
