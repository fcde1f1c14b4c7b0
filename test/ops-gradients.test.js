// Where gradients land: a leaf's first gradient adopted as its .grad, a second one added in place,
// parameters' gradients (the arena) and a twice-used tensor's second gradient (a convolution's
// input gradient) added by the kernels that compute them; and BatchNorm's one-pass statistics on
// data far from zero.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as ops from '../dist/index.js';
import { Tensor } from '../dist/index.js';
import * as ref from './reference.js';
import { withGpu, random, assertClose, gradOf } from './helpers.js';
import { checkOp } from './gradcheck.js';

const test = suite('ops-gradients');
const ctx = withGpu(test);

test('a leaf used twice gets the sum of its gradients; a leaf whose gradient is shared keeps its own', async () => {
  const { gpu } = ctx;
  const xs = random(10, 3);
  const x = Tensor.fromArray(gpu, xs);
  x.requiresGrad = true;
  // d/dx sum(x * x + x) = 2x + 1: the first gradient is adopted, the second added in place.
  gpu.scope(() => gpu.tape.backward(ops.add(ops.mul(x, x), x), Tensor.full(gpu, [10], 1)));
  assertClose(
    await gradOf(x).read(),
    xs.map((v) => 2 * v + 1),
    { what: 'x.grad' },
  );
  // add() hands one gradient tensor to both inputs: each leaf must end with its own.
  const a = Tensor.fromArray(gpu, random(10, 4));
  const b = Tensor.fromArray(gpu, random(10, 5));
  a.requiresGrad = b.requiresGrad = true;
  gpu.scope(() => gpu.tape.backward(ops.add(a, b), Tensor.full(gpu, [10], 2)));
  gpu.scope(() => gpu.tape.backward(ops.scale(a, 3), Tensor.full(gpu, [10], 1)));
  assert.equal([...(await gradOf(a).read())], new Array(10).fill(5), 'a.grad: 2 then + 3');
  assert.equal([...(await gradOf(b).read())], new Array(10).fill(2), 'b.grad unchanged by a second backward through a');
  [x, a, b].forEach((t) => t.dispose());
});

test(
  'parameters in the arena: conv bias and BatchNorm gamma/beta gradients added by their kernels equal those of ' +
    'plain leaves, and accumulate',
  async () => {
    const { gpu } = ctx;
    const [B, C, H, W, O] = [2, 3, 5, 6, 4];
    const specs = [
      { name: 'w', shape: [O, C, 3, 3], data: random(O * C * 9, 11, -0.3, 0.3) },
      { name: 'bias', shape: [O], data: random(O, 12) },
      { name: 'gamma', shape: [O], data: random(O, 13, 0.5, 1.5) },
      { name: 'beta', shape: [O], data: random(O, 14) },
    ];
    const x = Tensor.fromArray(gpu, random(B * C * H * W, 15), [B, C, H, W]);
    const seed = Tensor.fromArray(gpu, random(B * O * H * W, 16), [B, O, H, W]);
    /** @param {Tensor[]} params w, bias, gamma, beta */
    const run = ([w, bias, gamma, beta]) =>
      gpu.scope(() => {
        const y = ops.conv2d(x, w, bias, { padding: 1 });
        gpu.tape.backward(
          ops.batchNorm2d(y, gamma, beta, Tensor.zeros(gpu, [O]), Tensor.full(gpu, [O], 1), {
            training: true,
            relu: true,
          }),
          seed,
        );
      });
    const leaves = specs.map((s) => {
      const t = Tensor.fromArray(gpu, s.data, s.shape);
      t.requiresGrad = true;
      return t;
    });
    run(leaves);
    const params = new ops.ParameterSet(gpu, specs);
    specs.forEach((s) => params.set(s.name, s.data));
    const arena = specs.map((s) => params.get(s.name));
    run(arena);
    run(arena);
    for (const [i, s] of specs.entries()) {
      const want = await gradOf(leaves[i]).read();
      assertClose(
        await gradOf(arena[i]).read(),
        want.map((v) => 2 * v),
        { rtol: 1e-4, atol: 1e-5, what: `${s.name}.grad after two steps` },
      );
    }
    params.zeroGrad();
    run(arena);
    assertClose(await gradOf(arena[2]).read(), await gradOf(leaves[2]).read(), {
      rtol: 1e-4,
      atol: 1e-5,
      what: 'gamma.grad after zeroGrad and one step',
    });
    params.dispose();
    [x, seed, ...leaves].forEach((t) => t.dispose());
  },
);

