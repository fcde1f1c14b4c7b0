// Safe to embed: values derived from tensors (packed conv weights, eval BatchNorm folds) follow
// every write of their sources and die with them; misuse of the tensor API and of the ops is an
// error, never a wrong result.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Tensor,
  ParameterSet,
  Adam,
  conv2d,
  conv2dFused,
  channelReduce,
  foldBatchNorm,
  l1Loss,
  reshape,
  ReduceMode,
  loadSisn,
  loadStateDict,
  stateDict,
} from '../dist/index.js';
import * as ref from './reference.js';
import { withGpu, random, assertClose } from './helpers.js';

const test = suite('embed');
const ctx = withGpu(test);
const weightsFile = join(fileURLToPath(new URL('.', import.meta.url)), 'fixtures/sisn-small/weights.safetensors');

/**
 * Counts the dispatches of `kernel` while `fn` runs.
 * @param {import('../dist/index.js').Gpu} gpu
 * @param {string} kernel
 * @param {() => void} fn
 */
function dispatchesOf(gpu, kernel, fn) {
  const kernels = gpu.kernels;
  const dispatch = kernels.dispatch.bind(kernels);
  let count = 0;
  kernels.dispatch = (name, args) => {
    if (name === kernel) count++;
    dispatch(name, args);
  };
  try {
    fn();
  } finally {
    gpu.kernels.dispatch = dispatch;
  }
  return count;
}

/** @param {Float32Array} a @param {Float32Array} b */
const maxAbsDiff = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

test('packed weights follow write(), fill(), ParameterSet.set and Adam steps, and only their own tensor', async () => {
  const { gpu } = ctx;
  const [B, C, H, W, O, K] = [1, 4, 6, 6, 8, 3];
  const xs = random(B * C * H * W, 1);
  const ws = random(O * C * K * K, 2);
  const x = Tensor.fromArray(gpu, xs, [B, C, H, W]);
  const w = Tensor.fromArray(gpu, ws, [O, C, K, K]);
  const other = Tensor.fromArray(gpu, ws, [O, C, K, K]);
  /** @param {Tensor} weight */
  const run = async (weight) => {
    const y = gpu.noGrad(() => conv2d(x, weight, null, { padding: 1 }));
    const out = await y.read();
    y.dispose();
    return out;
  };
  /** @param {Float32Array} a */
  const sumAbs = (a) => a.reduce((s, v) => s + Math.abs(v), 0);
  const before = sumAbs(await run(w));
  await run(other);
  w.write(ws.map((v) => 2 * v));
  assert.is((sumAbs(await run(w)) / before).toFixed(3), '2.000', 'output after w.write(2 w) / before');
  w.fill(3);
  assertClose(await run(w), ref.conv2d(xs, [B, C, H, W], new Float32Array(ws.length).fill(3), [O, C, K], null, 1, 1), {
    rtol: 1e-4,
    atol: 1e-4,
    what: 'conv after w.fill(3)',
  });
  // Writing w, or the input, repacks w only.
  w.write(ws);
  const packs = dispatchesOf(gpu, 'conv2d.pack_weight', () => {
    gpu
      .noGrad(() => [conv2d(x, w, null, { padding: 1 }), conv2d(x, other, null, { padding: 1 })])
      .forEach((y) => y.dispose());
    x.write(xs);
    gpu
      .noGrad(() => [conv2d(x, w, null, { padding: 1 }), conv2d(x, other, null, { padding: 1 })])
      .forEach((y) => y.dispose());
  });
  assert.is(packs, 1, 'weights packed after writing w and then x');

  // A parameter written by ParameterSet.set, by an optimiser step, or as part of its whole arena.
  const params = new ParameterSet(gpu, [
    { name: 'a', shape: [O, C, K, K] },
    { name: 'b', shape: [O, C, K, K] },
  ]);
  const a = params.get('a');
  params.set('a', ws);
  params.set('b', ws);
  await run(a);
  await run(params.get('b'));
  params.set(
    'a',
    ws.map((v) => -v),
  );
  assertClose(
    await run(a),
    ref.conv2d(
      xs,
      [B, C, H, W],
      ws.map((v) => -v),
      [O, C, K],
      null,
      1,
      1,
    ),
    {
      rtol: 1e-4,
      atol: 1e-4,
      what: 'conv after ParameterSet.set',
    },
  );
  const repacked = dispatchesOf(gpu, 'conv2d.pack_weight', () =>
    gpu.noGrad(() => conv2d(x, params.get('b'), null, { padding: 1 })).dispose(),
  );
  assert.is(repacked, 0, "writing parameter 'a' repacked its neighbour 'b' in the arena");
  const adam = new Adam(params, { lr: 0.1 });
  params.grads.fill(1);
  adam.update();
  assertClose(await run(a), ref.conv2d(xs, [B, C, H, W], await a.read(), [O, C, K], null, 1, 1), {
    rtol: 1e-4,
    atol: 1e-4,
    what: 'conv after an Adam step',
  });
  params.values.fill(0.5);
  assertClose(
    await run(a),
    ref.conv2d(xs, [B, C, H, W], new Float32Array(ws.length).fill(0.5), [O, C, K], null, 1, 1),
    {
      rtol: 1e-4,
      atol: 1e-4,
      what: 'conv after filling the whole arena',
    },
  );
  adam.dispose();
  params.dispose();
  [x, w, other].forEach((t) => t.dispose());
});

