// Every kernel variant of every conv role (convVariants) against the CPU references, on shapes
// that are awkward for the tiles: odd channel counts, groups, 1x1 and 3x3, widths that are not a
// multiple of a tile, maps smaller than a tile, batch 1-3 (and split-K chunks that end mid-image).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Tensor,
  conv2d,
  conv2dWithMoments,
  conv2dFused,
  conv2dFusedWithSums,
  conv2dInputGrad,
  conv2dWeightGrad,
  convVariants,
  batchNorm2d,
} from '../dist/index.js';
import * as ref from './reference.js';
import { withGpu, random, assertClose, cases } from './helpers.js';

const test = suite('ops-conv');
const ctx = withGpu(test);
const tolerance = { rtol: 1e-4, atol: 1e-4 };

for (const [B, C, H, W, O, K, G] of [
  [1, 3, 5, 7, 5, 3, 1], // width under every column tile
  [2, 8, 6, 19, 36, 3, 4], // grouped, 9 output channels per group (between the 8 and 16 tiles)
  [3, 6, 4, 9, 6, 1, 1], // 1x1, batch 3
  [2, 18, 3, 5, 12, 1, 2], // 1x1 grouped: 9 input channels per group (weight gradient: 4 per lane, the last lane 1)
  [1, 264, 2, 3, 8, 1, 1], // 1x1 with 66 lanes of 4 input channels: more than one workgroup per block
  [2, 20, 3, 3, 20, 3, 2], // map smaller than a tile
  [1, 48, 4, 5, 16, 3, 1], // SISN x4's head: 48 input channels, lanes per block not dividing a workgroup
]) {
  const pad = (K - 1) / 2;
  const ws = [O, C / G, K, K];
  const shape = `B${B} ${C}->${O} ${H}x${W} k${K} groups ${G}`;
  const data = () => {
    const { gpu } = ctx;
    const [xs, wv, gs, bs] = [
      random(B * C * H * W, 21),
      random(O * (C / G) * K * K, 22),
      random(B * O * H * W, 23),
      random(O, 24),
    ];
    const [x, w, g, bias] = [
      Tensor.fromArray(gpu, xs, [B, C, H, W]),
      Tensor.fromArray(gpu, wv, ws),
      Tensor.fromArray(gpu, gs, [B, O, H, W]),
      Tensor.fromArray(gpu, bs, [O]),
    ];
    return { xs, wv, gs, bs, x, w, g, bias, dispose: () => [x, w, g, bias].forEach((t) => t.dispose()) };
  };

  test(`every forward variant: ${shape}`, async () => {
    const { gpu } = ctx;
    const d = data();
    const want = ref.conv2d(d.xs, [B, C, H, W], d.wv, ws, d.bs, pad, G);
    for (const { name } of convVariants(gpu, 'forward')) {
      // Under gradients (weights packed per call) and without (packed once, cached).
      const y = conv2d(d.x, d.w, d.bias, { padding: pad, groups: G, variant: name });
      const z = gpu.noGrad(() => conv2d(d.x, d.w, d.bias, { padding: pad, groups: G, variant: name }));
      assertClose(await y.read(), want, { ...tolerance, what: `forward ${name}` });
      assertClose(await z.read(), want, { ...tolerance, what: `forward ${name} (no grad)` });
      [y, z].forEach((t) => t.dispose());
    }
    d.dispose();
  });

  // The gradients: each variant of a role against the role's CPU reference.
  /**
   * @type {Record<'inputGrad' | 'weightGrad', [(d: ReturnType<typeof data>) => Float64Array,
   *   (d: ReturnType<typeof data>, variant: string) => Tensor]>}
   */
  const gradients = {
    inputGrad: [
      (d) => ref.conv2dInputGrad(d.gs, [B, C, H, W], d.wv, ws, pad, G),
      (d, variant) => conv2dInputGrad(d.g, d.w, { padding: pad, groups: G, variant }),
    ],
    weightGrad: [
      (d) => ref.conv2dWeightGrad(d.xs, [B, C, H, W], d.gs, ws, pad, G),
      (d, variant) => conv2dWeightGrad(d.x, d.g, ws, { padding: pad, groups: G, variant }),
    ],
  };
  for (const [role, [reference, run]] of /** @type {[keyof typeof gradients, typeof gradients.inputGrad][]} */ (
    Object.entries(gradients)
  )) {
    test(`every ${role} variant: ${shape}`, async () => {
      const d = data();
      const want = reference(d);
      for (const { name } of convVariants(ctx.gpu, role)) {
        const got = run(d, name);
        assertClose(await got.read(), want, { ...tolerance, what: `${role} ${name}` });
        got.dispose();
        if (role === 'weightGrad') {
          // Into a parameter's gradient: added in the same pass, `into` returned.
          const before = random(want.length, 31);
          const into = Tensor.fromArray(ctx.gpu, before, ws);
          assert.is(conv2dWeightGrad(d.x, d.g, ws, { padding: pad, groups: G, variant: name }, into), into);
          assertClose(
            await into.read(),
            want.map((v, i) => v + before[i]),
            { ...tolerance, what: `${role} ${name} into a gradient` },
          );
          into.dispose();
        }
      }
      d.dispose();
    });
  }
}

