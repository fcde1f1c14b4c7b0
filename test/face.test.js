// face-api's recognizer and tiny face detector on the engine, against face-api's own networks
// (tfjs CPU backend; test/fixtures/face-api/reference.json, made by scripts/face-api-reference.mjs):
// descriptors to 1e-3 in every element, boxes to a pixel; `sisn identity`, `sisn detect` and
// `sisn eval --identity` from the command line; missing and corrupt weights give clear errors.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readImage, loadFaceNets, describeFaces, detectFaces, cropBox } from '../dist/index.js';
import { readJson, withGpu } from './helpers.js';

/** @import { Box, IdentityResult } from '../dist/index.js' */
/**
 * @typedef {{ box: Box, score: number }} RefDetection
 * @typedef {{ descriptor: number[], crop?: { box: Box, descriptor: number[] }, detections: RefDetection[] }} RefImage
 * @typedef {{ inputSize: number, images: Record<string, RefImage> }} Reference
 */

const test = suite('face');
const ctx = withGpu(test);
const root = fileURLToPath(new URL('..', import.meta.url));
const models = join(root, 'node_modules/@vladmandic/face-api/model');
const faces = join(root, 'test/fixtures/faces');
const reference = /** @type {Reference} */ (readJson(join(root, 'test/fixtures/face-api/reference.json')));
const tmp = mkdtempSync(join(tmpdir(), 'sisn-face-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
/** @param {...string} args */
const sisn = (...args) =>
  spawnSync(process.execPath, [join(root, 'dist/cli/bin.js'), ...args], { encoding: 'utf8', timeout: 120000 });

/** @type {ReturnType<typeof loadFaceNets>} */
let nets;
test.before.each(() => {
  nets ??= loadFaceNets(ctx.gpu, models);
});
test.after(() => {
  nets?.recognizer.dispose();
  nets?.detector.dispose();
});

/** Largest absolute difference of two descriptors. */
/**
 * @param {ArrayLike<number>} a
 * @param {ArrayLike<number>} b
 */
const maxDiff = (a, b) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const names = Object.keys(reference.images);

test("descriptors match face-api's to 1e-3 in every element, whole images and detected crops", async () => {
  const images = names.map((n) => readImage(join(faces, n)));
  const withCrop = names.filter((n) => reference.images[n].crop);
  /** @param {string} n  one of withCrop's */
  const cropOf = (n) => /** @type {NonNullable<RefImage['crop']>} */ (reference.images[n].crop);
  const crops = withCrop.map((n) => cropBox(images[names.indexOf(n)], cropOf(n).box));
  const got = await describeFaces(nets.recognizer, [...images, ...crops]);
  const want = [...names.map((n) => reference.images[n].descriptor), ...withCrop.map((n) => cropOf(n).descriptor)];
  const labels = [...names, ...withCrop.map((n) => `${n} crop`)];
  let worst = 0;
  got.forEach((d, i) => {
    const diff = maxDiff(d, want[i]);
    assert.ok(diff < 1e-3, `${labels[i]}: descriptor differs by ${diff}`);
    worst = Math.max(worst, diff);
  });
  console.log(
    `  largest descriptor difference from face-api: ${worst.toExponential(2)} (${labels.length} descriptors)`,
  );
});

test("detections match face-api's: the same faces, boxes within a pixel, scores within 1e-3", async () => {
  let worst = 0;
  for (const n of names) {
    const want = reference.images[n].detections;
    const got = await detectFaces(nets.detector, readImage(join(faces, n)), { inputSize: reference.inputSize });
    assert.is(got.length, want.length, `${n}: ${got.length} faces, face-api finds ${want.length}`);
    got.forEach((g, i) => {
      for (const k of /** @type {const} */ (['x', 'y', 'width', 'height'])) {
        const d = Math.abs(g.box[k] - want[i].box[k]);
        assert.ok(d < 1, `${n} face ${i} ${k}: ${g.box[k]} vs ${want[i].box[k]}`);
        worst = Math.max(worst, d);
      }
      assert.ok(Math.abs(g.score - want[i].score) < 1e-3, `${n} face ${i} score ${g.score} vs ${want[i].score}`);
    });
  }
  console.log(`  largest box difference from face-api: ${worst.toExponential(2)} px`);
});

test('sisn identity: descriptors in JSON keyed by file, the distance of two; sisn detect: boxes', () => {
  const [a, b] = names.filter((n) => reference.images[n].crop).map((n) => join(faces, n));
  const json = join(tmp, 'identity.json');
  const r = sisn('identity', a, b, '--detect', '--json', json);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /distance .*: \d\.\d{4}: (the same person|different people) \(threshold 0\.6\)/);
  const written = /** @type {Record<string, { descriptor: number[] }>} */ (readJson(json));
  assert.equal(Object.keys(written), [a, b]);
  assert.is(written[a].descriptor.length, 128);
  const d = sisn('detect', a, '--json', join(tmp, 'detect.json'));
  assert.is(d.status, 0, d.stderr);
  assert.match(d.stdout, /\(89x109\): 1 face\(s\)\n {2}score 0\.\d{3} {2}x /);
});

test('bad images, missing and corrupt weights, bad options: clear errors, non-zero exit', () => {
  const notImage = join(tmp, 'notes.png');
  writeFileSync(notImage, 'not an image');
  const bad = sisn('identity', notImage);
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /sisn identity: .*notes\.png/);
  const missing = sisn('detect', join(faces, names[0]), '--models', join(tmp, 'nowhere'));
  assert.is(missing.status, 1);
  assert.match(missing.stderr, /--models .*nowhere: no face_recognition_model-weights_manifest\.json there/);
  const corrupt = join(tmp, 'model');
  rmSync(corrupt, { recursive: true, force: true });
  spawnSync('mkdir', [corrupt]);
  for (const f of ['face_recognition_model-weights_manifest.json', 'tiny_face_detector_model-weights_manifest.json'])
    copyFileSync(join(models, f), join(corrupt, f));
  const shard = readFileSync(join(models, 'face_recognition_model.bin'));
  writeFileSync(join(corrupt, 'face_recognition_model.bin'), shard.subarray(0, shard.byteLength - 100));
  const cut = sisn('identity', join(faces, names[0]), '--models', corrupt);
  assert.is(cut.status, 1);
  assert.match(
    cut.stderr,
    /face_recognition_model-weights_manifest\.json: group 0 .*the shards hold \d+ \(truncated\?\)/,
  );
  const size = sisn('detect', join(faces, names[0]), '--input_size', '100');
  assert.is(size.status, 1);
  assert.match(size.stderr, /--input_size must be a positive multiple of 32, got 100/);
});