test('one weight under two group counts: each gets its own packing', async () => {
  const { gpu } = ctx;
  const [O, Cg, K] = [4, 2, 3];
  const ws = random(O * Cg * K * K, 3);
  const w = Tensor.fromArray(gpu, ws, [O, Cg, K, K]);
  for (const groups of [1, 2, 1]) {
    const shape = [2, Cg * groups, 5, 5];
    const xs = random(
      shape.reduce((p, d) => p * d, 1),
      4 + groups,
    );
    const x = Tensor.fromArray(gpu, xs, shape);
    const y = gpu.noGrad(() => conv2d(x, w, null, { padding: 1, groups }));
    assertClose(await y.read(), ref.conv2d(xs, shape, ws, [O, Cg, K], null, 1, groups), {
      rtol: 1e-4,
      atol: 1e-4,
      what: `conv with ${groups} groups`,
    });
    [x, y].forEach((t) => t.dispose());
  }
  w.dispose();
});

test('eval BatchNorm folds follow writes of running statistics and training-mode updates', async () => {
  const { gpu } = ctx;
  const input = Tensor.fromArray(gpu, random(3 * 16 * 16, 5, 0, 255), [1, 3, 16, 16]);
  /** @param {import('../dist/index.js').SISN} model */
  const evaluate = async (model) => {
    const y = gpu.noGrad(() => model.forward(input));
    const out = await y.read();
    y.dispose();
    return out;
  };
  const model = loadSisn(gpu, weightsFile);
  const name = 'body.1.IA.bn3.running_mean';
  /** @param {import('../dist/index.js').SISN} m */
  const buffer = (m) => /** @type {Tensor} */ (m.buffers.get(name));
  const shifted = (await buffer(model).read()).map((v) => 2 * v);
  const first = await evaluate(model);
  buffer(model).write(shifted);
  const afterWrite = await evaluate(model);
  const fresh = loadSisn(gpu, weightsFile);
  buffer(fresh).write(shifted);
  const want = await evaluate(fresh);
  assert.ok(maxAbsDiff(first, want) > 0.1, 'the written statistics change the output');
  assert.ok(
    maxAbsDiff(afterWrite, want) < 1e-3,
    `after writing ${name}: ${maxAbsDiff(afterWrite, want).toFixed(2)} from a fresh model with the same values`,
  );
  // A training-mode forward updates every running statistic in place.
  model.training = true;
  const batch = Tensor.fromArray(gpu, random(2 * 3 * 16 * 16, 6, 0, 255), [2, 3, 16, 16]);
  gpu.noGrad(() => model.forward(batch)).dispose();
  batch.dispose();
  model.training = false;
  const afterTraining = await evaluate(model);
  loadStateDict(fresh, await stateDict(model));
  const wantTrained = await evaluate(fresh);
  assert.ok(
    maxAbsDiff(afterTraining, wantTrained) < 1e-3,
    `after a training step: ${maxAbsDiff(afterTraining, wantTrained).toFixed(2)} from the loaded state`,
  );
  [model, fresh].forEach((m) => m.dispose());
  input.dispose();
});

