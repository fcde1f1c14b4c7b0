// The web app: a face photo in, SISN x4 or x8 out, in a compare view against bicubic upsampling
// beside the LR input (compare.js). Everything runs in this tab on the user's GPU; the shipped
// weights are fetched once and kept in the Cache API. Contract for tests: one <input type="file">
// takes the face; when the result is ready an <a download> whose href is the SISN PNG appears.
//
// Query parameters: `?tile=N` caps the LR tile side, as `sisn upscale --tile N` does (by default
// the adapter's limits decide); `?featureLevel=compatibility` asks for WebGPU's compatibility mode
// (OpenGL ES class devices), which the engine also falls back to where the browser offers no core
// adapter; `?featureLevel=core` allows a core adapter only.
import { Gpu, loadSisn, upscale, decodeImage, encodePng, imresize } from './sisn-webgpu.js';
import { CompareView, imageCanvas } from './compare.js';

/**
 * The page's element `id` (index.html has every one this file asks for).
 * @param {string} id
 */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const WEIGHTS_CACHE = 'sisn-weights';
const query = new URLSearchParams(location.search);
const maxTile = Number(query.get('tile')) || undefined;
const featureLevel = /** @type {import('./sisn-webgpu.js').FeatureLevel | undefined} */ (
  query.get('featureLevel') || undefined
);
/** @type {Promise<import('./sisn-webgpu.js').Gpu> | null} */
let gpuReady = null;
/** @type {Map<number, Promise<import('./sisn-webgpu.js').SISN>>} */
const models = new Map();
let latestRun = 0;

/** @param {string} text */
function setStatus(text) {
  $('status').textContent = text;
}

/** @param {string} message */
function showError(message) {
  $('error').textContent = message;
  $('error').hidden = !message;
}

/** @typedef {{ file: string, bytes: number, sha256: string }} WeightsEntry one of manifest.json's (build-web.mjs) */

/**
 * The shipped weights for `entry` (from manifest.json), from the Cache API when fetched before.
 * @param {WeightsEntry} entry
 */
async function fetchWeights(entry) {
  const url = new URL(`weights/${entry.file}?sha256=${entry.sha256}`, location.href).href;
  // The Cache API exists only in secure contexts (https, localhost); elsewhere every visit fetches.
  const cache = 'caches' in self ? await caches.open(WEIGHTS_CACHE) : null;
  let response = await cache?.match(url);
  if (!response) {
    response = await fetch(url);
    if (!response.ok) throw new Error(`cannot fetch ${entry.file}: HTTP ${response.status}`);
    if (cache) {
      await cache.put(url, response.clone());
      // Older versions of the same file are dropped.
      for (const request of await cache.keys())
        if (request.url.split('?')[0] === url.split('?')[0] && request.url !== url) await cache.delete(request);
    }
  }
  return new Uint8Array(await response.arrayBuffer());
}

async function openGpu() {
  const gpu = await Gpu.open({ featureLevel });
  // describe() names the adapter, its optional features and, where it runs in it, compatibility mode.
  $('adapter').textContent = `WebGPU adapter: ${gpu.describe()}`;
  return gpu;
}

/** @param {number} scale */
async function modelFor(scale) {
  if (!models.has(scale)) {
    models.set(
      scale,
      (async () => {
        gpuReady ??= openGpu();
        const gpu = await gpuReady;
        /** @type {unknown} */
        const parsed = await (await fetch('weights/manifest.json', { cache: 'no-cache' })).json();
        const manifest = /** @type {Partial<Record<number, WeightsEntry>>} */ (parsed);
        const entry = manifest[scale];
        if (!entry) throw new Error(`no shipped weights for x${scale}`);
        return loadSisn(gpu, await fetchWeights(entry), entry.file);
      })(),
    );
  }
  try {
    return await /** @type {Promise<import('./sisn-webgpu.js').SISN>} */ (models.get(scale));
  } catch (e) {
    models.delete(scale);
    throw e;
  }
}

