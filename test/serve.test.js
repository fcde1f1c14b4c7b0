// The static server of `npm run web` (scripts/serve-static.mjs), on loopback: malformed requests
// get 400/404/405 and the server keeps serving; nothing outside its folder is ever served; then a
// seeded fuzz of malformed requests, bounded in count and time. A fuzz failure prints its seed and
// case; `SISN_SERVE_FUZZ_SEED=N` replays from seed N.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveStatic } from '../scripts/serve-static.mjs';
import { mulberry32 } from './mulberry32.js';

const test = suite('serve');
const SECRET = 'SECRET-outside-the-served-folder';
const FILES = { 'index.html': '<!doctype html>index', 'app.js': 'export {};', 'sub/file.txt': 'inside' };
const FUZZ_CASES = 4000;
const FUZZ_SECONDS = 8;
/** @type {string} */
let tmp = '';
/** @type {import('node:http').Server | null} */
let server = null;
let port = 0;

test.before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sisn-serve-'));
  const root = join(tmp, 'root');
  mkdirSync(join(root, 'sub'), { recursive: true });
  for (const [name, text] of Object.entries(FILES)) writeFileSync(join(root, name), text);
  writeFileSync(join(tmp, 'secret.txt'), SECRET);
  mkdirSync(join(tmp, 'root-sibling'));
  writeFileSync(join(tmp, 'root-sibling', 'secret.txt'), SECRET);
  // Symlinks leaving the folder: to a file and to the folder above.
  symlinkSync(join(tmp, 'secret.txt'), join(root, 'leak.txt'));
  symlinkSync(tmp, join(root, 'up'));
  // One staying inside is served.
  symlinkSync(join(root, 'app.js'), join(root, 'alias.js'));
  ({ server } = await serveStatic(root, 0));
  port = /** @type {import('node:net').AddressInfo} */ (server.address()).port;
});