test('what is derived from a tensor is freed with it: 200 disposed weights leave no bytes in use', async () => {
  const { gpu } = ctx;
  await gpu.sync();
  const start = gpu.pool.inUseBytes;
  const x = Tensor.full(gpu, [1, 64, 8, 8], 1);
  for (let i = 0; i < 200; i++) {
    const w = Tensor.full(gpu, [64, 64, 3, 3], 0.01);
    gpu.noGrad(() => conv2d(x, w, null, { padding: 1 })).dispose();
    w.dispose();
  }
  x.dispose();
  const left = gpu.pool.inUseBytes - start;
  assert.is(left, 0, `${(left / 2 ** 20).toFixed(2)} MiB still in use`);
  // A parameter set and a model disposed: their packings and folds go too.
  const params = new ParameterSet(gpu, [{ name: 'w', shape: [8, 4, 3, 3] }]);
  const xs = Tensor.full(gpu, [1, 4, 5, 5], 1);
  gpu.noGrad(() => conv2dFused(xs, params.get('w'), null, { padding: 1 })).dispose();
  params.dispose();
  xs.dispose();
  const model = loadSisn(gpu, weightsFile);
  const input = Tensor.full(gpu, [1, 3, 8, 8], 100);
  gpu.noGrad(() => model.forward(input)).dispose();
  input.dispose();
  model.dispose();
  assert.is(gpu.pool.inUseBytes, start, 'after a disposed parameter set and model');
});

