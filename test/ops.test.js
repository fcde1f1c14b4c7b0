// Every op: forward against a CPU reference, backward against finite differences.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync } from 'node:fs';
import { detectRaces } from 'wgsl_reflect/wgsl_reflect.module.js';
import * as ops from '../dist/index.js';
import { Tensor } from '../dist/index.js';
import { SHADER_DIR, preprocess } from '../dist/internals.js';
import * as ref from './reference.js';
import { withGpu, random, assertClose, cases, gradOf } from './helpers.js';
import { checkOp } from './gradcheck.js';

const test = suite('ops');
const ctx = withGpu(test);
/** @param {number[]} s */
const size = (s) => s.reduce((a, b) => a * b, 1);

for (const [B, C, H, W, O, K, G, bias] of cases([
  [1, 3, 5, 7, 5, 3, 1, true],
  [2, 8, 6, 5, 32, 3, 4, false], // SISN's grouped C -> 4C, groups 4
  [2, 6, 4, 9, 6, 1, 1, false], // 1x1, channels not divisible by 4
  [3, 4, 3, 3, 3, 3, 1, true],
  [1, 4, 6, 6, 8, 5, 2, true],
  [2, 48, 4, 5, 32, 3, 1, true], // SISN's x4 head: 48 input channels (not a multiple of 64 lanes)
])) {
  const pad = (K - 1) / 2;
  test(`conv2d B${B} ${C}->${O} ${H}x${W} k${K} groups ${G}${bias ? ' bias' : ''}`, async () => {
    const ws = [O, C / G, K, K];
    await checkOp(ctx.gpu, {
      name: 'conv2d',
      inputs: [
        { shape: [B, C, H, W], grad: true },
        { shape: ws, grad: true },
        ...(bias ? [{ shape: [O], grad: true }] : []),
      ],
      gpuFn: ([x, w, b]) => ops.conv2d(x, w, b ?? null, { padding: pad, groups: G }),
      cpuFn: ([x, w, b]) => ref.conv2d(x, [B, C, H, W], w, ws, b, pad, G),
    });
  });
}

// Every element of the weight gradient (the finite-difference checks above sample a few), in every
// variant the tuner may choose: channel counts that are not multiples of 4, 8 or 16, groups,
// batch > 1, and Cin/G past one workgroup of lanes.
for (const [B, C, H, W, O, K, G] of [
  [3, 5, 5, 6, 12, 3, 1],
  [2, 20, 4, 5, 20, 3, 2],
  [2, 12, 5, 4, 36, 3, 4],
  [2, 72, 3, 4, 9, 3, 1],
  [1, 7, 4, 9, 3, 1, 1],
]) {
  test(`conv2d weight gradient, every element, every variant: B${B} ${C}->${O} k${K} groups ${G}`, async () => {
    const { gpu } = ctx;
    const pad = (K - 1) / 2;
    const ws = [O, C / G, K, K];
    const xs = random(B * C * H * W, 11);
    const gs = random(B * O * H * W, 12);
    const x = Tensor.fromArray(gpu, xs, [B, C, H, W]);
    const g = Tensor.fromArray(gpu, gs, [B, O, H, W]);
    const want = ref.conv2dWeightGrad(xs, [B, C, H, W], gs, ws, pad, G);
    for (const { name } of ops.convVariants(gpu, 'weightGrad')) {
      const dw = ops.conv2dWeightGrad(x, g, ws, { padding: pad, groups: G, variant: name });
      assertClose(await dw.read(), want, { rtol: 1e-4, atol: 1e-4, what: `dw ${name}` });
      dw.dispose();
    }
    [x, g].forEach((t) => t.dispose());
  });
}

test('conv2d weight gradient where a subgroup spans several blocks of output channels', async () => {
  // Blocks of 3 or 6 lanes: no adapter's subgroups align with them, so the kernel must notice that
  // its lanes do not share one block and load the output gradient per lane.
  const { gpu } = ctx;
  const [B, C, H, W, O, K] = [2, 3, 5, 6, 20, 3];
  const xs = random(B * C * H * W, 13);
  const gs = random(B * O * H * W, 14);
  const x = Tensor.fromArray(gpu, xs, [B, C, H, W]);
  const g = Tensor.fromArray(gpu, gs, [B, O, H, W]);
  const want = ref.conv2dWeightGrad(xs, [B, C, H, W], gs, [O, C, K], 1, 1);
  for (const lanes of [3, 6]) {
    const dw = Tensor.empty(gpu, [O, C, K, K]);
    gpu.kernels.dispatch('conv2d_weight.weight_grad', {
      uniforms: {
        batch: B,
        cin: C,
        h: H,
        w: W,
        cout: O,
        hout: H,
        wout: W,
        groups: 1,
        pad_y: 1,
        pad_x: 1,
        stride: 1,
        lanes_per_block: lanes,
        rows_per_chunk: B * H,
        size: O * C * K * K,
        accumulate: 0,
      },
      buffers: { out: dw, inp: x, dout: g },
      groups: [1, 1, 1],
      constants: { K },
    });
    assertClose(await dw.read(), want, { rtol: 1e-4, atol: 1e-4, what: `dw with ${lanes}-lane blocks` });
    dw.dispose();
  }
  [x, g].forEach((t) => t.dispose());
});

