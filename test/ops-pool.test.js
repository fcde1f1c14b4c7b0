// Max and average pooling with strides and padding per side: the forward and gradient against the
// CPU reference and finite differences, the tie rule of max pooling, and the checks on options.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Tensor, maxPool2d, avgPool2d } from '../dist/index.js';
import * as ref from './reference-general.js';
import { withGpu, cases, gradOf } from './helpers.js';
import { mulberry32 } from './mulberry32.js';
import { checkOp } from './gradcheck.js';

const test = suite('ops-pool');
const ctx = withGpu(test);

/**
 * Distinct values 2 / n apart in [-1, 1), shuffled: no window holds two within a finite difference step.
 * @param {number} n
 * @param {number} seed
 */
function distinct(n, seed) {
  const next = mulberry32(seed);
  const v = Float32Array.from({ length: n }, (_, i) => -1 + (2 * i) / n);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return v;
}

const POOLS = { max: maxPool2d, avg: avgPool2d };

// [mode, B, C, H, W, kernel, stride, padding]
for (const [mode, B, C, H, W, kernel, stride, padding] of cases([
  ['max', 1, 2, 9, 11, 3, 2, 0], // 3x3 stride 2, valid
  ['max', 2, 2, 6, 7, 2, 2, 0], // 2x2 stride 2: the odd last column reaches no window
  ['max', 1, 3, 5, 6, 3, 1, 1], // 'same' at stride 1: padded cells never win
  ['max', 1, 2, 5, 5, 2, 1, [0, 1, 0, 1]], // 'same' for an even kernel: the padding after
  ['avg', 1, 2, 9, 8, 3, 2, [0, 1, 0, 1]], // padded cells not counted
  ['avg', 2, 2, 6, 6, 2, 2, 0],
  ['avg', 1, 3, 5, 7, 3, 1, 1],
  ['avg', 1, 2, 7, 7, 1, 2, 0], // 1x1 stride 2: subsampling
  ['max', 1, 2, 10, 9, 3, 4, [2, 1, 0, 2]], // stride past the kernel: cells in no window
])) {
  const xShape = [B, C, H, W];
  const options = { kernel, stride, padding: /** @type {import('../dist/index.js').Padding} */ (padding) };
  const pool = /** @type {'max' | 'avg'} */ (mode);
  const name = `${mode}Pool2d ${H}x${W} k${kernel} s${stride} p${JSON.stringify(padding)}`;
  test(`${name}: forward and gradient against finite differences`, async () => {
    await checkOp(ctx.gpu, {
      name,
      inputs: [{ shape: xShape, grad: true, data: distinct(B * C * H * W, H * 7 + W) }],
      gpuFn: ([x]) => POOLS[pool](x, options),
      cpuFn: ([x]) => ref.pool2d(x, xShape, pool, options),
      samples: 40,
    });
  });
}

test('maxPool2d: on ties the gradient goes to the first largest cell of the window (row-major)', async () => {
  const { gpu } = ctx;
  const x = Tensor.full(gpu, [1, 1, 3, 4], 1);
  x.requiresGrad = true;
  const y = maxPool2d(x, { kernel: 2, stride: 2 }); // windows at columns 0-1 and 2-3 of rows 0-1
  gpu.tape.backward(y, Tensor.fromArray(gpu, new Float32Array([10, 20]), [1, 1, 1, 2]));
  assert.equal([...(await gradOf(x).read())], [10, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  // Overlapping windows (stride 1): each sends its gradient to its own first cell.
  const z = Tensor.fromArray(gpu, new Float32Array([5, 5, 5, 1, 1, 1]), [1, 1, 2, 3]);
  z.requiresGrad = true;
  gpu.tape.backward(
    maxPool2d(z, { kernel: 2, stride: 1 }),
    Tensor.fromArray(gpu, new Float32Array([1, 2]), [1, 1, 1, 2]),
  );
  assert.equal([...(await gradOf(z).read())], [1, 2, 0, 0, 0, 0]);
  [x, z].forEach((t) => t.dispose());
});

test('pooling defaults its stride to the kernel and checks kernel, stride, padding and size', () => {
  const { gpu } = ctx;
  const x = Tensor.zeros(gpu, [1, 1, 4, 6]);
  assert.equal(maxPool2d(x, { kernel: 2 }).shape, [1, 1, 2, 3]);
  assert.equal(avgPool2d(x, { kernel: 3, stride: 1, padding: 1 }).shape, [1, 1, 4, 6]);
  assert.throws(() => maxPool2d(x, { kernel: 0 }), /maxPool2d: kernel size 0 must be a positive integer/);
  assert.throws(() => avgPool2d(x, { kernel: 2, stride: -1 }), /avgPool2d: stride -1 must be a positive integer/);
  assert.throws(() => maxPool2d(x, { kernel: 2, padding: 2 }), /maxPool2d: padding 2 must be an integer in \[0, 1\]/);
  assert.throws(
    () => maxPool2d(x, { kernel: 5 }),
    /maxPool2d: a 4x6 map padded by \[0, 0, 0, 0\] is smaller than the 5x5/,
  );
  assert.throws(
    () => avgPool2d(Tensor.zeros(gpu, [4, 6]), { kernel: 2 }),
    /avgPool2d: expected an NCHW tensor, got \[4, 6\]/,
  );
  x.dispose();
});

test.run();
