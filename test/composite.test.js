// A small composed graph, conv -> BN -> ReLU -> split attention (the SplitAttention module) -> conv
// -> L1, checked end to end against finite differences of the CPU reference.
import { suite } from 'uvu';
import * as ops from '../dist/index.js';
import { Tensor, SplitAttention } from '../dist/index.js';
import * as ref from './reference.js';
import { withGpu, random, cases } from './helpers.js';
import { checkOp } from './gradcheck.js';

const test = suite('composite');
const ctx = withGpu(test);

const B = 2,
  C = 4,
  H = 5,
  W = 5,
  R = 4,
  I = 32;
/** @type {Record<string, number[]>} */
const shapes = {
  x: [B, C, H, W],
  w1: [C, C, 3, 3],
  b1: [C],
  g1: [C],
  be1: [C],
  wsa: [R * C, 1, 3, 3],
  g0: [R * C],
  be0: [R * C],
  wf1: [I, C, 1, 1],
  bf1: [I],
  gf: [I],
  bef: [I],
  wf2: [R * C, I, 1, 1],
  bf2: [R * C],
  w2: [3, C, 3, 3],
  b2: [3],
};
const names = Object.keys(shapes);
const target = random(B * 3 * H * W, 77, -1, 1);

/** @param {Record<string, Float64Array>} v */
function cpuGraph(v) {
  /** @type {(x: Float64Array, s: number[], g: Float64Array, b: Float64Array) => Float64Array} */
  const bn = (x, s, g, b) => ref.batchNorm(x, s, g, b, { training: true }).out;
  let y = ref.conv2d(v.x, shapes.x, v.w1, shapes.w1, v.b1, 1, 1);
  y = ref.relu(bn(y, [B, C, H, W], v.g1, v.be1));
  const z = ref.relu(bn(ref.conv2d(y, [B, C, H, W], v.wsa, shapes.wsa, null, 1, R), [B, R * C, H, W], v.g0, v.be0));
  const gap = ref.globalAvgPool(ref.chunkSum(z, [B, R * C, H, W], R), [B, C, H, W]);
  let a = ref.conv2d(gap, [B, C, 1, 1], v.wf1, shapes.wf1, v.bf1, 0, 1);
  a = ref.relu(bn(a, [B, I, 1, 1], v.gf, v.bef));
  a = ref.radixSoftmax(ref.conv2d(a, [B, I, 1, 1], v.wf2, shapes.wf2, v.bf2, 0, 1), [B, R * C], R);
  const sa = ref.chunkSum(ref.scaleChannels(a, z, [B, R * C, H, W]), [B, R * C, H, W], R);
  const out = ref.conv2d(sa, [B, C, H, W], v.w2, shapes.w2, v.b2, 1, 1);
  return Float64Array.of(ref.l1(out, target));
}

// The module's state_dict names for the split-attention inputs of the graph.
/** @type {Record<string, string>} */
const moduleNames = {
  'sa.conv.weight': 'wsa',
  'sa.bn0.weight': 'g0',
  'sa.bn0.bias': 'be0',
  'sa.conv1x1_1.weight': 'wf1',
  'sa.conv1x1_1.bias': 'bf1',
  'sa.bn1.weight': 'gf',
  'sa.bn1.bias': 'bef',
  'sa.conv1x1_2.weight': 'wf2',
  'sa.conv1x1_2.bias': 'bf2',
};

/**
 * @param {ops.Gpu} gpu
 * @param {Record<string, Tensor>} v
 */
function gpuGraph(gpu, v) {
  /** @type {(n: number) => [Tensor, Tensor]} */
  const running = (n) => [Tensor.zeros(gpu, [n]), Tensor.full(gpu, [n], 1)];
  /** @type {(x: Tensor, g: Tensor, b: Tensor) => Tensor} */
  const bn = (x, g, b) => ops.batchNorm2d(x, g, b, ...running(g.size), { training: true });
  const y = ops.relu(bn(ops.conv2d(v.x, v.w1, v.b1, { padding: 1 }), v.g1, v.be1));
  const sa = new SplitAttention('sa.', C, R);
  const buffers = new Map(/** @type {[string, Tensor][]} */ ([]));
  for (const [bnName, n] of cases([
    ['sa.bn0.', R * C],
    ['sa.bn1.', I],
  ])) {
    const [mean, variance] = running(n);
    buffers.set(`${bnName}running_mean`, mean).set(`${bnName}running_var`, variance);
  }
  // The module reads its parameters by name only: the graph's own tensors stand in for a ParameterSet.
  const params = /** @type {ops.ParameterSet} */ (
    /** @type {unknown} */ ({ get: (/** @type {string} */ name) => v[moduleNames[name]] })
  );
  const attended = sa.forward({ params, buffers, counters: new Map(), training: true }, y);
  const out = ops.conv2d(attended, v.w2, v.b2, { padding: 1 });
  return ops.l1Loss(out, Tensor.fromArray(gpu, target, out.shape));
}

test('conv -> BN -> ReLU -> split attention -> conv -> L1: every gradient equals finite differences', async () => {
  const { gpu } = ctx;
  const gammaLike = new Set(['g1', 'g0', 'gf']);
  await checkOp(gpu, {
    name: 'composite',
    inputs: names.map((n, i) => ({
      shape: shapes[n],
      grad: true,
      data: gammaLike.has(n)
        ? random(
            shapes[n].reduce((a, b) => a * b, 1),
            100 + i,
            0.8,
            1.2,
          )
        : random(
            shapes[n].reduce((a, b) => a * b, 1),
            100 + i,
            -0.6,
            0.6,
          ),
    })),
    gpuFn: (ts) => gpu.scope(() => gpuGraph(gpu, Object.fromEntries(names.map((n, i) => [n, ts[i]])))),
    cpuFn: (arrs) => cpuGraph(Object.fromEntries(names.map((n, i) => [n, arrs[i]]))),
    samples: 10,
    h: 1e-4,
    gradTol: 2e-3,
    // Loss gradients here are ~1e-3..1e-1; the conv bias before BN has an exactly-zero gradient.
    gradFloor: 1e-3,
  });
});

test.run();
