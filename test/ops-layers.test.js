// The layers recognition networks add: channel zero-padding and concatenation, the dense layer,
// leaky ReLU and L2 normalisation. Forward and gradients against the CPU references and finite
// differences, and the checks on their inputs.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as ops from '../dist/index.js';
import { Tensor } from '../dist/index.js';
import * as ref from './reference-general.js';
import { withGpu, random, assertClose, cases, gradOf } from './helpers.js';
import { checkOp } from './gradcheck.js';

const test = suite('ops-layers');
const ctx = withGpu(test);

for (const [shape, before, after] of cases([
  [[2, 3, 4, 5], 2, 1],
  [[3, 4], 0, 3], // rank 2
])) {
  test(`padChannels ${JSON.stringify(shape)} +${before}/+${after}`, async () => {
    await checkOp(ctx.gpu, {
      name: 'padChannels',
      inputs: [{ shape, grad: true }],
      gpuFn: ([x]) => ops.padChannels(x, before, after),
      cpuFn: ([x]) => ref.padChannels(x, shape, before, after),
    });
  });
}

test('concat on axis 1 of three tensors', async () => {
  const shapes = [
    [2, 2, 3, 3],
    [2, 1, 3, 3],
    [2, 4, 3, 3],
  ];
  await checkOp(ctx.gpu, {
    name: 'concat',
    inputs: shapes.map((shape, i) => ({ shape, grad: i !== 1 })),
    gpuFn: (xs) => ops.concat(xs),
    cpuFn: (xs) => ref.concat(xs, shapes),
  });
});

test('padChannels and concat check their inputs', () => {
  const { gpu } = ctx;
  const [a, b] = [Tensor.zeros(gpu, [1, 2, 3, 3]), Tensor.zeros(gpu, [1, 2, 3, 4])];
  assert.throws(() => ops.padChannels(a, -1, 0), /padChannels: before -1 must be a non-negative integer/);
  assert.throws(
    () => ops.padChannels(Tensor.zeros(gpu, [5]), 1, 1),
    /padChannels: expected \[B, C, \.\.\.\], got \[5\]/,
  );
  assert.throws(() => ops.concat([a, b]), /concat: shapes \[1, 2, 3, 3\], \[1, 2, 3, 4\] differ outside axis 1/);
  assert.throws(() => ops.concat([a, a], 0), /concat: only axis 1 \(channels\) is supported, got axis 0/);
  assert.throws(() => ops.concat([]), /concat: no tensors/);
  [a, b].forEach((t) => t.dispose());
});

// [N, In, Out, bias]: sizes across the 32 x 32 tiles and the 16-deep chunks; dlib's 256 -> 128 head.
for (const [N, In, Out, withBias] of cases([
  [5, 37, 70, true],
  [1, 256, 128, true],
  [33, 3, 1, false],
])) {
  test(`dense [${N}, ${In}] x [${In}, ${Out}]${withBias ? ' + bias' : ''}`, async () => {
    await checkOp(ctx.gpu, {
      name: 'dense',
      inputs: [
        { shape: [N, In], grad: true },
        { shape: [In, Out], grad: true },
        ...(withBias ? [{ shape: [Out], grad: true }] : []),
      ],
      gpuFn: ([x, w, b]) => ops.dense(x, w, b ?? null),
      cpuFn: ([x, w, b]) => ref.dense(x, w, b, [N, In, Out]),
    });
  });
}

