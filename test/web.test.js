// The web app in headless Chromium: the built page upscales a bundled sample face through its own
// file input, and the PNG behind its <a download> matches the Node engine's output for the same
// weights and image; on Chromium's SwiftShader (a core adapter) and, in WebGPU's compatibility
// mode, on ANGLE's OpenGL ES over lavapipe. The compare view shows the result at real pixels and
// at whole-pixel zoom, bicubic and SISN either side of its line, and pans and zooms.
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
/** @import { RgbImage } from '../dist/index.js' */
/** @import { Page } from 'puppeteer-core' */

const test = suite('web');
const ctx = withGpu(test);
const root = fileURLToPath(new URL('..', import.meta.url));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
// Chromium's WebGPU on ANGLE's OpenGL ES, ANGLE on Vulkan (lavapipe here): compatibility mode only.
const COMPATIBILITY_FLAGS = ['--use-angle=vulkan', '--use-webgpu-adapter=opengles'];
const tmp = mkdtempSync(join(tmpdir(), 'sisn-web-'));
/** @type {import('puppeteer-core').Browser[]} */
const browsers = [];
/** @type {import('node:http').Server | undefined} */
let server;
let url = '';
/** @type {Page} */
let page;

/**
 * A headless Chromium with `flags` and a page of the given size on it.
 * @param {string[]} flags
 * @param {string} profile the profile folder's name under the test's scratch folder
 */
async function openPage(flags, profile) {
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // The network is closed: nothing may phone home; WebGPU on a CPU needs the unsafe flag.
    args: [
      '--no-sandbox',
      '--enable-unsafe-webgpu',
      `--user-data-dir=${join(tmp, profile)}`,
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
      '--disable-dev-shm-usage',
      ...flags,
    ],
    defaultViewport: { width: 1280, height: 900 },
  });
  browsers.push(browser);
  const opened = await browser.newPage();
  opened.setDefaultTimeout(180000);
  return opened;
}

test.before(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `no Chromium at ${CHROMIUM}: run \`node scripts/ensure-adapter.mjs\` (installs Debian's chromium as root) or ` +
        `set CHROMIUM`,
    );
  const { outDir } = await buildWeb(join(tmp, 'site'));
  ({ server, url } = await serveStatic(outDir, 0));
  page = await openPage([], 'profile');
  await page.goto(url);
});