test.after(() => {
  server?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/**
 * Sends `raw` on a new loopback connection and gathers what comes back until the server closes:
 * the status codes of the responses in it, and the whole text. A request the server is still
 * waiting on after 100 ms (incomplete, or kept alive) gets the end of the stream.
 */
/**
 * @param {Buffer} raw
 * @returns {Promise<{ statuses: number[], text: string }>}
 */
function send(raw) {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    /** @type {Buffer[]} */
    const chunks = [];
    const finish = setTimeout(() => socket.end(), 100);
    const giveUp = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within 5 s to ${JSON.stringify(raw.toString('latin1').slice(0, 200))}`));
    }, 5000);
    socket.on('data', (c) => chunks.push(c));
    // A reset (the server dropping a request it cannot parse) counts as the end of the answer.
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(finish);
      clearTimeout(giveUp);
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ statuses: [...text.matchAll(/^HTTP\/1\.[01] (\d{3})/gm)].map((m) => Number(m[1])), text });
    });
    socket.write(raw);
  });
}

/** @param {string} method @param {string} target */
const request = (method, target, headers = 'Host: 127.0.0.1\r\nConnection: close\r\n') =>
  send(Buffer.from(`${method} ${target} HTTP/1.1\r\n${headers}\r\n`, 'latin1'));

/** @param {string} method @param {string} target @param {number} status */
async function assertStatus(method, target, status, what = `${method} ${target}`) {
  const r = await request(method, target);
  assert.equal(r.statuses, [status], `${what}: ${r.text.split('\r\n')[0]}`);
  assert.not.ok(r.text.includes(SECRET), `${what} served the secret`);
  return r;
}

test('a malformed percent-escape is a 400, and the server keeps serving', async () => {
  await assertStatus('GET', '/%', 400);
  await assertStatus('GET', '/%zz', 400);
  await assertStatus('GET', '/%c0%ae%c0%ae/secret.txt', 400);
  const r = await assertStatus('GET', '/', 200);
  assert.ok(r.text.endsWith(FILES['index.html']));
  await assertStatus('GET', '/sub/file.txt?x=%', 200);
});

test('nothing outside the folder: dot segments, encoded slashes and backslashes, NUL, symlinks', async () => {
  for (const target of [
    '/../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2E%2E/secret.txt',
    '/.%2e/secret.txt',
    '/..%2fsecret.txt',
    '/%2e%2e%2fsecret.txt',
    '/sub/..%2f..%2fsecret.txt',
    '/..%5csecret.txt',
    '/..\\secret.txt',
    '/sub\\..\\..\\secret.txt',
    '/index.html%00.js',
    '/%00',
    '/./index.html',
    '//secret.txt',
    '/sub//file.txt',
    '/../root-sibling/secret.txt',
  ])
    await assertStatus('GET', target, 400);
  for (const target of ['/leak.txt', '/up/secret.txt', '/up/root-sibling/secret.txt', '/sub', '/missing', '/sub/'])
    await assertStatus('GET', target, 404);
  for (const target of ['http://127.0.0.1/index.html', '*']) await assertStatus('GET', target, 400);
  // Symlinks whose target is inside the folder are served.
  const alias = await assertStatus('GET', '/alias.js', 200);
  assert.ok(alias.text.endsWith(FILES['app.js']), 'a symlink inside the folder is served');
  await assertStatus('GET', '/up/root/index.html', 200);
  await assertStatus('GET', '/sub/file%2Etxt', 200);
});

test('only GET and HEAD: others are 405 with Allow', async () => {
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND']) {
    const r = await assertStatus(method, '/index.html', 405);
    assert.match(r.text, /\r\nallow: GET, HEAD\r\n/i, method);
  }
  const head = await assertStatus('HEAD', '/app.js', 200);
  assert.match(head.text, /\r\ncontent-length: 10\r\n/i);
  assert.ok(head.text.endsWith('\r\n\r\n'), 'HEAD has no body');
});

// The fuzz: requests built from pieces that have broken servers (dot segments in every encoding,
// bad escapes, NUL, backslashes, odd methods and versions, bad headers and line ends), with random
// byte mutations on top.
const NAMES = [
  'index.html',
  'app.js',
  'alias.js',
  'sub',
  'file.txt',
  'leak.txt',
  'up',
  'root',
  'root-sibling',
  'secret.txt',
];
const TRICKS = [
  ...['..', '.', '%2e%2e', '%2E.', '.%2e', '%2f', '%5c', '%5C..', '\\..', '%00', '%', '%2', '%zz', '%c0%ae', '%ff'],
  ...['%e2%80%ae', '', '~', '%7e', 'é', ';', '?', '#', '?a=%', 'a'.repeat(300)],
];
const METHODS = [
  'GET',
  'GET',
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'OPTIONS',
  'TRACE',
  'CONNECT',
  'get',
  'G ET',
  '',
];
const VERSIONS = ['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.', 'HTTX/1.1', ''];
const HEADERS = [
  'Host: 127.0.0.1',
  'Content-Length: 5',
  'Content-Length: -1',
  'Transfer-Encoding: chunked',
  'X: \u0000',
  'Bad Header',
  ': empty name',
  `X-Long: ${'b'.repeat(2000)}`,
];

/** Request `seed` of the fuzz: half well-formed HTTP with a hostile path, half broken HTTP too. */
/** @param {number} seed */
function fuzzCase(seed) {
  const next = mulberry32(seed);
  /** @param {string[]} list */
  const pick = (list) => list[Math.floor(next() * list.length)];
  const wellFormed = next() < 0.5;
  const segments = Array.from({ length: 1 + Math.floor(next() * 5) }, () => pick(next() < 0.6 ? NAMES : TRICKS));
  const target = next() < 0.05 ? pick(['*', 'http://127.0.0.1/index.html', 'index.html']) : `/${segments.join('/')}`;
  // Host (Node refuses HTTP/1.1 without it) and Connection: close (so that most answers end
  // without waiting on the stream's end) first.
  const headers = ['Host: 127.0.0.1', 'Connection: close'];
  if (wellFormed) {
    const method = pick(['GET', 'GET', 'GET', 'HEAD', 'POST', 'DELETE']);
    return Buffer.from(
      `${method} ${target} ${pick(['HTTP/1.1', 'HTTP/1.0'])}\r\n${headers.join('\r\n')}\r\n\r\n`,
      'latin1',
    );
  }
  headers.push(...Array.from({ length: Math.floor(next() * 4) }, () => pick(HEADERS)));
  const eol = next() < 0.2 ? '\n' : '\r\n';
  let text = `${pick(METHODS)} ${target} ${pick(VERSIONS)}${eol}${headers.map((h) => h + eol).join('')}${eol}`;
  if (next() < 0.2) text += 'hello';
  const bytes = Buffer.from(text, 'latin1');
  const flips = next() < 0.5 ? 1 + Math.floor(next() * 3) : 0;
  for (let i = 0; i < flips; i++) bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
  return bytes;
}

test(`fuzz: up to ${FUZZ_CASES} seeded malformed requests in ${FUZZ_SECONDS} s`, async () => {
  const first = Number(process.env.SISN_SERVE_FUZZ_SEED ?? 1);
  const lengths = new Set(Object.values(FILES).map((text) => text.length));
  const ALLOWED = new Set([200, 400, 404, 405, 414, 431, 505]);
  const deadline = Date.now() + FUZZ_SECONDS * 1000;
  let done = 0;
  // 8 connections at a time.
  /** @param {number} lane */
  const worker = async (lane) => {
    for (let seed = first + lane; seed < first + FUZZ_CASES && Date.now() < deadline; seed += 8) {
      const raw = fuzzCase(seed);
      const request = JSON.stringify(raw.toString('latin1'));
      const where = `seed ${seed} (SISN_SERVE_FUZZ_SEED=${seed} replays it), request ${request}`;
      const r = await send(raw);
      assert.not.ok(r.text.includes(SECRET), `served the secret: ${where}`);
      for (const s of r.statuses) assert.ok(ALLOWED.has(s), `status ${s}: ${where}`);
      if (r.statuses[0] === 200) {
        const length = Number(/\r\ncontent-length: (\d+)\r\n/i.exec(r.text)?.[1]);
        assert.ok(lengths.has(length), `200 for ${length} bytes, no served file's size: ${where}`);
      }
      done++;
    }
  };
  await Promise.all(Array.from({ length: 8 }, (_, lane) => worker(lane)));
  assert.ok(done >= Math.min(FUZZ_CASES, 500), `only ${done} requests in ${FUZZ_SECONDS} s`);
  // Still serving.
  const r = await assertStatus('GET', '/index.html', 200);
  assert.ok(r.text.endsWith(FILES['index.html']));
  assert.is(readFileSync(join(tmp, 'secret.txt'), 'utf8'), SECRET);
});

test.run();