test(
  'conv2dFused: conv (+bias) -> eval BatchNorm -> + residual -> ReLU in one pass equals the ' + 'composition',
  async () => {
    const { gpu } = ctx;
    const [B, C, H, W, O] = [2, 8, 5, 7, 16];
    /** @type {(shape: number[], seed: number, lo?: number, hi?: number) => Tensor} */
    const t = (shape, seed, lo = -1, hi = 1) =>
      Tensor.fromArray(
        gpu,
        random(
          shape.reduce((a, b) => a * b, 1),
          seed,
          lo,
          hi,
        ),
        shape,
      );
    const x = t([B, C, H, W], 1);
    const w = t([O, C / 4, 3, 3], 2);
    const cb = t([O], 3);
    const [gm, bt, rm, rv] = [t([O], 4, 0.5, 1.5), t([O], 5), t([O], 6), t([O], 7, 0.5, 1.5)];
    const res = t([B, O, H, W], 8);
    const want = gpu.noGrad(() =>
      ops.batchNorm2d(ops.conv2d(x, w, cb, { padding: 1, groups: 4 }), gm, bt, rm, rv, {
        training: false,
        residual: res,
        relu: true,
      }),
    );
    const { scale, shift } = ops.foldBatchNorm(gm, bt, rm, rv, cb);
    const got = gpu.noGrad(() =>
      ops.conv2dFused(x, w, shift, { padding: 1, groups: 4, scale, residual: res, relu: true }),
    );
    const [a, b] = [await got.read(), await want.read()];
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-4 * (1 + Math.abs(b[i])), `[${i}] ${v} vs ${b[i]}`));
    const wg = t([O, C / 4, 3, 3], 9);
    wg.requiresGrad = true;
    assert.throws(() => ops.conv2dFused(x, wg, null, { padding: 1, groups: 4 }), /records no gradient/);
  },
);

test('conv2d rejects bad shapes with clear errors', () => {
  const { gpu } = ctx;
  const x = Tensor.zeros(gpu, [1, 6, 4, 4]);
  assert.throws(
    () => ops.conv2d(x, Tensor.zeros(gpu, [8, 6, 3, 3]), null, { padding: 1, groups: 4 }),
    /cannot be split into 4 groups/,
  );
  assert.throws(() => ops.conv2d(x, Tensor.zeros(gpu, [8, 5, 3, 3]), null, { padding: 1 }), /expects 5 input channels/);
  assert.throws(() => ops.conv2d(Tensor.zeros(gpu, [6, 4, 4]), Tensor.zeros(gpu, [8, 6, 3, 3])), /NCHW/);
});

/**
 * Random BatchNorm running statistics, on the CPU and on the GPU.
 * @param {ops.Gpu} gpu
 * @param {number} C
 */
function runningStats(gpu, C) {
  const rm = random(C, 5, -0.5, 0.5);
  const rv = random(C, 6, 0.5, 1.5);
  return { rm, rv, rmT: Tensor.fromArray(gpu, rm), rvT: Tensor.fromArray(gpu, rv) };
}

// [2, 3, 4, 8]: planes of whole 8-vec4 runs (batchnorm.wgsl's one-channel-per-run path).
for (const [B, C, H, W] of [
  [2, 3, 4, 5],
  [4, 5, 1, 1],
  [1, 6, 3, 3],
  [3, 7, 2, 3],
  [2, 3, 4, 8],
]) {
  for (const training of [true, false]) {
    test(`batchNorm2d ${training ? 'train' : 'eval'} [${B},${C},${H},${W}]`, async () => {
      const { gpu } = ctx;
      const { rm, rv, rmT, rvT } = runningStats(gpu, C);
      await checkOp(gpu, {
        name: 'batchNorm2d',
        inputs: [
          { shape: [B, C, H, W], grad: true, lo: -2, hi: 3 },
          { shape: [C], grad: true, lo: 0.5, hi: 1.5 },
          { shape: [C], grad: true },
        ],
        gpuFn: ([x, g, b]) => ops.batchNorm2d(x, g, b, rmT, rvT, { training }),
        cpuFn: ([x, g, b]) => ref.batchNorm(x, [B, C, H, W], g, b, { training, runningMean: rm, runningVar: rv }).out,
      });
      if (training) {
        // Running stats: momentum 0.1, unbiased variance.
        const x = random(B * C * H * W, 7 * 31, -2, 3);
        const { mean, variance } = ref.batchNorm(x, [B, C, H, W], new Float64Array(C).fill(1), new Float64Array(C), {
          training: true,
        });
        const M = B * H * W;
        const gotMean = await rmT.read();
        const gotVar = await rvT.read();
        for (let c = 0; c < C; c++) {
          assert.ok(Math.abs(gotMean[c] - (0.9 * rm[c] + 0.1 * mean[c])) < 1e-5, `running_mean[${c}]`);
          assert.ok(
            Math.abs(gotVar[c] - (0.9 * rv[c] + (0.1 * variance[c] * M) / (M - 1))) < 1e-5,
            `running_var[${c}]`,
          );
        }
      }
    });
  }
}