test('sisn eval --identity: detection, distance, matched and rank-1 per method; per-image values', () => {
  const json = join(tmp, 'eval.json');
  const weights = join(root, 'weights/sisn-x4-celeba.safetensors');
  const options = `--dataset_root ${faces} --range 1-2 --hr_crop 88x104 --identity --input_size 160 --json ${json}`;
  const r = sisn('eval', '--weights', weights, ...options.split(' '));
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /identity: the face found on HR in \d of 2 images/);
  assert.match(r.stdout, /\nSISN +\d+\.\d% +\d\.\d{4} +\d+\.\d% +\d+\.\d%\n/);
  const { identity } = /** @type {{ identity: IdentityResult }} */ (readJson(json));
  assert.is(identity.count, 2);
  assert.is(identity.images.length, 2);
  assert.is(identity.found + identity.missedOnHr.length, 2);
  for (const m of /** @type {const} */ (['sisn', 'bicubic', 'nearest'])) {
    const s = identity.methods[m];
    for (const k of /** @type {const} */ (['detectionRate', 'matched', 'rank1']))
      assert.ok(s[k] >= 0 && s[k] <= 1, `${m}.${k} = ${s[k]}`);
  }
  const found = identity.images.find((x) => x.box);
  assert.ok(found?.distance && found.rank1);
  assert.ok(found.distance.sisn >= 0 && typeof found.rank1.bicubic === 'boolean');
});

test.run();
