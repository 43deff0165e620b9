// tests/e2e/node/uploads_sdk_test.mjs — the multipart uploads through the official OpenAI
// Node SDK: audio.transcriptions.create, audio.translations.create and images.edit with a
// file. Run with `node --test` by tests/e2e/proxy_node_sdk_test.cc against a ringway with an
// openai channel on the mock:
//   RINGWAY_BASE_URL     http://127.0.0.1:PORT/v1
//   RINGWAY_API_KEY      the gateway key
// The mock answers what it received (the file part's size and FNV-1a, the model part).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { toFile } from 'openai';

const baseURL = process.env.RINGWAY_BASE_URL;
const apiKey = process.env.RINGWAY_API_KEY;
if (!baseURL || !apiKey) {
  throw new Error('RINGWAY_BASE_URL and RINGWAY_API_KEY must be set');
}

const openai = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60000 });

function fnv1a(bytes) {
  let hash = 0xcbf29ce484222325n;
  for (const byte of bytes) {
    hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash.toString(16).padStart(16, '0');
}

// Bytes of every value, "\r\n--" among them.
function fileBytes(size) {
  const bytes = new Uint8Array(size);
  let state = 7;
  for (let i = 0; i < size; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    bytes[i] = state >>> 16 & 0xff;
  }
  bytes.set([13, 10, 45, 45], Math.floor(size / 2));
  return bytes;
}

test('audio.transcriptions.create uploads the file unchanged (model before file)', async () => {
  const bytes = fileBytes(2 * 1024 * 1024);
  const transcription = await openai.audio.transcriptions.create({
    model: 'gpt-4o-transcribe', file: await toFile(bytes, 'speech.mp3'),
  });
  assert.equal(transcription.text, 'mock transcript');
  assert.equal(transcription.model, 'gpt-4o-transcribe');
  assert.equal(transcription.file_bytes, bytes.length);
  assert.equal(transcription.file_fnv1a, fnv1a(bytes));
  assert.equal(transcription.usage.input_tokens, Math.ceil(bytes.length / 4));
});

test('audio.translations.create with the file first (a small file: inside the window)', async () => {
  const bytes = fileBytes(40000);
  const translation = await openai.audio.translations.create({
    file: await toFile(bytes, 'speech.wav'), model: 'whisper-1',
  });
  assert.equal(translation.model, 'whisper-1');
  assert.equal(translation.file_fnv1a, fnv1a(bytes));
});

test('images.edit uploads the image unchanged', async () => {
  const bytes = fileBytes(500000);
  const edited = await openai.images.edit({
    model: 'gpt-image-1', prompt: 'add a hat', image: await toFile(bytes, 'cat.png', { type: 'image/png' }),
  });
  assert.equal(edited.data.length, 1);
  assert.equal(edited.file_bytes, bytes.length);
  assert.equal(edited.file_fnv1a, fnv1a(bytes));
});

test('a large file before the model part is refused with 400 missing_model', async () => {
  const bytes = fileBytes(1024 * 1024);
  await assert.rejects(
    openai.audio.transcriptions.create({ file: await toFile(bytes, 'big.mp3'), model: 'whisper-1' }),
    (error) => error.status === 400 && /model/.test(error.message));
});