for (const [training, [B, C, H, W]] of cases([
  [true, [2, 5, 3, 3]],
  [false, [2, 5, 3, 3]],
  [true, [2, 5, 4, 8]],
])) {
  test(
    `batchNorm2d ${training ? 'train' : 'eval'} [${B},${C},${H},${W}] with fused residual add and ` + `ReLU`,
    async () => {
      const { gpu } = ctx;
      const { rm, rv, rmT, rvT } = runningStats(gpu, C);
      await checkOp(gpu, {
        name: 'batchNorm2d+res+relu',
        inputs: [
          { shape: [B, C, H, W], grad: true, lo: -2, hi: 3 },
          { shape: [C], grad: true, lo: 0.5, hi: 1.5 },
          { shape: [C], grad: true },
          { shape: [B, C, H, W], grad: true },
        ],
        gpuFn: ([x, g, b, r]) => ops.batchNorm2d(x, g, b, rmT, rvT, { training, residual: r, relu: true }),
        cpuFn: ([x, g, b, r]) =>
          ref.relu(
            ref
              .batchNorm(x, [B, C, H, W], g, b, { training, runningMean: rm, runningVar: rv })
              .out.map((v, i) => v + r[i]),
          ),
        // One pre-ReLU value lies 4.5e-5 from the kink: a step of 1e-6 keeps differences on one side.
        h: 1e-6,
      });
    },
  );
}

for (const [B, C, H, W] of [
  [3, 4, 2, 3],
  [2, 4, 8, 4],
])
  test(
    `batchNorm2d train [${B},${C},${H},${W}] with fused ReLU only (the gradient mask applied inside the ` + `kernels)`,
    async () => {
      const { gpu } = ctx;
      const rmT = Tensor.zeros(gpu, [C]);
      const rvT = Tensor.full(gpu, [C], 1);
      await checkOp(gpu, {
        name: 'batchNorm2d+relu',
        inputs: [
          { shape: [B, C, H, W], grad: true, lo: -2, hi: 3 },
          { shape: [C], grad: true, lo: 0.5, hi: 1.5 },
          { shape: [C], grad: true },
        ],
        gpuFn: ([x, g, b]) => ops.batchNorm2d(x, g, b, rmT, rvT, { training: true, relu: true }),
        cpuFn: ([x, g, b]) => ref.relu(ref.batchNorm(x, [B, C, H, W], g, b, { training: true }).out),
        seed: 11,
        h: 1e-6,
      });
    },
  );

test('batchNorm2d training refuses one value per channel', () => {
  const { gpu } = ctx;
  /** @param {number[]} s */
  const z = (s) => Tensor.zeros(gpu, s);
  assert.throws(
    () => ops.batchNorm2d(z([1, 4, 1, 1]), z([4]), z([4]), z([4]), z([4]), { training: true }),
    /more than one value per channel/,
  );
});

/** @type {[string, number[], (x: Tensor) => Tensor, (x: Float64Array, shape: number[]) => Float64Array][]} */
const simple = [
  ['relu', [2, 5, 3, 3], (x) => ops.relu(x), (x) => ref.relu(x)],
  ['globalAvgPool', [2, 5, 3, 4], (x) => ops.globalAvgPool(x), (x, s) => ref.globalAvgPool(x, s)],
  ['globalAvgPool (1x1)', [3, 7, 1, 1], (x) => ops.globalAvgPool(x), (x, s) => ref.globalAvgPool(x, s)],
  // Past 256 values a channel the sums run a workgroup per channel: over vec4s, and lane by lane.
  [
    'globalAvgPool (workgroup sums, vec4s)',
    [1, 3, 20, 20],
    (x) => ops.globalAvgPool(x),
    (x, s) => ref.globalAvgPool(x, s),
  ],
  ['globalAvgPool (workgroup sums)', [1, 2, 13, 23], (x) => ops.globalAvgPool(x), (x, s) => ref.globalAvgPool(x, s)],
  ['pixelShuffle r2', [2, 12, 3, 5], (x) => ops.pixelShuffle(x, 2), (x, s) => ref.pixelShuffle(x, s, 2)],
  ['pixelShuffle r3', [1, 18, 2, 3], (x) => ops.pixelShuffle(x, 3), (x, s) => ref.pixelShuffle(x, s, 3)],
  ['spaceToDepth s2', [2, 3, 4, 6], (x) => ops.spaceToDepth(x, 2), (x, s) => ref.spaceToDepth(x, s, 2)],
  ['spaceToDepth s4', [1, 3, 8, 12], (x) => ops.spaceToDepth(x, 4), (x, s) => ref.spaceToDepth(x, s, 4)],
  ['upsampleNearest x3', [2, 3, 3, 5], (x) => ops.upsampleNearest(x, 3), (x, s) => ref.upsampleNearest(x, s, 3)],
  ['upsampleNearest x4', [1, 3, 2, 2], (x) => ops.upsampleNearest(x, 4), (x, s) => ref.upsampleNearest(x, s, 4)],
  ['reshape', [2, 3, 2, 2], (x) => ops.relu(ops.reshape(x, [6, 4])), (x) => ref.relu(x)],
];
for (const [name, shape, gpuFn, cpuFn] of simple) {
  test(`${name} ${JSON.stringify(shape)}`, async () => {
    // Keep relu's inputs away from its kink so finite differences are meaningful.
    const data =
      name === 'relu' || name === 'reshape'
        ? random(size(shape), 3).map((v) => (Math.abs(v) < 0.1 ? v + 0.3 : v))
        : undefined;
    await checkOp(ctx.gpu, {
      name,
      inputs: [{ shape, grad: true, data, lo: -3, hi: 3 }],
      gpuFn: ([x]) => gpuFn(x),
      cpuFn: ([x]) => cpuFn(x, shape),
    });
  });
}

