// conv2d with strides, padding per side (valid, same, asymmetric) and groups up to depthwise, for
// kernels 1 to 7: the forward and both gradients against finite differences of the CPU reference,
// every kernel variant of each role against the CPU adjoint on a few shapes, and the checks on
// shapes and options (a wrong output gradient included).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Tensor, add, conv2d, conv2dInputGrad, conv2dWeightGrad, convVariants, samePadding } from '../dist/index.js';
import * as ref from './reference-general.js';
import { withGpu, random, assertClose, cases } from './helpers.js';
import { checkOp } from './gradcheck.js';

const test = suite('ops-strided');
const ctx = withGpu(test);

// [B, C, H, W, O, K, groups, stride, padding, every variant]. Every variant only on 1x1 and 3x3
// kernels, whose pipelines ops-conv compiles too: each kernel size is a pipeline per variant, and
// compiling them (not running them) is what these checks would spend most of their time on.
const CASES = cases([
  [1, 3, 13, 11, 8, 7, 1, 2, 3, false], // a 7x7 stride-2 stem
  [2, 4, 9, 8, 6, 3, 2, 2, [0, 1, 0, 1], true], // 'same' at stride 2 on even sizes: the extra cell after
  [1, 4, 9, 10, 8, 1, 1, 2, 0, true], // 1x1 stride 2 (the weight gradient's 4-channel lanes)
  [1, 6, 10, 9, 6, 3, 6, 2, 1, false], // depthwise, stride 2
  [2, 5, 7, 7, 5, 3, 5, 1, 1, false], // depthwise, stride 1
  [1, 2, 17, 13, 3, 3, 1, 4, [2, 0, 1, 2], false], // stride 4, asymmetric padding
  [1, 3, 8, 8, 4, 3, 1, 2, 0, false], // valid: the last row and column reach no window
  [1, 3, 6, 7, 4, 2, 1, 2, 0, false], // an even kernel
  [1, 3, 9, 9, 4, 5, 1, 3, [2, 1, 2, 1], false], // 5x5 stride 3
]);

for (const [B, C, H, W, O, K, G, stride, padding, everyVariant] of CASES) {
  const options = { stride, padding: /** @type {import('../dist/index.js').Padding} */ (padding), groups: G };
  const xShape = [B, C, H, W];
  const wShape = [O, C / G, K, K];
  const name = `${C}->${O} ${H}x${W} k${K} s${stride} p${JSON.stringify(padding)} g${G}`;

  test(`conv2d ${name}: forward and gradients against finite differences`, async () => {
    await checkOp(ctx.gpu, {
      name: `conv2d ${name}`,
      inputs: [
        { shape: xShape, grad: true },
        { shape: wShape, grad: true },
        { shape: [O], grad: true },
      ],
      gpuFn: ([x, w, b]) => conv2d(x, w, b, options),
      cpuFn: ([x, w, b]) => ref.conv2d(x, xShape, w, wShape, b, options),
    });
  });

  if (!everyVariant) continue;
  test(`conv2d ${name}: every variant of every role against the CPU`, async () => {
    const { gpu } = ctx;
    const sides = ref.sides(padding);
    const Ho = ref.windowOut(H, K, stride, sides[0], sides[1]);
    const Wo = ref.windowOut(W, K, stride, sides[2], sides[3]);
    const [xs, ws, gs] = [random(B * C * H * W, 51), random(O * (C / G) * K * K, 52), random(B * O * Ho * Wo, 53)];
    const [x, w, g] = [
      Tensor.fromArray(gpu, xs, xShape),
      Tensor.fromArray(gpu, ws, wShape),
      Tensor.fromArray(gpu, gs, [B, O, Ho, Wo]),
    ];
    const want = ref.conv2d(xs, xShape, ws, wShape, null, options);
    const { dx, dw } = ref.conv2dGrads(xs, xShape, ws, wShape, gs, options);
    const tolerance = { rtol: 1e-4, atol: 1e-4 };
    for (const { name: variant } of convVariants(gpu, 'forward')) {
      const y = gpu.noGrad(() => conv2d(x, w, null, { ...options, variant }));
      assertClose(await y.read(), want, { ...tolerance, what: `forward ${variant}` });
      const d = conv2dInputGrad(g, w, { ...options, variant, inputSize: [H, W] });
      assertClose(await d.read(), dx, { ...tolerance, what: `input grad ${variant}` });
      [y, d].forEach((t) => t.dispose());
    }
    for (const { name: variant } of convVariants(gpu, 'weightGrad')) {
      const d = conv2dWeightGrad(x, g, wShape, { ...options, variant });
      assertClose(await d.read(), dw, { ...tolerance, what: `weight grad ${variant}` });
      d.dispose();
    }
    [x, w, g].forEach((t) => t.dispose());
  });
}