test(
  'a tensor read by a residual add and a convolution: the convolution adds its input gradient into the partial ' +
    'one (no separate pass) and every gradient equals finite differences',
  async () => {
    const { gpu } = ctx;
    const [B, C, H, W] = [2, 4, 5, 6];
    const shape = [B, C, H, W];
    /** @type {{ name: string, accumulate: unknown, tag: string | undefined }[]} */
    const launched = [];
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called below with the registry as `this`
    const dispatch = gpu.kernels.dispatch;
    gpu.kernels.dispatch = function (name, args) {
      launched.push({ name, accumulate: args.uniforms?.accumulate ?? 0, tag: args.tag });
      return dispatch.call(this, name, args);
    };
    try {
      // An ISAB's shape: y = relu(bn(conv(h)) + h), h = 2x an intermediate (not a leaf). The tape meets
      // h's residual gradient first (BatchNorm's rule), then offers it to the convolution's rule.
      await checkOp(gpu, {
        name: 'conv -> BN + residual -> ReLU',
        inputs: [
          { shape, grad: true },
          { shape: [C, C, 3, 3], grad: true, lo: -0.4, hi: 0.4 },
          { shape: [C], grad: true, lo: 0.5, hi: 1.5 },
          { shape: [C], grad: true },
        ],
        gpuFn: ([x, w, gamma, beta]) => {
          const h = ops.scale(x, 2);
          return ops.batchNorm2d(
            ops.conv2d(h, w, null, { padding: 1 }),
            gamma,
            beta,
            Tensor.zeros(gpu, [C]),
            Tensor.full(gpu, [C], 1),
            { training: true, residual: h, relu: true },
          );
        },
        cpuFn: ([x, w, gamma, beta]) => {
          const h = x.map((v) => 2 * v);
          const bn = ref.batchNorm(ref.conv2d(h, shape, w, [C, C, 3], null, 1, 1), shape, gamma, beta, {
            training: true,
          }).out;
          return ref.relu(bn.map((v, i) => v + h[i]));
        },
      });
    } finally {
      gpu.kernels.dispatch = dispatch;
    }
    assert.ok(
      launched.some((l) => l.tag === 'input grad' && l.accumulate === 1),
      "the input gradient is added into the residual's gradient by the convolution",
    );
    assert.not.ok(
      launched.some((l) => l.name === 'elementwise.accumulate'),
      'no separate accumulation pass',
    );
  },
);

test('BatchNorm statistics in one pass stay exact on data far from zero', async () => {
  const { gpu } = ctx;
  const [B, C, H, W] = [3, 2, 17, 16];
  const n = B * C * H * W;
  const xs = random(n, 21, -0.01, 0.01).map((v, i) => v + (Math.floor(i / (H * W)) % C === 0 ? 1000 : -3));
  const x = Tensor.fromArray(gpu, xs, [B, C, H, W]);
  const runningMean = Tensor.zeros(gpu, [C]);
  const runningVar = Tensor.zeros(gpu, [C]);
  gpu.noGrad(() =>
    ops
      .batchNorm2d(x, Tensor.full(gpu, [C], 1), Tensor.zeros(gpu, [C]), runningMean, runningVar, {
        training: true,
        momentum: 1,
      })
      .dispose(),
  );
  const { mean, variance } = ref.batchNorm(xs, [B, C, H, W], new Float64Array(C).fill(1), new Float64Array(C), {
    training: true,
  });
  const M = B * H * W;
  assertClose(await runningMean.read(), [...mean], { rtol: 1e-7, atol: 0, what: 'mean' });
  assertClose(
    await runningVar.read(),
    [...variance].map((v) => (v * M) / (M - 1)),
    { rtol: 1e-3, atol: 0, what: 'unbiased variance' },
  );
  [x, runningMean, runningVar].forEach((t) => t.dispose());
});

test.run();