// Split attention around a 1x1-conv gate: the pooling, the inline softmax, the weighted sum, and the
// gradients of z (both terms, written by one kernel) and of the gate through the logits. Planes with
// inner % 4 != 0 (lane by lane), over 64 lanes' vec4s (400), radix past 4 (two sweeps over g), 1x1.
for (const [B, R, C, H, W, zGrad] of cases([
  [2, 4, 5, 3, 3, true],
  [1, 4, 3, 2, 4, true],
  [3, 2, 6, 1, 1, true],
  [2, 4, 3, 20, 20, true],
  [2, 5, 2, 3, 4, true],
  [2, 4, 3, 2, 2, false],
])) {
  test(`splitAttend B${B} R${R} C${C} ${H}x${W}${zGrad ? '' : ' (z constant)'}`, async () => {
    const zs = [B, R * C, H, W];
    await checkOp(ctx.gpu, {
      name: 'splitAttend',
      inputs: [
        { shape: zs, grad: zGrad, lo: 0, hi: 2 },
        { shape: [R * C, C, 1, 1], grad: true, lo: -2, hi: 2 },
        { shape: [R * C], grad: true },
      ],
      gpuFn: ([z, w, b]) => ops.splitAttend(z, R, (gap) => ops.conv2d(gap, w, b)),
      cpuFn: ([z, w, b]) => {
        const gap = ref.globalAvgPool(ref.chunkSum(z, zs, R), [B, C, H, W]);
        const a = ref.radixSoftmax(ref.conv2d(gap, [B, C, 1, 1], w, [R * C, C, 1, 1], b, 0, 1), [B, R * C], R);
        return ref.chunkSum(ref.scaleChannels(a, z, zs), zs, R);
      },
    });
  });
}

// The inference gate (one kernel): fc1 -> eval BatchNorm (folded with fc1's bias) -> ReLU -> fc2,
// against the CPU composition. Hidden units and logits past one 64-lane round, SISN's widths.
for (const [B, C, hidden, outputs] of [
  [3, 5, 70, 20],
  [2, 20, 32, 80],
  [1, 64, 64, 256],
]) {
  test(`inferenceGate B${B} C${C} hidden ${hidden} -> ${outputs}`, async () => {
    const { gpu } = ctx;
    const host = {
      gap: random(B * C, 11, 0, 2),
      w1: random(hidden * C, 12),
      b1: random(hidden, 13),
      gamma: random(hidden, 14, 0.5, 1.5),
      beta: random(hidden, 15),
      mean: random(hidden, 16),
      variance: random(hidden, 17, 0.5, 1.5),
      w2: random(outputs * hidden, 18),
      b2: random(outputs, 19),
    };
    /** @type {Record<string, number[]>} */
    const shapes = { gap: [B, C, 1, 1], w1: [hidden, C, 1, 1], w2: [outputs, hidden, 1, 1] };
    const t = Object.fromEntries(
      Object.entries(host).map(([k, v]) => [k, Tensor.fromArray(gpu, v, shapes[k] ?? [v.length])]),
    );
    const { scale, shift } = ops.foldBatchNorm(t.gamma, t.beta, t.mean, t.variance, t.b1);
    const logits = gpu.noGrad(() => ops.inferenceGate(t.gap, t.w1, scale, shift, t.w2, t.b2));
    assert.equal(logits.shape, [B, outputs, 1, 1]);
    const pre = ref.conv2d(host.gap, [B, C, 1, 1], host.w1, [hidden, C, 1], host.b1, 0, 1);
    const h = ref.relu(
      ref.batchNorm(pre, [B, hidden, 1, 1], host.gamma, host.beta, {
        training: false,
        runningMean: host.mean,
        runningVar: host.variance,
      }).out,
    );
    const want = ref.conv2d(h, [B, hidden, 1, 1], host.w2, [outputs, hidden, 1], host.b2, 0, 1);
    assertClose(await logits.read(), want, { rtol: 1e-4, atol: 1e-4, what: 'logits' });
    [...Object.values(t), scale, shift, logits].forEach((x) => x.dispose());
  });
}

