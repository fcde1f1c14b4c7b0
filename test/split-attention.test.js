// Split attention's backward for every combination of which inputs need gradients (issue 24): the
// layer's input, its grouped conv's weight, bn0's gamma and beta, the gate's parameters, in training
// (the splits made where they are read, bn0's backward inside the op's) and in eval with gradients
// (splitAttend on stored splits). Each combination's gradients equal those of the all-trainable run;
// an input that needs none gets none.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Tensor, SplitAttention } from '../dist/index.js';
import { withGpu, random, assertClose, entryOf } from './helpers.js';
/** @import { Shape } from '../dist/index.js' */

const test = suite('split attention gradients');
const ctx = withGpu(test);

const [B, C, R, H, W] = [2, 8, 4, 4, 4];
const sa = new SplitAttention('sa.', C, R);
const params = sa.entries().filter((e) => e.kind === 'param');
/**
 * The groups whose need for a gradient is switched together.
 * @type {Record<string, string[]>}
 */
const GROUPS = {
  x: ['x'],
  conv: ['sa.conv.weight'],
  gamma: ['sa.bn0.weight'],
  beta: ['sa.bn0.bias'],
  gate: params.map((e) => e.name).filter((n) => /conv1x1|bn1/.test(n)),
};

/**
 * Gradients of a fixed loss (sum of out * seed) for the inputs in `trainable`; null for the others.
 * @param {import('../dist/index.js').Gpu} gpu
 * @param {boolean} training
 * @param {Set<string>} trainable
 * @returns {Promise<Record<string, Float32Array | null>>}
 */
async function gradients(gpu, training, trainable) {
  /** @param {Shape} shape */
  const size = (shape) => shape.reduce((a, b) => a * b, 1);
  /** @type {Map<string, Tensor>} */
  const tensors = new Map();
  /** @type {(name: string, shape: Shape, seed: number) => void} */
  const make = (name, shape, seed) => {
    const gammaLike = /bn\d\.weight$/.test(name);
    const t = Tensor.fromArray(gpu, random(size(shape), seed, gammaLike ? 0.8 : -0.6, gammaLike ? 1.2 : 0.6), shape);
    t.requiresGrad = trainable.has(name);
    tensors.set(name, t);
  };
  make('x', [B, C, H, W], 1);
  params.forEach((e, i) => make(e.name, e.shape, 10 + i));
  /** @type {Map<string, Tensor>} */
  const buffers = new Map();
  for (const e of sa.entries().filter((e) => e.kind === 'buffer'))
    buffers.set(e.name, Tensor.full(gpu, e.shape, e.name.endsWith('running_var') ? 1.5 : 0.1));
  // The module reads its parameters by name only: the test's own tensors stand in for a ParameterSet.
  const standIn = /** @type {import('../dist/index.js').ParameterSet} */ (
    /** @type {unknown} */ ({ get: (/** @type {string} */ n) => tensors.get(n) })
  );
  const state = { params: standIn, buffers, counters: new Map(/** @type {[string, number][]} */ ([])), training };
  const out = gpu.scope(() => sa.forward(state, entryOf(tensors, 'x')));
  const seed = Tensor.fromArray(gpu, random(out.size, 99), out.shape);
  gpu.tape.backward(out, seed);
  /** @type {Record<string, Float32Array | null>} */
  const grads = {};
  for (const [name, t] of tensors) grads[name] = t.grad ? await t.grad.read() : null;
  for (const t of [...tensors.values(), ...buffers.values(), out, seed]) t.dispose();
  return grads;
}

for (const training of [true, false]) {
  test(`${training ? 'training' : 'eval'}: every combination of inputs needing gradients`, async () => {
    const { gpu } = ctx;
    const names = Object.keys(GROUPS);
    const all = new Set(Object.values(GROUPS).flat());
    const reference = await gradients(gpu, training, all);
    for (let mask = 1; mask < 1 << names.length; mask++) {
      const on = names.filter((_, i) => mask & (1 << i));
      const trainable = new Set(on.flatMap((n) => GROUPS[n]));
      const what = `${training ? 'training' : 'eval'}, trainable: ${on.join(', ')}`;
      /** @type {Record<string, Float32Array | null>} */
      let grads = {};
      try {
        grads = await gradients(gpu, training, trainable);
      } catch (e) {
        assert.unreachable(`${what}: ${/** @type {Error} */ (e).message}`);
      }
      for (const name of all) {
        if (!trainable.has(name)) {
          assert.is(grads[name], null, `${what}: ${name} got a gradient`);
          continue;
        }
        const got = grads[name];
        const want = reference[name];
        assert.ok(got, `${what}: ${name} got no gradient`);
        assert.ok(want, `${name}: the all-trainable run gave no gradient`);
        const scale = Math.max(...want.map(Math.abs));
        assertClose(got, want, { rtol: 1e-4, atol: 1e-5 * scale, what: `${what}: ${name}` });
      }
    }
  });
}

test.run();