test('a strided conv whose input feeds a second one: the input gradients add (into a partial one)', async () => {
  const xShape = [2, 3, 9, 8];
  const [w1Shape, w2Shape] = [
    [4, 3, 3, 3],
    [4, 3, 1, 1],
  ];
  /** @type {import('../dist/index.js').Conv2dOptions[]} */
  const [o1, o2] = [
    { stride: 2, padding: [1, 1, 0, 1] },
    { stride: 2, padding: 0 },
  ];
  await checkOp(ctx.gpu, {
    name: 'two strided convs of one input',
    inputs: [
      { shape: xShape, grad: true },
      { shape: w1Shape, grad: true },
      { shape: w2Shape, grad: true },
    ],
    gpuFn: ([x, w1, w2]) => add(conv2d(x, w1, null, o1), conv2d(x, w2, null, o2)),
    cpuFn: ([x, w1, w2]) => {
      const a = ref.conv2d(x, xShape, w1, w1Shape, null, o1);
      const b = ref.conv2d(x, xShape, w2, w2Shape, null, o2);
      return a.map((v, i) => v + b[i]);
    },
  });
});

test("samePadding is TensorFlow's SAME: ceil(size / stride) outputs, the odd cell after", () => {
  assert.equal(samePadding(150, 7, 2), [2, 3]);
  assert.equal(samePadding(8, 3, 2), [0, 1]);
  assert.equal(samePadding(9, 3, 2), [1, 1]);
  assert.equal(samePadding(5, 1, 1), [0, 0]);
  assert.equal(samePadding(4, 2, 4), [0, 0]);
  assert.throws(() => samePadding(0, 3, 1), /samePadding: size 0/);
});

test('conv2d checks stride, padding and output size; the gradients check the output gradient', () => {
  const { gpu } = ctx;
  const x = Tensor.zeros(gpu, [1, 2, 5, 5]);
  const w = Tensor.zeros(gpu, [4, 2, 3, 3]);
  assert.throws(() => conv2d(x, w, null, { stride: 0 }), /conv2d: stride 0 must be a positive integer/);
  assert.throws(() => conv2d(x, w, null, { stride: 1.5 }), /conv2d: stride 1.5/);
  assert.throws(() => conv2d(x, w, null, { padding: 3 }), /conv2d: padding 3 must be an integer in \[0, 2\]/);
  assert.throws(() => conv2d(x, w, null, { padding: [1, 1, -1, 0] }), /conv2d: padding -1/);
  assert.throws(
    () =>
      conv2d(x, w, null, {
        padding: /** @type {[number, number, number, number]} */ (/** @type {unknown} */ ([1, 1])),
      }),
    /conv2d: padding must be a number or \[top/,
  );
  const tiny = Tensor.zeros(gpu, [1, 2, 2, 5]);
  assert.throws(() => conv2d(tiny, w, null), /conv2d: a 2x5 map padded by \[0, 0, 0, 0\] is smaller than the 3x3/);
  const g = Tensor.zeros(gpu, [1, 4, 3, 3]); // the output of stride 1, valid; not of stride 2
  assert.throws(
    () => conv2dWeightGrad(x, g, w.shape, { stride: 2 }),
    /conv2dWeightGrad: output gradient \[1, 4, 3, 3\] does not match the forward's output \[1, 4, 2, 2\]/,
  );
  const wrongChannels = Tensor.zeros(gpu, [1, 3, 3, 3]);
  assert.throws(() => conv2dWeightGrad(x, wrongChannels, w.shape), /conv2dWeightGrad: output gradient \[1, 3, 3, 3\]/);
  assert.throws(() => conv2dInputGrad(wrongChannels, w), /conv2dInputGrad: output gradient \[1, 3, 3, 3\]/);
  assert.throws(
    () => conv2dInputGrad(g, w, { stride: 2, inputSize: [5, 5] }),
    /conv2dInputGrad: output gradient \[1, 4, 3, 3\] does not match the forward's output \[1, 4, 2, 2\]/,
  );
  [x, w, tiny, g, wrongChannels].forEach((t) => t.dispose());
});

test.run();