// The inference gate pooling its input from partial sums (pieces per sample, as a convolution's
// epilogue writes them), then attendSplits on its logits, against the CPU.
for (const [B, R, C, hidden, parts, H, W] of [
  [2, 4, 5, 70, 3, 2, 3],
  [1, 4, 64, 64, 7, 4, 4], // SISN's widths
  [3, 2, 3, 32, 1, 1, 5],
]) {
  test(`inferencePooledGate B${B} R${R} C${C} hidden ${hidden}, ${parts} pieces; attendSplits`, async () => {
    const { gpu } = ctx;
    const outputs = R * C;
    const host = {
      partials: random(outputs * B * parts, 21, 0, 2),
      w1: random(hidden * C, 22),
      gamma: random(hidden, 23, 0.5, 1.5),
      beta: random(hidden, 24),
      mean: random(hidden, 25),
      variance: random(hidden, 26, 0.5, 1.5),
      w2: random(outputs * hidden, 27),
      b2: random(outputs, 28),
    };
    /** @type {Record<string, number[]>} */
    const shapes = { w1: [hidden, C, 1, 1], w2: [outputs, hidden, 1, 1] };
    const t = Object.fromEntries(
      Object.entries(host).map(([k, v]) => [k, Tensor.fromArray(gpu, v, shapes[k] ?? [v.length])]),
    );
    const { scale, shift } = ops.foldBatchNorm(t.gamma, t.beta, t.mean, t.variance, null);
    const sums = { partials: t.partials, shape: /** @type {const} */ ([B, outputs, H, W]), parts };
    const gate = { w1: t.w1, scale, shift, w2: t.w2, b2: t.b2 };
    const logits = gpu.noGrad(() => ops.inferencePooledGate(sums, R, gate));
    assert.equal(logits.shape, [B, outputs, 1, 1]);
    const gap = new Float64Array(B * C);
    for (let b = 0; b < B; b++)
      for (let c = 0; c < C; c++)
        for (let k = 0; k < R; k++)
          for (let q = 0; q < parts; q++) gap[b * C + c] += host.partials[((k * C + c) * B + b) * parts + q] / (H * W);
    const pre = ref.conv2d(gap, [B, C, 1, 1], host.w1, [hidden, C, 1], null, 0, 1);
    const bn = ref.batchNorm(pre, [B, hidden, 1, 1], host.gamma, host.beta, {
      training: false,
      runningMean: host.mean,
      runningVar: host.variance,
    });
    const want = ref.conv2d(ref.relu(bn.out), [B, hidden, 1, 1], host.w2, [outputs, hidden, 1], host.b2, 0, 1);
    assertClose(await logits.read(), want, { rtol: 1e-4, atol: 1e-4, what: 'logits' });
    const zs = [B, outputs, H, W];
    const zv = Float64Array.from(random(B * outputs * H * W, 29, 0, 2));
    const z = Tensor.fromArray(gpu, zv, zs);
    const y = gpu.noGrad(() => ops.attendSplits(z, R, logits));
    const attended = ref.chunkSum(ref.scaleChannels(ref.radixSoftmax(want, [B, outputs], R), zv, zs), zs, R);
    assertClose(await y.read(), attended, { rtol: 1e-4, atol: 1e-4, what: 'attended splits' });
    [...Object.values(t), scale, shift, logits, z, y].forEach((x) => x.dispose());
  });
}

test('inferencePooledGate and attendSplits reject pieces, logits and radixes that do not fit the splits', () => {
  const { gpu } = ctx;
  /** @param {number[]} shape */
  const z = (shape) => Tensor.zeros(gpu, shape);
  const gate = { w1: z([8, 4, 1, 1]), scale: z([8]), shift: z([8]), w2: z([16, 8, 1, 1]), b2: z([16]) };
  const partials = z([16 * 2 * 3]);
  const sums = { partials, shape: /** @type {const} */ ([2, 16, 3, 3]), parts: 3 };
  const run = (/** @type {typeof sums} */ s, radix = 4) => gpu.noGrad(() => ops.inferencePooledGate(s, radix, gate));
  assert.throws(() => run({ ...sums, parts: 4 }), /^inferencePooledGate: 96 partial sums are not 4 per sample/);
  assert.throws(() => run(sums, 3), /^inferencePooledGate: 16 channels do not split into radix 3/);
  assert.throws(() => run(sums, 2), /^inferencePooledGate: fc1, fc2, .* do not chain from a \[B, 8, 1, 1\] input/);
  const logits = run(sums);
  const splits = z([2, 16, 3, 3]);
  const attend = (/** @type {Tensor} */ l, radix = 4) => gpu.noGrad(() => ops.attendSplits(splits, radix, l));
  assert.throws(() => attend(logits, 3), /^attendSplits: 16 channels do not split into radix 3/);
  const fewer = z([1, 16, 1, 1]);
  assert.throws(() => attend(fewer), /^attendSplits: logits \[1, 16, 1, 1\] must be \[2, 16, 1, 1\] for splits/);
  attend(logits).dispose();
  gate.w1.requiresGrad = true;
  assert.throws(() => ops.inferencePooledGate(sums, 4, gate), /records no gradient/);
  logits.requiresGrad = true;
  assert.throws(() => ops.attendSplits(splits, 4, logits), /records no gradient/);
  [...Object.values(gate), partials, logits, splits, fewer].forEach((t) => t.dispose());
});

