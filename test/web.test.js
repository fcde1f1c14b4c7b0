// The web app in headless Chromium (WebGPU on its SwiftShader adapter): the built page upscales a
// bundled sample face through its own file input, and the PNG behind its <a download> matches the
// Node engine's output for the same weights and image.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';
import { buildWeb } from '../scripts/build-web.mjs';
import { serveStatic } from '../scripts/serve-static.mjs';
import { loadSisn, readImage, decodeImage, encodePng, imresize, psnr } from '../dist/index.js';
import { withGpu } from './helpers.js';

const test = suite('web');
const ctx = withGpu(test);
const root = fileURLToPath(new URL('..', import.meta.url));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const tmp = mkdtempSync(join(tmpdir(), 'sisn-web-'));
let server;
let url;
let browser;
let page;

test.before(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `no Chromium at ${CHROMIUM}: run \`node scripts/ensure-adapter.mjs\` (installs Debian's chromium as root) or ` +
        `set CHROMIUM`,
    );
  const { outDir } = await buildWeb(join(tmp, 'site'));
  ({ server, url } = await serveStatic(outDir, 0));
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // The network is closed: nothing may phone home; WebGPU on a CPU needs the unsafe flag.
    args: [
      '--no-sandbox',
      '--enable-unsafe-webgpu',
      `--user-data-dir=${join(tmp, 'profile')}`,
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
      '--disable-dev-shm-usage',
    ],
  });
  page = await browser.newPage();
  page.setDefaultTimeout(180000);
  await page.goto(url);
});

test.after(async () => {
  await browser?.close();
  server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** Picks `file` and `scale` on the page; resolves to the PNG bytes behind the download link and the page's time. */
async function upscaleInPage(file, scale) {
  await page.evaluate(() => document.querySelector('#download-row').replaceChildren());
  await page.select('#scale', String(scale));
  const input = await page.$('input[type=file]');
  await input.uploadFile(file);
  const link = await page.waitForFunction(
    () => document.querySelector('a[download]') || document.querySelector('#error:not([hidden])')?.textContent,
  );
  const failure = await link.evaluate((v) => (typeof v === 'string' ? v : null));
  if (failure) throw new Error(`the page reported: ${failure}`);
  const base64 = await page.evaluate(async () => {
    const bytes = new Uint8Array(await (await fetch(document.querySelector('a[download]').href)).arrayBuffer());
    let text = '';
    for (const b of bytes) text += String.fromCharCode(b);
    return btoa(text);
  });
  const ms = Number(await page.$eval('#status', (el) => el.dataset.ms));
  return { png: decodeImage(new Uint8Array(Buffer.from(base64, 'base64')), 'the downloaded PNG'), ms };
}

async function nodeUpscale(image, scale, options) {
  const model = loadSisn(ctx.gpu, join(root, 'weights', `sisn-x${scale}-celeba.safetensors`));
  try {
    return await model.upscale(image, options);
  } finally {
    model.dispose();
  }
}

function assertMatches(browserImage, nodeImage, what) {
  assert.is(browserImage.width, nodeImage.width, `${what}: width`);
  assert.is(browserImage.height, nodeImage.height, `${what}: height`);
  assert.is(browserImage.channels, nodeImage.channels, `${what}: channels`);
  const db = psnr(browserImage, nodeImage);
  assert.ok(db >= 45, `${what}: PSNR ${db.toFixed(2)} dB between the browser's and Node's result (want >= 45)`);
  return db;
}

test('the page names a WebGPU adapter and upscales a sample face x4 as the Node engine does', async () => {
  const sample = join(root, 'samples/009510.jpg');
  const { png, ms } = await upscaleInPage(sample, 4);
  const db = assertMatches(png, await nodeUpscale(readImage(sample), 4), 'x4');
  const adapter = await page.$eval('#adapter', (el) => el.textContent);
  assert.match(adapter, /WebGPU adapter: \S/);
  console.log(
    `  browser x4 of 89x109: ${ms} ms (first run, pipelines compiled), PSNR vs Node ${db.toFixed(1)} dB; ${adapter}`,
  );
});

test('x8 in tiles (?tile=16) through the same input, on a face downscaled by 4', async () => {
  // A small LR face keeps the x8 run short on a CPU adapter; small tiles exercise the blending.
  await page.goto(`${url}?tile=16`);
  const face = readImage(join(root, 'samples/009512.jpg'));
  const small = imresize(face.data, face.height, face.width, 3, 1, 4, 'matlab');
  const lr = { width: small.width, height: small.height, channels: 3, data: Uint8Array.from(small.data) };
  const file = join(tmp, 'face-lr.png');
  writeFileSync(file, encodePng(lr));
  const { png, ms } = await upscaleInPage(file, 8);
  const db = assertMatches(png, await nodeUpscale(lr, 8, { maxTile: 16 }), 'x8');
  console.log(`  browser x8 of ${lr.width}x${lr.height}: ${ms} ms, PSNR vs Node ${db.toFixed(1)} dB`);
});

test.run();