test("dense: a weight used twice gets the sum of both products' gradients", async () => {
  const { gpu } = ctx;
  const [xs, ys, ws] = [random(6, 61), random(6, 62), random(12, 63)];
  const [x, y, w] = [
    Tensor.fromArray(gpu, xs, [2, 3]),
    Tensor.fromArray(gpu, ys, [2, 3]),
    Tensor.fromArray(gpu, ws, [3, 4]),
  ];
  w.requiresGrad = x.requiresGrad = true;
  const out = ops.add(ops.dense(x, w), ops.dense(ops.add(x, y), w));
  const gs = random(8, 64);
  gpu.tape.backward(out, Tensor.fromArray(gpu, gs, [2, 4]));
  // d/dw = x^T g + (x + y)^T g; d/dx = 2 g w^T.
  const want = new Float64Array(12);
  for (let i = 0; i < 3; i++)
    for (let o = 0; o < 4; o++)
      for (let n = 0; n < 2; n++) want[i * 4 + o] += (2 * xs[n * 3 + i] + ys[n * 3 + i]) * gs[n * 4 + o];
  assertClose(await gradOf(w).read(), want, { rtol: 1e-5, atol: 1e-5, what: 'w.grad' });
  const wantX = new Float64Array(6);
  for (let n = 0; n < 2; n++)
    for (let i = 0; i < 3; i++) for (let o = 0; o < 4; o++) wantX[n * 3 + i] += 2 * gs[n * 4 + o] * ws[i * 4 + o];
  assertClose(await gradOf(x).read(), wantX, { rtol: 1e-5, atol: 1e-5, what: 'x.grad' });
  [x, y, w, out].forEach((t) => t.dispose());
});

test('dense checks its shapes', () => {
  const { gpu } = ctx;
  const [x, w] = [Tensor.zeros(gpu, [2, 3]), Tensor.zeros(gpu, [4, 5])];
  assert.throws(() => ops.dense(x, w), /dense: input \[2, 3\] and weight \[4, 5\] must be \[N, In\] and \[In, Out\]/);
  const w2 = Tensor.zeros(gpu, [3, 5]);
  assert.throws(() => ops.dense(x, w2, Tensor.zeros(gpu, [4])), /dense: bias \[4\] must be \[5\]/);
  [x, w, w2].forEach((t) => t.dispose());
});

/**
 * Values in [-1, 1] at least 0.05 from 0: finite differences never straddle the kink.
 * @param {number} n
 * @param {number} seed
 */
function awayFromZero(n, seed) {
  return random(n, seed).map((v) => (v < 0 ? v - 0.05 : v + 0.05));
}

for (const slope of [0.1, 0, -0.5]) {
  test(`leakyRelu slope ${slope}: the gradient from the input, whatever the slope's sign`, async () => {
    await checkOp(ctx.gpu, {
      name: `leakyRelu ${slope}`,
      inputs: [{ shape: [3, 67], grad: true, data: awayFromZero(201, 71) }],
      gpuFn: ([x]) => ops.leakyRelu(x, slope),
      cpuFn: ([x]) => ref.leakyRelu(x, slope),
    });
  });
}

for (const [N, D] of [
  [3, 130],
  [2, 5],
]) {
  test(`l2Normalize [${N}, ${D}]`, async () => {
    await checkOp(ctx.gpu, {
      name: 'l2Normalize',
      inputs: [{ shape: [N, D], grad: true }],
      gpuFn: ([x]) => ops.l2Normalize(x),
      cpuFn: ([x]) => ref.l2Normalize(x, [N, D]),
      samples: 40,
    });
  });
}

test('l2Normalize: below the floor the norm is sqrt(eps), a constant; a zero row stays zero', async () => {
  const { gpu } = ctx;
  const xs = new Float32Array([0.3, -0.4, 0, 0, 3, 4]);
  const x = Tensor.fromArray(gpu, xs, [3, 2]);
  x.requiresGrad = true;
  const y = ops.l2Normalize(x, 1); // rows' sums of squares 0.25, 0, 25
  assertClose(await y.read(), [0.3, -0.4, 0, 0, 0.6, 0.8], { what: 'forward' });
  gpu.tape.backward(y, Tensor.fromArray(gpu, new Float32Array([1, 2, 3, 4, 1, 0]), [3, 2]));
  // Row 3: (g - y (y . g)) / 5 with y . g = 0.6.
  assertClose(await gradOf(x).read(), [1, 2, 3, 4, (1 - 0.36) / 5, -0.48 / 5], { what: 'gradient' });
  assert.throws(() => ops.l2Normalize(Tensor.zeros(gpu, [2, 3, 4])), /l2Normalize: expected \[N, D\], got \[2, 3, 4\]/);
  assert.throws(() => ops.l2Normalize(x, 0), /l2Normalize: eps 0 must be a positive number/);
  assert.throws(() => ops.leakyRelu(x, NaN), /leakyRelu: slope NaN must be a finite number/);
  [x, y].forEach((t) => t.dispose());
});

test.run();