test('inferenceGate rejects gradients, mismatched weights and too many hidden units', () => {
  const { gpu } = ctx;
  /** @param {number[]} shape */
  const z = (shape) => Tensor.zeros(gpu, shape);
  const gap = z([2, 4, 1, 1]);
  const [w1, s, w2, b2] = [z([8, 4, 1, 1]), z([8]), z([16, 8, 1, 1]), z([16])];
  assert.throws(
    () => ops.inferenceGate(gap, z([8, 5, 1, 1]), s, s, w2, b2),
    /do not chain from a \[B, 4, 1, 1\] input/,
  );
  assert.throws(() => ops.inferenceGate(z([2, 4, 2, 1]), w1, s, s, w2, b2), /must be \[B, C, 1, 1\]/);
  const wide = ops.gateHiddenMax(ctx.gpu) + 1;
  assert.throws(
    () => ops.inferenceGate(gap, z([wide, 4, 1, 1]), z([wide]), z([wide]), z([16, wide, 1, 1]), b2),
    /hidden units, at most/,
  );
  const [wideGap, wideW1] = [z([2, wide, 1, 1]), z([8, wide, 1, 1])];
  assert.throws(() => ops.inferenceGate(wideGap, wideW1, s, s, w2, b2), /input channels, at most/);
  w1.requiresGrad = true;
  assert.throws(() => ops.inferenceGate(gap, w1, s, s, w2, b2), /records no gradient/);
});

test('splitAttend refuses a gate that ignores the pooled splits', () => {
  const z = Tensor.zeros(ctx.gpu, [1, 8, 2, 2]);
  z.requiresGrad = true;
  assert.throws(() => ops.splitAttend(z, 4, () => Tensor.zeros(ctx.gpu, [1, 8, 1, 1])), /do not depend on its input/);
  assert.throws(() => ops.splitAttend(z, 4, () => Tensor.zeros(ctx.gpu, [1, 4, 1, 1])), /gate gave \[1, 4, 1, 1\]/);
  ctx.gpu.tape.clear();
  z.dispose();
});

test('elementwise add/sub/mul/affine gradients', async () => {
  const s = [3, 7];
  await checkOp(ctx.gpu, {
    name: 'add',
    inputs: [
      { shape: s, grad: true },
      { shape: s, grad: true },
    ],
    gpuFn: ([a, b]) => ops.add(a, b),
    cpuFn: ([a, b]) => a.map((v, i) => v + b[i]),
  });
  await checkOp(ctx.gpu, {
    name: 'sub',
    inputs: [
      { shape: s, grad: true },
      { shape: s, grad: true },
    ],
    gpuFn: ([a, b]) => ops.sub(a, b),
    cpuFn: ([a, b]) => a.map((v, i) => v - b[i]),
  });
  await checkOp(ctx.gpu, {
    name: 'mul',
    inputs: [
      { shape: s, grad: true },
      { shape: s, grad: true },
    ],
    gpuFn: ([a, b]) => ops.mul(a, b),
    cpuFn: ([a, b]) => a.map((v, i) => v * b[i]),
  });
  await checkOp(ctx.gpu, {
    name: 'affine',
    inputs: [{ shape: s, grad: true }],
    gpuFn: ([a]) => ops.affine(a, -2.5, 1),
    cpuFn: ([a]) => a.map((v) => -2.5 * v + 1),
  });
  // A tensor used twice gets the sum of both gradients.
  await checkOp(ctx.gpu, {
    name: 'x*x+x',
    inputs: [{ shape: s, grad: true }],
    gpuFn: ([a]) => ops.add(ops.mul(a, a), a),
    cpuFn: ([a]) => a.map((v) => v * v + v),
  });
});

for (const shape of [
  [1, 3, 1, 1],
  [2, 3, 5, 7],
  [4, 3, 8, 8],
]) {
  test(`l1Loss ${JSON.stringify(shape)}`, async () => {
    const n = size(shape);
    const target = random(n, 99, 0, 255).map(Math.round);
    // Predictions at least 0.05 away from the target: |.| is smooth there.
    const pred = target.map((t, i) => t + (i % 2 ? 1 : -1) * (0.05 + (i % 7)));
    await checkOp(ctx.gpu, {
      name: 'l1Loss',
      inputs: [
        { shape, grad: true, data: pred },
        { shape, data: target },
      ],
      gpuFn: ([p, t]) => ops.l1Loss(p, t),
      cpuFn: ([p, t]) => Float64Array.of(ref.l1(p, t)),
    });
  });
}

test('l1Loss gradient is 0 where prediction equals target (PyTorch sign convention)', async () => {
  const { gpu } = ctx;
  const p = Tensor.fromArray(gpu, [1, 2, 3, 4]);
  p.requiresGrad = true;
  const loss = ops.l1Loss(p, Tensor.fromArray(gpu, [1, 0, 3, 5]));
  gpu.tape.backward(loss);
  assert.equal([...(await gradOf(p).read())], [0, 0.25, 0, -0.25]);
});