/** @type {CompareView | null} */
let compare = null;

function compareView() {
  compare ??= new CompareView({
    viewport: $('viewport'),
    canvas: /** @type {HTMLCanvasElement} */ ($('compare')),
    lrCanvas: /** @type {HTMLCanvasElement} */ ($('lr')),
    slider: /** @type {HTMLInputElement} */ ($('split')),
    zoomText: $('zoom'),
    lrZoomText: $('lr-zoom'),
    zoomIn: $('zoom-in'),
    zoomOut: $('zoom-out'),
    zoomReal: $('zoom-real'),
    zoomFit: $('zoom-fit'),
  });
  return compare;
}

/**
 * @param {import('./sisn-webgpu.js').RgbImage} image
 * @param {number} scale
 */
function bicubic(image, scale) {
  const up = imresize(image.data, image.height, image.width, image.channels, scale, 1, 'matlab');
  return { width: up.width, height: up.height, channels: image.channels, data: Uint8Array.from(up.data) };
}

async function run() {
  const file = /** @type {FileList} */ (/** @type {HTMLInputElement} */ ($('file')).files)[0];
  if (!file) return;
  const run = ++latestRun;
  const scale = Number(/** @type {HTMLSelectElement} */ ($('scale')).value);
  showError('');
  $('download-row').replaceChildren();
  try {
    const image = decodeImage(new Uint8Array(await file.arrayBuffer()), file.name);
    setStatus(`Loading the x${scale} model...`);
    const model = await modelFor(scale);
    if (run !== latestRun) return;
    setStatus(`Upscaling ${image.width}x${image.height} by ${scale}...`);
    const progress = /** @type {HTMLProgressElement} */ ($('progress'));
    progress.value = 0;
    progress.hidden = false;
    const start = performance.now();
    const sr = await upscale(model, image, { maxTile, onProgress: (done, total) => (progress.value = done / total) });
    const ms = performance.now() - start;
    progress.hidden = true;
    if (run !== latestRun) return;
    $('results').hidden = false;
    compareView().show(imageCanvas(image), imageCanvas(bicubic(image, scale)), imageCanvas(sr), scale);
    setStatus(
      `SISN x${scale}: ${image.width}x${image.height} to ${sr.width}x${sr.height} in ${(ms / 1000).toFixed(2)} s`,
    );
    $('status').dataset.ms = ms.toFixed(0);
    const link = document.createElement('a');
    link.download = `${file.name.replace(/\.[^.]*$/, '')}_x${scale}.png`;
    link.href = URL.createObjectURL(
      new Blob([/** @type {Uint8Array<ArrayBuffer>} */ (encodePng(sr))], { type: 'image/png' }),
    );
    link.textContent = `Download the SISN result (${link.download})`;
    $('download-row').replaceChildren(link);
  } catch (e) {
    $('progress').hidden = true;
    if (run === latestRun) {
      setStatus('');
      showError(/** @type {Error} */ (e).message);
    }
  }
}

function start() {
  if (!navigator.gpu) {
    const note = $('no-webgpu');
    note.textContent =
      'This browser has no WebGPU, so the model cannot run here. Use a current Chrome or Edge (113 or later), ' +
      'Safari 26, or Firefox 141 or later on Windows; open the page over https or from localhost; ' +
      'on Linux, Chrome may need chrome://flags/#enable-unsafe-webgpu and a Vulkan driver.';
    note.hidden = false;
    $('controls').hidden = true;
    return;
  }
  // run() shows its own errors on the page: its promise is not waited for.
  $('file').addEventListener('change', () => void run());
  $('scale').addEventListener('change', () => void run());
  const drop = $('drop');
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  document.addEventListener('dragleave', () => drop.classList.remove('over'));
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (!e.dataTransfer?.files.length) return;
    /** @type {HTMLInputElement} */ ($('file')).files = e.dataTransfer.files;
    void run();
  });
}

start();