test.after(async () => {
  for (const browser of browsers) await browser.close();
  server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

/**
 * Picks `file` and `scale` on `page`; resolves to the PNG bytes behind the download link and the page's time.
 * @param {Page} page
 * @param {string} file
 * @param {number} scale
 */
async function upscaleInPage(page, file, scale) {
  await page.evaluate(() => /** @type {HTMLElement} */ (document.querySelector('#download-row')).replaceChildren());
  await page.select('#scale', String(scale));
  const input = await page.$('input[type=file]');
  assert.ok(input, 'the page has a file input');
  await input.uploadFile(file);
  const link = await page.waitForFunction(
    () => document.querySelector('a[download]') || document.querySelector('#error:not([hidden])')?.textContent,
  );
  // A download link (an element) or the error's text: the union of handles is read as one.
  const outcome = /** @type {import('puppeteer-core').JSHandle<unknown>} */ (link);
  const failure = await outcome.evaluate((v) => (typeof v === 'string' ? v : null));
  if (failure) throw new Error(`the page reported: ${failure}`);
  const base64 = await page.evaluate(async () => {
    const download = /** @type {HTMLAnchorElement} */ (document.querySelector('a[download]'));
    const bytes = new Uint8Array(await (await fetch(download.href)).arrayBuffer());
    let text = '';
    for (const b of bytes) text += String.fromCharCode(b);
    return btoa(text);
  });
  const ms = Number(await page.$eval('#status', (el) => /** @type {HTMLElement} */ (el).dataset.ms));
  return { png: decodeImage(new Uint8Array(Buffer.from(base64, 'base64')), 'the downloaded PNG'), ms };
}

/**
 * The Node engine's upscale of `image` with the shipped weights for `scale`.
 * @param {RgbImage} image
 * @param {number} scale
 * @param {import('../dist/index.js').UpscaleOptions} [options]
 */
async function nodeUpscale(image, scale, options) {
  const model = loadSisn(ctx.gpu, join(root, 'weights', `sisn-x${scale}-celeba.safetensors`));
  try {
    return await model.upscale(image, options);
  } finally {
    model.dispose();
  }
}

/**
 * Asserts the browser's result is the Node engine's (same size, PSNR >= 45 dB); returns the PSNR.
 * @param {RgbImage} browserImage
 * @param {RgbImage} nodeImage
 * @param {string} what
 */
function assertMatches(browserImage, nodeImage, what) {
  assert.is(browserImage.width, nodeImage.width, `${what}: width`);
  assert.is(browserImage.height, nodeImage.height, `${what}: height`);
  assert.is(browserImage.channels, nodeImage.channels, `${what}: channels`);
  const db = psnr(browserImage, nodeImage);
  assert.ok(db >= 45, `${what}: PSNR ${db.toFixed(2)} dB between the browser's and Node's result (want >= 45)`);
  return db;
}

/**
 * The first test's input and the page's result, which the compare-view test looks at.
 * @type {{ input: RgbImage, png: RgbImage } | null}
 */
let first = null;

test('the page names a WebGPU adapter and upscales a sample face x4 as the Node engine does', async () => {
  const sample = join(root, 'samples/009510.jpg');
  const { png, ms } = await upscaleInPage(page, sample, 4);
  const input = readImage(sample);
  const db = assertMatches(png, await nodeUpscale(input, 4), 'x4');
  first = { input, png };
  const adapter = await page.$eval('#adapter', (el) => el.textContent);
  assert.match(adapter, /WebGPU adapter: \S/);
  console.log(
    `  browser x4 of 89x109: ${ms} ms (first run, pipelines compiled), PSNR vs Node ${db.toFixed(1)} dB; ${adapter}`,
  );
});

// The compare view's state (viewport data attributes) and pixels (device pixels of its canvas).
const view = () =>
  page.$eval('#viewport', (viewport) => {
    const el = /** @type {HTMLElement} */ (viewport);
    const canvas = /** @type {HTMLCanvasElement} */ (el.querySelector('canvas'));
    return {
      zoom: Number(el.dataset.zoom),
      left: Number(el.dataset.left),
      top: Number(el.dataset.top),
      width: canvas.width,
      height: canvas.height,
    };
  });
/** @param {number} value */
const setSplit = (value) =>
  page.$eval(
    '#split',
    (slider, v) => {
      const el = /** @type {HTMLInputElement} */ (slider);
      el.value = String(v);
      el.dispatchEvent(new Event('input'));
    },
    value,
  );
/** @param {string} key */
const press = (key) =>
  page.$eval('#viewport', (el, k) => el.dispatchEvent(new KeyboardEvent('keydown', { key: k, bubbles: true })), key);
/**
 * Fires pointer (or wheel) events on a canvas at device pixel positions: [type, x, y, init].
 * @param {string} selector
 * @param {[string, number, number, PointerEventInit & WheelEventInit][]} events
 */
const fire = (selector, events) =>
  page.$eval(
    selector,
    (canvas, list) => {
      const r = canvas.getBoundingClientRect();
      for (const [type, x, y, init] of list) {
        const at = { clientX: r.left + x, clientY: r.top + y, bubbles: true, cancelable: true, ...init };
        canvas.dispatchEvent(type === 'wheel' ? new WheelEvent(type, at) : new PointerEvent(type, at));
      }
    },
    events,
  );

/**
 * Asserts that the canvas block (x0, y0, w, h) shows `image` with its origin at (left, top), each pixel z x z.
 * @param {string} selector
 * @param {RgbImage} image
 * @param {{ left: number, top: number, zoom: number }} at
 * @param {number[]} block x0, y0, w, h in device pixels
 * @param {string} what
 */
async function assertShows(selector, image, { left, top, zoom }, [x0, y0, w, h], what) {
  const rgba = await page.$eval(
    selector,
    (canvas, [x, y, bw, bh]) =>
      Array.from(
        /** @type {CanvasRenderingContext2D} */ (
          /** @type {HTMLCanvasElement} */ (canvas).getContext('2d')
        ).getImageData(x, y, bw, bh).data,
      ),
    [x0, y0, w, h],
  );
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const ix = Math.floor((x0 + x - left) / zoom);
      const iy = Math.floor((y0 + y - top) / zoom);
      for (let c = 0; c < 3; c++) {
        const shown = rgba[(y * w + x) * 4 + c];
        const expected = image.data[(iy * image.width + ix) * image.channels + c];
        if (shown !== expected)
          assert.unreachable(
            `${what}: device pixel (${x0 + x}, ${y0 + y}) channel ${c} is ${shown}, ` +
              `image pixel (${ix}, ${iy}) is ${expected}`,
          );
      }
    }
}

test('compare view: real pixels, bicubic | SISN either side of the line, whole-pixel zoom, pan, pinch', async () => {
  assert.ok(first, 'the first test upscaled a face');
  const { input, png: sisn } = first;
  const up = imresize(input.data, input.height, input.width, 3, 4, 1, 'matlab');
  /** @type {RgbImage} */
  const bicubic = { width: up.width, height: up.height, channels: 3, data: Uint8Array.from(up.data) };
  // The whole 356x436 result fits the viewport: real pixels, centred.
  let v = await view();
  assert.is(v.zoom, 1);
  assert.ok(v.left > 0 && v.top > 0, `the result is centred (${v.left}, ${v.top})`);
  await setSplit(0);
  await assertShows('#compare', sisn, v, [v.left, v.top, sisn.width, sisn.height], 'SISN at real pixels');
  await setSplit(1000);
  await assertShows('#compare', bicubic, v, [v.left, v.top, sisn.width, sisn.height], 'bicubic at real pixels');
  // At 0.5 the line is in the middle of the canvas: bicubic left of it, SISN right of it.
  await setSplit(500);
  const line = Math.round(v.width / 2);
  const y = v.top + 100;
  await assertShows('#compare', bicubic, v, [line - 40, y, 36, 20], 'bicubic left of the line');
  await assertShows('#compare', sisn, v, [line + 3, y, 36, 20], 'SISN right of the line');
  await setSplit(0);
  // Keys: + zooms in by whole pixels about the centre; arrows pan (the 872-pixel-high result at 2x
  // is taller than the viewport, so it pans vertically); 1 is real pixels, 0 the fitting zoom.
  await press('+');
  v = await view();
  assert.is(v.zoom, 2);
  const centre = [Math.round(v.width / 2) - 10, Math.round(v.height / 2) - 10, 20, 20];
  await assertShows('#compare', sisn, v, centre, 'SISN at 2x');
  await press('ArrowDown');
  const panned = await view();
  assert.is(panned.top, v.top - 48, 'ArrowDown pans by 48 device pixels');
  // The mouse: a drag pans (away from the line, at the canvas's left edge now), the wheel zooms.
  const box = await page.$eval('#compare', (el) => {
    const r = el.getBoundingClientRect();
    return { x: r.left, y: r.top };
  });
  await page.mouse.move(box.x + 600, box.y + 300);
  await page.mouse.down();
  await page.mouse.move(box.x + 600, box.y + 330, { steps: 3 });
  await page.mouse.up();
  assert.is((await view()).top, panned.top + 30, 'a mouse drag pans');
  await fire('#compare', [['wheel', 600, 300, { deltaY: -100 }]]);
  assert.is((await view()).zoom, 3, 'the wheel zooms in');
  await assertShows('#compare', sisn, await view(), centre, 'SISN at 3x');
  await press('1');
  assert.is((await view()).zoom, 1);
  await press('+');
  await press('0');
  assert.is((await view()).zoom, 1, 'the fitting zoom');
  // Beside it, the LR input at the whole zoom that fills its 320-pixel panel (3x for 89 pixels); the
  // box of the region shown lies outside it while the whole result is shown.
  assert.is(await page.$eval('#lr', (el) => /** @type {HTMLCanvasElement} */ (el).width), 3 * input.width);
  await assertShows('#lr', input, { left: 0, top: 0, zoom: 3 }, [90, 120, 60, 60], 'the LR input at 3x');
  // Touch: two fingers moving apart to twice their distance zoom to 2x.
  /** @param {number} id */
  const touch = (id) => ({ pointerId: id, pointerType: 'touch', isPrimary: id === 1 });
  await fire('#compare', [
    ['pointerdown', 550, 300, touch(1)],
    ['pointerdown', 650, 300, touch(2)],
    ['pointermove', 750, 300, touch(2)],
    ['pointerup', 550, 300, touch(1)],
    ['pointerup', 750, 300, touch(2)],
  ]);
  assert.is((await view()).zoom, 2, 'a pinch zooms');
});

test('x8 in tiles (?tile=16) through the same input, on a face downscaled by 4', async () => {
  // A small LR face keeps the x8 run short on a CPU adapter; small tiles exercise the blending.
  await page.goto(`${url}?tile=16`);
  const face = readImage(join(root, 'samples/009512.jpg'));
  const small = imresize(face.data, face.height, face.width, 3, 1, 4, 'matlab');
  /** @type {RgbImage} */
  const lr = { width: small.width, height: small.height, channels: 3, data: Uint8Array.from(small.data) };
  const file = join(tmp, 'face-lr.png');
  writeFileSync(file, encodePng(lr));
  const { png, ms } = await upscaleInPage(page, file, 8);
  const db = assertMatches(png, await nodeUpscale(lr, 8, { maxTile: 16 }), 'x8');
  console.log(`  browser x8 of ${lr.width}x${lr.height}: ${ms} ms, PSNR vs Node ${db.toFixed(1)} dB`);
});

test('compatibility mode (ANGLE, OpenGL ES on lavapipe): the page says so and upscales as Node does', async () => {
  const compat = await openPage(COMPATIBILITY_FLAGS, 'profile-compatibility');
  await compat.goto(`${url}?featureLevel=compatibility`);
  // A test-split face (never seen in training or model selection) the other tests leave alone.
  const sample = join(root, 'samples/009511.jpg');
  const { png, ms } = await upscaleInPage(compat, sample, 4);
  const db = assertMatches(png, await nodeUpscale(readImage(sample), 4), 'x4 in compatibility mode');
  const adapter = await compat.$eval('#adapter', (el) => el.textContent);
  assert.match(adapter, /WebGPU adapter: .*\[compatibility mode, no optional features\]/);
  console.log(`  browser x4 of 89x109 in compatibility mode: ${ms} ms, PSNR vs Node ${db.toFixed(1)} dB; ${adapter}`);
});

test.run();