test('backward computes no gradient for inputs that do not need one, and frees saved tensors', async () => {
  const { gpu } = ctx;
  await gpu.sync();
  const inUse = gpu.pool.inUseBytes;
  const x = Tensor.fromArray(gpu, random(2 * 4 * 5 * 5, 1), [2, 4, 5, 5]);
  const w = Tensor.fromArray(gpu, random(8 * 4 * 9, 2), [8, 4, 3, 3]);
  w.requiresGrad = true;
  const dispatches = gpu.recorder.dispatchCount;
  const loss = gpu.scope(() => ops.l1Loss(ops.conv2d(x, w, null, { padding: 1 }), Tensor.zeros(gpu, [2, 8, 5, 5])));
  const forward = gpu.recorder.dispatchCount - dispatches;
  gpu.tape.backward(loss);
  // l1 backward, weight gradient, accumulate into w.grad (+ its zero fill): no input-gradient conv.
  assert.ok(gpu.recorder.dispatchCount - dispatches - forward <= 6, 'an unneeded gradient was computed');
  assert.is(x.grad, null);
  assert.is(gpu.tape.length, 0);
  loss.dispose();
  x.dispose();
  w.dispose();
  await gpu.sync();
  assert.is(gpu.pool.inUseBytes, inUse, 'saved activations or gradients leaked');
});

test('Adam: ten steps match torch.optim.Adam to 1e-6 relative; clipping; MultiStepLR', async () => {
  const { gpu } = ctx;
  const params = new ops.ParameterSet(gpu, [
    { name: 'a', shape: [5, 3] },
    { name: 'b', shape: [7] },
    { name: 'unused', shape: [4] },
  ]);
  const a0 = random(15, 1);
  const b0 = random(7, 2);
  params.set('a', a0);
  params.set('b', b0);
  params.set('unused', Float32Array.of(1, 2, 3, 4));
  const opt = new ops.Adam(params, { lr: 0.01 });
  const sched = new ops.MultiStepLR(opt, [4, 8], 0.5);
  const cpu = { a: Float32Array.from(a0), b: Float32Array.from(b0) };
  /** @type {Record<'a' | 'b', [Float32Array, Float32Array]>} */
  const state = { a: [new Float32Array(15), new Float32Array(15)], b: [new Float32Array(7), new Float32Array(7)] };
  const targetA = Tensor.fromArray(gpu, random(15, 3), [5, 3]);
  for (let step = 1; step <= 10; step++) {
    const lr = sched.at(step - 1);
    // loss = sum((a - t)^2) + sum(b^3): gradients 2(a - t) and 3b^2.
    params.zeroGrad();
    const a = params.get('a');
    const b = params.get('b');
    // Two backward passes accumulate into the same gradient arena.
    const sq = gpu.scope(() => {
      const d = ops.sub(a, targetA);
      return ops.mul(d, d);
    });
    gpu.tape.backward(sq, Tensor.full(gpu, [5, 3], 1));
    const cube = gpu.scope(() => ops.mul(ops.mul(b, b), b));
    gpu.tape.backward(cube, Tensor.full(gpu, [7], 1));
    [sq, cube].forEach((t) => t.dispose());
    const t = random(15, 3);
    const ga = cpu.a.map((v, i) => Math.fround(Math.fround(v - t[i]) * 2));
    const gb = cpu.b.map((v) => (Math.fround(Math.fround(v * v) * v) === 0 ? 0 : Math.fround(3 * v * v)));
    ref.adamStep(cpu.a, ga, ...state.a, step, { lr });
    ref.adamStep(cpu.b, gb, ...state.b, step, { lr });
    opt.update();
  }
  assert.is(opt.lr, 0.0025);
  /** @type {(got: Float32Array, want: Float32Array, what: string) => void} */
  const relCheck = (got, want, what) =>
    got.forEach((v, i) =>
      assert.ok(Math.abs(v - want[i]) <= 1e-6 * Math.max(Math.abs(want[i]), 1e-3), `${what}[${i}]: ${v} vs ${want[i]}`),
    );
  relCheck(await params.get('a').read(), cpu.a, 'a');
  relCheck(await params.get('b').read(), cpu.b, 'b');
  assert.equal([...(await params.get('unused').read())], [1, 2, 3, 4], 'a parameter without gradient must not move');
  // Value clipping clamps every gradient before the step.
  const clipped = new ops.ParameterSet(gpu, [{ name: 'p', shape: [2] }]);
  clipped.set('p', Float32Array.of(0, 0));
  clipped.grads.write(Float32Array.from({ length: clipped.length }, (_, i) => (i === 0 ? 100 : i === 1 ? -0.5 : 0)));
  const copt = new ops.Adam(clipped, { lr: 0.1, gradClip: 1 });
  copt.update();
  assert.ok(Math.abs((await copt.expAvg.read())[0] - 0.1) < 1e-7, 'clipped first moment');
  [params, clipped].forEach((p) => p.dispose());
  [opt, copt].forEach((o) => o.dispose());
});

