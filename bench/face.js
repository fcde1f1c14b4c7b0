// Face throughput for bench/run.js: descriptors per second (face-api's recognizer, batches of 8
// faces from test/fixtures/faces, CPU input preparation and readback included) and detections per
// second (the tiny face detector at its default 416x416 input, one image a pass, decoding included).
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { readImage, loadFaceNets, describeFaces, detectFaces } from '../dist/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Median of `runs` timings (ms) of `fn`, after one warm-up call.
 * @param {() => Promise<unknown>} fn
 * @param {number} runs
 */
async function medianMs(fn, runs) {
  await fn();
  /** @type {number[]} */
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)];
}

/**
 * @param {import('../dist/index.js').Gpu} gpu
 * @param {{ runs?: number }} [options]
 */
export async function faceThroughput(gpu, { runs = 5 } = {}) {
  const dir = join(root, 'test/fixtures/faces');
  const images = readdirSync(dir)
    .filter((f) => f.endsWith('.jpg'))
    .map((f) => readImage(join(dir, f)));
  const nets = loadFaceNets(gpu, join(root, 'node_modules/@vladmandic/face-api/model'));
  try {
    const batch = images.slice(0, 8);
    const describeMs = await medianMs(() => describeFaces(nets.recognizer, batch, 8), runs);
    const detectMs = await medianMs(() => detectFaces(nets.detector, images[0]), runs);
    return {
      descriptors: {
        case: `recognizer 150x150, batch ${batch.length}`,
        msPerFace: describeMs / batch.length,
        perSecond: (1000 * batch.length) / describeMs,
      },
      detections: { case: 'tiny face detector 416x416, batch 1', msPerImage: detectMs, perSecond: 1000 / detectMs },
    };
  } finally {
    nets.recognizer.dispose();
    nets.detector.dispose();
  }
}
