#!/usr/bin/env node
// Reference outputs of face-api's own networks, to prove ours (src/nn/face/) against: for each image,
// the tiny face detector's boxes and scores, the recognizer's descriptor of the whole image and of
// the best box's crop (face-api's extractFaceTensors). face-api runs in a scratch folder, never a
// dependency of the engine: its dist/face-api.node.js on the pure-JS @tensorflow/tfjs CPU backend,
// with @tensorflow/tfjs-node (which downloads a native library at install) resolved to a stub that
// re-exports @tensorflow/tfjs. The script installs that folder with npm on its first run.
//   node scripts/face-api-reference.mjs [--scratch DIR] [--input_size N] [--out FILE] IMAGE...
// Images are decoded by the engine's own decoder (dist/, so build first), the same bytes both see.
/* eslint-disable @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-member-access,
   @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-argument --
   tfjs and face-api are loaded untyped from the scratch folder (neither is a dependency of this package) */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { readImage } from '../dist/io/image.js';

const TFJS = '4.22.0';
const FACE_API = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).dependencies[
  '@vladmandic/face-api'
];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    scratch: { type: 'string', default: '/tmp/sisn-face-api-reference' },
    input_size: { type: 'string', default: '416' },
    out: { type: 'string' },
  },
});
if (!positionals.length) {
  console.error('usage: node scripts/face-api-reference.mjs [--scratch DIR] [--input_size N] [--out FILE] IMAGE...');
  process.exit(2);
}

/** The scratch folder: face-api and tfjs at fixed versions, tfjs-node a stub re-exporting tfjs. */
/** @param {string} dir */
function install(dir) {
  const stub = join(dir, 'tfjs-node-stub');
  mkdirSync(stub, { recursive: true });
  writeFileSync(join(stub, 'package.json'), JSON.stringify({ name: '@tensorflow/tfjs-node', version: TFJS }));
  writeFileSync(join(stub, 'index.js'), "module.exports = require('@tensorflow/tfjs');\n");
  const deps = {
    '@tensorflow/tfjs': TFJS,
    '@vladmandic/face-api': FACE_API,
    '@tensorflow/tfjs-node': 'file:./tfjs-node-stub',
  };
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'face-api-reference', private: true, dependencies: deps }),
  );
  if (!existsSync(join(dir, 'node_modules/@vladmandic/face-api/package.json'))) {
    console.error(`installing face-api ${FACE_API} and tfjs ${TFJS} into ${dir}`);
    execFileSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'inherit' });
  }
}

const scratch = resolve(values.scratch);
install(scratch);
// Loaded from the scratch folder, untyped: neither package is a dependency of this one.
const requireFromScratch = createRequire(join(scratch, 'package.json'));
/** @type {any} */
const tf = requireFromScratch('@tensorflow/tfjs');
/** @type {any} */
const faceapi = requireFromScratch('@vladmandic/face-api');
await tf.setBackend('cpu');
await tf.ready();

const models = join(scratch, 'node_modules/@vladmandic/face-api/model');
/** @param {string} name */
function weightMap(name) {
  /** @type {{ weights: unknown[], paths: string[] }[]} */
  const manifest = JSON.parse(readFileSync(join(models, `${name}-weights_manifest.json`), 'utf8'));
  const specs = manifest.flatMap((g) => g.weights);
  const shards = manifest.flatMap((g) => g.paths).map((p) => readFileSync(join(models, p)));
  const bytes = Buffer.concat(shards);
  return tf.io.decodeWeights(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), specs);
}
await faceapi.nets.faceRecognitionNet.loadFromWeightMap(weightMap('face_recognition_model'));
await faceapi.nets.tinyFaceDetector.loadFromWeightMap(weightMap('tiny_face_detector_model'));

const inputSize = Number(values.input_size);
const options = new faceapi.TinyFaceDetectorOptions({ inputSize, scoreThreshold: 0.5 });
const descriptor = async (/** @type {unknown} */ t) =>
  Array.from(await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(t));
/** @type {Record<string, object>} */
const images = {};
for (const file of positionals) {
  const started = Date.now();
  const img = readImage(file);
  const x = tf.tensor3d(img.data, [img.height, img.width, 3], 'int32');
  /** @type {{ score: number, box: any }[]} */
  const found = await faceapi.nets.tinyFaceDetector.locateFaces(x, options);
  const detections = found.map((d) => ({
    score: d.score,
    box: { x: d.box.x, y: d.box.y, width: d.box.width, height: d.box.height },
  }));
  /** @type {{ width: number, height: number, detections: object[], descriptor: number[], crop?: object }} */
  const entry = { width: img.width, height: img.height, detections, descriptor: await descriptor(x) };
  if (found.length) {
    const best = found.reduce((a, b) => (b.score > a.score ? b : a));
    const [crop] = await faceapi.extractFaceTensors(x, [best]);
    const { x: cx, y: cy, width, height } = best.box.clipAtImageBorders(img.width, img.height);
    entry.crop = { box: { x: cx, y: cy, width, height }, descriptor: await descriptor(crop) };
    crop.dispose();
  }
  x.dispose();
  images[basename(file)] = entry;
  console.error(`${file}: ${detections.length} face(s), ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
const out = JSON.stringify(
  { faceApi: FACE_API, tfjs: TFJS, backend: tf.getBackend(), inputSize, scoreThreshold: 0.5, images },
  null,
  1,
);
if (values.out) writeFileSync(values.out, `${out}\n`);
else console.log(out);