test('every shader that uses workgroup barriers passes race detection', () => {
  const x = random(240, 1);
  // reduce.wgsl: 3 channels of [2, 3, 40], every entry and mode.
  // batch, channels, inner, scale, masked, accumulate, eps, momentum, unbias (then moments_merge's
  // parts, x_blocks, columns, width: 0, that entry has no barriers).
  const reduceUniform = new Uint32Array(16);
  reduceUniform.set([2, 3, 40, 0, 0, 0]);
  new Float32Array(reduceUniform.buffer).set([1], 3);
  new Float32Array(reduceUniform.buffer).set([1e-5, 0.1, 80 / 79], 6);
  // attention.wgsl: 3 pairs (B 1, C 3) of radix 2, planes of 40.
  const splitUniform = new Uint32Array([3, 3, 40, 2, 0, 0, 0, 0]);
  const l2Uniform = new Uint32Array([2, 130, 0, 0]);
  new Float32Array(l2Uniform.buffer)[2] = 1e-12;
  new Float32Array(splitUniform.buffer)[4] = 1 / 40;
  /**
   * A race-detection run per shader: its source edits, workgroup count, entries with their override
   * constants, and the buffers of group 0 by binding.
   * @type {Record<string, { source?: (code: string) => string, groups?: number[],
   *   runs: [string, Record<string, number>][], buffers: Record<number, Float32Array | Uint32Array> }>}
   */
  const files = {
    'reduce.wgsl': {
      runs: [
        ['channel_sum', { MODE: 0 }],
        ['channel_sum', { MODE: 1 }],
        ['channel_sum', { MODE: 2 }],
        ['moments', {}],
        ['bn_backward', {}],
      ],
      buffers: {
        0: new Float32Array(12),
        1: x,
        2: x,
        3: new Float32Array(12).fill(1),
        4: reduceUniform,
        5: new Float32Array(3),
        6: x,
        7: new Float32Array(3),
        8: new Float32Array(3),
      },
    },
    'attention.wgsl': {
      runs: [
        ['pool_splits', {}],
        ['attend_backward', {}],
      ],
      buffers: { 0: new Float32Array(6), 1: x, 2: x, 3: random(6, 2), 4: splitUniform, 5: new Float32Array(6) },
    },
    // The staged forward variant (its barriers are off by default): 5 input channels (staging
    // rounds of 2, 2 and 1 in alternating halves), 4 outputs, 3x6, 3x3, one workgroup of 16.
    'conv2d.wgsl': {
      source: (code) =>
        code
          .replace('const STAGE: bool = false;', 'const STAGE: bool = true;')
          .replace('const WG: u32 = 64u;', 'const WG: u32 = 16u;'),
      groups: [1, 1, 1],
      runs: [['forward', { K: 3 }]],
      buffers: {
        0: new Float32Array(72),
        1: random(90, 2),
        2: random(720, 3),
        3: new Float32Array(4),
        // batch, cin, h, w, cout, hout, wout, groups, pad_y, pad_x, stride, dilation, has_bias,
        // oc_blocks, x_blocks, out_pad, then the epilogue's flags.
        4: new Uint32Array([1, 5, 3, 6, 4, 3, 6, 1, 1, 1, 1, 1, 0, 1, 1, 16, 0, 0, 0, 0, 0, 0, 0, 0]),
        5: new Float32Array(4),
        6: new Float32Array(72),
      },
    },
    // dense.wgsl: 3 x 20 times 20 x 5 with bias, two chunks of K (16 and 4), one workgroup.
    'dense.wgsl': {
      groups: [1, 1, 1],
      runs: [['matmul', {}]],
      buffers: {
        0: new Float32Array(15),
        1: random(60, 4),
        2: random(100, 5),
        3: random(5, 6),
        4: new Uint32Array([3, 5, 20, 20, 1, 5, 1, 1, 0, 0, 0, 0]),
      },
    },
    // l2norm.wgsl: 2 rows of 130 (lanes take 2 or 3 values each).
    'l2norm.wgsl': {
      groups: [2, 1, 1],
      runs: [
        ['forward', {}],
        ['backward', {}],
      ],
      buffers: { 0: new Float32Array(260), 1: random(260, 7), 2: random(260, 8), 3: l2Uniform },
    },
  };
  for (const file of readdirSync(SHADER_DIR).filter((f) => f.endsWith('.wgsl'))) {
    const code = preprocess(file.slice(0, -5), readFileSync(`${SHADER_DIR}/${file}`, 'utf8'), {
      subgroups: false,
      f16: false,
    });
    if (!/workgroupBarrier|storageBarrier/.test(code)) continue;
    assert.ok(files[file], `${file} uses barriers: give it a race-detection run here`);
    const { source = (c) => c, groups = [3, 1, 1], runs, buffers } = files[file];
    for (const [entry, constants] of runs) {
      const result = detectRaces(source(code), entry, groups, { 0: buffers }, { constants });
      const what = `${file} ${entry} ${JSON.stringify(constants)}`;
      assert.equal(result.errors, [], `${what}: ${result.errors.join('; ')}`);
      assert.equal(
        result.races.map((r) => r.message),
        [],
        `${what} has races`,
      );
    }
  }
});

test.run();