test('release() past zero throws; the only public view is the recorded reshape', async () => {
  const { gpu } = ctx;
  const t = Tensor.fromArray(gpu, [1, 2, 3, 4]);
  t.retain();
  t.release();
  t.dispose();
  assert.throws(() => t.release(), /^tensor #\d+ \[4\]: release\(\) without a reference to drop$/);
  assert.throws(() => reshape(t, [2, 2]), /^reshape: Tensor\[4\] was used after dispose\(\)$/);

  // A view off the tape would stop gradients silently: Tensor has none.
  assert.is(/** @type {Record<string, unknown>} */ (/** @type {unknown} */ (Tensor.prototype)).view, undefined);
  const x = Tensor.fromArray(gpu, [1, -2, 3, -4, 5, -6], [2, 3]);
  x.requiresGrad = true;
  const target = Tensor.zeros(gpu, [3, 2]);
  const y = reshape(x, [3, 2]);
  const loss = l1Loss(y, target);
  gpu.tape.backward(loss);
  assert.equal(
    [...(await /** @type {Tensor} */ (x.grad).read())],
    [1, -1, 1, -1, 1, -1].map((v) => Math.fround(v / 6)),
    'the gradient through reshape',
  );
  assert.throws(() => reshape(x, [5]), /^reshape: cannot view \[2, 3\] as \[5\]$/);
  [x, y, target, loss].forEach((v) => v.dispose());
});

test('a backward whose rules saved a tensor written since the forward throws, before computing anything', async () => {
  const { gpu } = ctx;
  const x = Tensor.fromArray(gpu, random(2 * 2 * 4 * 4, 8), [2, 2, 4, 4]);
  const params = new ParameterSet(gpu, [{ name: 'w', shape: [3, 2, 3, 3] }]);
  const w = params.get('w');
  params.set('w', random(3 * 2 * 9, 9));
  const target = Tensor.zeros(gpu, [2, 3, 4, 4]);
  const y = conv2d(x, w, null, { padding: 1 });
  const loss = l1Loss(y, target);
  const adam = new Adam(params);
  adam.update(); // steps w, which conv2d saved for its weight gradient
  assert.throws(
    () => gpu.tape.backward(loss),
    /^backward of conv2d: the \[3, 2, 3, 3\] tensor it saved was written after the forward pass$/,
  );
  assert.equal(
    [...(await /** @type {Tensor} */ (w.grad).read())],
    new Array(w.size).fill(0),
    'nothing was accumulated',
  );
  gpu.tape.clear();
  adam.dispose();
  params.dispose();
  [x, y, target, loss].forEach((t) => t.dispose());
});

test('ops validate their operands against each other, naming the op and the shapes', () => {
  const { gpu } = ctx;
  const x = Tensor.zeros(gpu, [2, 3, 4]);
  const y = Tensor.zeros(gpu, [2, 3, 5]);
  const c3 = Tensor.zeros(gpu, [3]);
  const c4 = Tensor.zeros(gpu, [4]);
  const dims = { batch: 2, channels: 3, inner: 4 };
  assert.throws(
    () => channelReduce(x, { ...dims, mode: ReduceMode.Dot, y }),
    /^channelReduce: y \[2, 3, 5\] does not match x \[2, 3, 4\]$/,
  );
  assert.throws(
    () => channelReduce(x, { ...dims, mode: ReduceMode.AbsDiff }),
    /^channelReduce: mode AbsDiff needs a second operand y$/,
  );
  assert.throws(
    () => channelReduce(x, { ...dims, mode: ReduceMode.Sum, y: x }),
    /^channelReduce: mode Sum takes no second operand y$/,
  );
  assert.throws(
    () => foldBatchNorm(c3, c3, c4, c3, null),
    /^foldBatchNorm: running_mean \[4\] does not match the weight \[3\]$/,
  );
  assert.throws(
    () => foldBatchNorm(c3, c3, c3, c3, c4),
    /^foldBatchNorm: the convolution bias \[4\] does not match the weight \[3\]$/,
  );
  [x, y, c3, c4].forEach((t) => t.dispose());
});

test('conv2dFused validates its epilogue: shift and scale one per output channel, the residual the output', () => {
  const { gpu } = ctx;
  const x = Tensor.zeros(gpu, [1, 2, 5, 5]);
  const w = Tensor.zeros(gpu, [4, 2, 3, 3]);
  const [c1, c4, c7] = [Tensor.zeros(gpu, [1]), Tensor.zeros(gpu, [4]), Tensor.zeros(gpu, [7])];
  const residual = Tensor.zeros(gpu, [1, 4, 3, 3]);
  gpu.noGrad(() => {
    assert.throws(() => conv2dFused(x, w, c7, { padding: 1 }), /^conv2dFused: shift \[7\] must be \[4\]/);
    assert.throws(() => conv2dFused(x, w, c4, { padding: 1, scale: c1 }), /^conv2dFused: scale \[1\] must be \[4\]/);
    assert.throws(
      () => conv2dFused(x, w, c4, { padding: 1, residual }),
      /^conv2dFused: residual \[1, 4, 3, 3\] must have the output's shape \[1, 4, 5, 5\]$/,
    );
    assert.throws(() => conv2dFused(x, w, null, { groups: 3 }), /^conv2dFused: 2 -> 4 channels cannot be split/);
    assert.throws(() => conv2dFused(x, w, null, { padding: 5 }), /^conv2dFused: /);
    conv2dFused(x, w, c4, { residual, scale: c4 }).dispose();
  });
  [x, w, c1, c4, c7, residual].forEach((t) => t.dispose());
});

test.run();
