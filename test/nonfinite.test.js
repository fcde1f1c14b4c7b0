// Non-finite weights are refused at load, naming the tensor (safetensors, .pt, training
// checkpoints); a non-finite model output is an error, never an image.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadSisn, loadCheckpoint, parseSafetensors, serializeSafetensors, readImage } from '../dist/index.js';
import { torchSave } from './torch-files.js';
import { withGpu, entryOf } from './helpers.js';
/** @import { SafeTensor } from '../dist/index.js' */

const test = suite('non-finite weights');
const ctx = withGpu(test);
const root = fileURLToPath(new URL('..', import.meta.url));
const face = join(root, 'test/fixtures/faces/009501.jpg');
const weights = parseSafetensors(readFileSync(join(root, 'test/fixtures/sisn-small/weights.safetensors'))).tensors;
const tmp = mkdtempSync(join(tmpdir(), 'sisn-nonfinite-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * The fixture's weights with one value of one tensor replaced.
 * @param {string} name
 * @param {number} index
 * @param {number} value
 */
function poisoned(name, index, value) {
  const data = Float32Array.from(entryOf(weights, name).data);
  data[index] = value;
  return new Map([...weights].map(([k, t]) => [k, k === name ? { ...t, data } : t]));
}

test('NaN or Inf in safetensors or .pt weights is refused at load, naming the tensor', () => {
  const st = join(tmp, 'nan.safetensors');
  writeFileSync(st, serializeSafetensors(poisoned('body.0.IA.conv1.weight', 5, NaN)));
  assert.throws(
    () => loadSisn(ctx.gpu, st),
    /nan\.safetensors: tensor body\.0\.IA\.conv1\.weight holds NaN at element 5/,
  );
  const pt = join(tmp, 'inf.pt');
  const dict = poisoned('tail.1.bias', 2, -Infinity);
  writeFileSync(pt, torchSave(new Map([...dict].map(([k, t]) => [`module.${k}`, t]))));
  assert.throws(() => loadSisn(ctx.gpu, pt), /inf\.pt: tensor tail\.1\.bias holds -Infinity at element 2/);
});

test('a training checkpoint with non-finite weights or Adam moments is refused, naming the tensor', () => {
  const meta = {
    format: 'sisn-webgpu-checkpoint/1',
    step: 1,
    rng: [1, 2, 3, 4],
    adamStep: 1,
    bestPsnr: 0,
    bestStep: 0,
    options: {},
  };
  /** @type {(name: string, dict: Map<string, SafeTensor>, expAvgSq: Float32Array) => string} */
  const write = (name, dict, expAvgSq) => {
    const path = join(tmp, name);
    /** @type {[string, SafeTensor][]} */
    const moments = [
      ['optimizer.exp_avg', { dtype: 'F32', shape: [4], data: new Float32Array(4) }],
      ['optimizer.exp_avg_sq', { dtype: 'F32', shape: [4], data: expAvgSq }],
    ];
    writeFileSync(path, serializeSafetensors([...dict, ...moments], { checkpoint: JSON.stringify(meta) }));
    return path;
  };
  assert.throws(
    () => loadCheckpoint(ctx.gpu, write('w.safetensors', poisoned('head.1.weight', 0, Infinity), new Float32Array(4))),
    /w\.safetensors: tensor head\.1\.weight holds Infinity at element 0/,
  );
  assert.throws(
    () => loadCheckpoint(ctx.gpu, write('m.safetensors', weights, Float32Array.from([0, NaN, 0, 0]))),
    /m\.safetensors: tensor optimizer\.exp_avg_sq holds NaN at element 1/,
  );
});

test('a model whose output is NaN/Inf makes an error, not an image', async () => {
  const model = loadSisn(ctx.gpu, join(root, 'test/fixtures/sisn-small/weights.safetensors'));
  const head = model.entries.find((e) => e.name === 'head.1.weight');
  assert.ok(head, 'the model has head.1.weight');
  model.params.set('head.1.weight', new Float32Array(head.shape.reduce((a, b) => a * b, 1)).fill(3e38));
  const failure = await model.upscale(readImage(face)).then(
    () => null,
    (/** @type {Error} */ e) => e,
  );
  assert.ok(failure, 'upscale resolved');
  assert.match(failure.message, /the model produced (NaN|-?Infinity) \(NaN\/Inf\) in the tile at \(0, 0\)/);
  model.dispose();
});

test('sisn upscale with NaN weights exits non-zero, names the tensor and writes no file', () => {
  const weightsPath = join(tmp, 'nan-cli.safetensors');
  writeFileSync(weightsPath, serializeSafetensors(poisoned('tail.1.weight', 0, NaN)));
  const out = join(tmp, 'face_x4.png');
  const r = spawnSync(
    process.execPath,
    [join(root, 'dist/cli/bin.js'), 'upscale', face, '-o', out, '--weights', weightsPath],
    { encoding: 'utf8', timeout: 120000 },
  );
  assert.is(r.status, 1, r.stderr);
  assert.match(r.stderr, /nan-cli\.safetensors: tensor tail\.1\.weight holds NaN at element 0/);
  assert.not.ok(existsSync(out), 'an output file was written');
});

test.run();