test('every forward variant applies the fused epilogue (scale, shift, residual, ReLU)', async () => {
  const { gpu } = ctx;
  const [B, C, H, W, O, G] = [2, 8, 5, 11, 36, 4];
  const x = Tensor.fromArray(gpu, random(B * C * H * W, 31), [B, C, H, W]);
  const w = Tensor.fromArray(gpu, random(O * (C / G) * 9, 32), [O, C / G, 3, 3]);
  const [scale, shift] = [Tensor.fromArray(gpu, random(O, 33), [O]), Tensor.fromArray(gpu, random(O, 34), [O])];
  const residual = Tensor.fromArray(gpu, random(B * O * H * W, 35), [B, O, H, W]);
  const options = { padding: 1, groups: G, scale, residual, relu: true };
  const want = await gpu.noGrad(() => conv2dFused(x, w, shift, options)).read();
  for (const { name } of convVariants(gpu, 'forward')) {
    const y = gpu.noGrad(() => conv2dFused(x, w, shift, { ...options, variant: name }));
    assertClose(await y.read(), want, { ...tolerance, what: `fused ${name}` });
    y.dispose();
  }
  [x, w, scale, shift, residual].forEach((t) => t.dispose());
});

test(
  'every forward variant writes the moments of its output that a training BatchNorm takes (runs cut by the ' +
    'width, data far from zero)',
  async () => {
    const { gpu } = ctx;
    for (const [B, C, H, W, O, K, G] of cases([
      [2, 8, 5, 11, 36, 3, 4],
      [3, 4, 1, 1, 5, 1, 1], // pooled features: one value a run
    ])) {
      const x = Tensor.fromArray(gpu, random(B * C * H * W, 41), [B, C, H, W]);
      const w = Tensor.fromArray(gpu, random(O * (C / G) * K * K, 42), [O, C / G, K, K]);
      const bias = Tensor.fromArray(gpu, random(O, 43, 300, 500), [O]);
      for (const { name } of convVariants(gpu, 'forward')) {
        const { out, moments } = gpu.noGrad(() =>
          conv2dWithMoments(x, w, bias, { padding: (K - 1) / 2, groups: G, variant: name }),
        );
        const ys = await out.read();
        // momentum 1: the running statistics become the batch mean and unbiased variance.
        const [runningMean, runningVar] = [Tensor.zeros(gpu, [O]), Tensor.zeros(gpu, [O])];
        const y = gpu.noGrad(() =>
          batchNorm2d(out, Tensor.full(gpu, [O], 1), Tensor.zeros(gpu, [O]), runningMean, runningVar, {
            training: true,
            momentum: 1,
            moments,
          }),
        );
        const { mean, variance } = ref.batchNorm(ys, [B, O, H, W], new Float64Array(O).fill(1), new Float64Array(O), {
          training: true,
        });
        const m = B * H * W;
        assertClose(await runningMean.read(), mean, {
          rtol: 1e-6,
          atol: 0,
          what: `${name} [${B},${O},${H},${W}] mean`,
        });
        assertClose(
          await runningVar.read(),
          variance.map((v) => (v * m) / (m - 1)),
          { rtol: 1e-3, atol: 1e-3, what: `${name} [${B},${O},${H},${W}] variance` },
        );
        const want = ref.batchNorm(ys, [B, O, H, W], new Float64Array(O).fill(1), new Float64Array(O), {
          training: true,
        }).out;
        assertClose(await y.read(), want, { rtol: 1e-3, atol: 1e-3, what: `${name} normalised` });
        [out, moments.partials, runningMean, runningVar, y].forEach((t) => t.dispose());
      }
      [x, w, bias].forEach((t) => t.dispose());
    }
  },
);

test('every forward variant sums its output per channel in pieces (runs cut by the width, batch 2)', async () => {
  const { gpu } = ctx;
  for (const [B, C, H, W, O, K, G] of cases([
    [2, 8, 5, 11, 36, 3, 4],
    [1, 6, 3, 2, 5, 1, 1],
  ])) {
    const x = Tensor.fromArray(gpu, random(B * C * H * W, 51), [B, C, H, W]);
    const w = Tensor.fromArray(gpu, random(O * (C / G) * K * K, 52), [O, C / G, K, K]);
    const shift = Tensor.fromArray(gpu, random(O, 53), [O]);
    for (const { name } of convVariants(gpu, 'forward')) {
      const options = { padding: (K - 1) / 2, groups: G, relu: true, variant: name };
      const { out, sums } = gpu.noGrad(() => conv2dFusedWithSums(x, w, shift, options));
      assert.equal(sums.shape, [B, O, H, W]);
      const [ys, pieces] = [await out.read(), await sums.partials.read()];
      assert.is(pieces.length, O * B * sums.parts, `${name}: pieces`);
      const got = new Float64Array(B * O);
      const want = new Float64Array(B * O);
      for (let o = 0; o < O; o++)
        for (let b = 0; b < B; b++) {
          for (let q = 0; q < sums.parts; q++) got[b * O + o] += pieces[(o * B + b) * sums.parts + q];
          for (let i = 0; i < H * W; i++) want[b * O + o] += ys[(b * O + o) * H * W + i];
        }
      assertClose(got, want, { ...tolerance, what: `${name} [${B},${O},${H},${W}] sums` });
      [out, sums.partials].forEach((t) => t.dispose());
    }
    [x, w, shift].forEach((t) => t.dispose());
  }
});

test('conv variants: the default first, unique names, unknown names rejected with the valid ones', () => {
  const { gpu } = ctx;
  for (const role of /** @type {const} */ (['forward', 'inputGrad', 'weightGrad'])) {
    const names = convVariants(gpu, role).map((v) => v.name);
    assert.ok(names.length > 1, `${role} has variants`);
    assert.is(new Set(names).size, names.length, `${role} names are unique`);
  }
  const x = Tensor.zeros(gpu, [1, 4, 3, 3]);
  const w = Tensor.zeros(gpu, [4, 4, 3, 3]);
  assert.throws(
    () => gpu.noGrad(() => conv2d(x, w, null, { padding: 1, variant: 'nope' })),
    /conv2d forward: no variant 'nope' on this adapter \(o16x8w64/,
  );
  [x, w].forEach((t) => t.dispose());
});

test.run();
