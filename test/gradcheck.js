// Forward-vs-reference and backward-vs-finite-difference checks for one op.
import * as assert from 'uvu/assert';
import { Tensor } from '../dist/index.js';
import { random, relError, assertClose, gradOf } from './helpers.js';

/**
 * The first four values of a list, as a failure message shows them.
 * @param {number[]} xs
 */
const firstFour = (xs) =>
  xs
    .slice(0, 4)
    .map((v) => v.toFixed(5))
    .join(',');

/**
 * One input of an op under test: its shape, its values (random in [lo, hi) when absent) and whether
 * its gradient is checked.
 * @typedef {{ shape: number[], data?: Float32Array, grad?: boolean, lo?: number, hi?: number }} OpInput
 */

/**
 * What checkOp checks: the op on the GPU and its CPU reference over the same inputs.
 * @typedef {object} OpCheck
 * @property {string} name
 * @property {OpInput[]} inputs
 * @property {(tensors: Tensor[]) => Tensor} gpuFn
 * @property {(inputs: Float64Array[]) => ArrayLike<number>} cpuFn the flat output
 * @property {number} [seed]
 * @property {number} [samples]
 * @property {number} [h]
 * @property {number} [fwdTol]
 * @property {number} [gradTol]
 * @property {number} [gradFloor]
 */

/**
 * inputs: [{ shape, data?, grad?: boolean, lo?, hi? }]
 * gpuFn(tensors) -> Tensor; cpuFn(float64 arrays) -> Float64Array (flat output).
 * Checks the forward against cpuFn, then every gradient against central differences of
 * sum(cpuFn(inputs) * seed) at up to `samples` elements per input. Gradients that are
 * exactly zero in theory (a bias before BatchNorm) are judged against `gradFloor` instead of their
 * own vanishing size.
 * @param {import('../dist/index.js').Gpu} gpu
 * @param {OpCheck} check
 */
export async function checkOp(
  gpu,
  { name, inputs, gpuFn, cpuFn, seed = 7, samples = 24, h = 1e-3, fwdTol = 1e-4, gradTol = 1e-3, gradFloor = 1e-12 },
) {
  const arrays = inputs.map(
    (inp, i) =>
      inp.data ??
      random(
        inp.shape.reduce((a, b) => a * b, 1),
        seed * 31 + i,
        inp.lo ?? -1,
        inp.hi ?? 1,
      ),
  );
  const tensors = arrays.map((a, i) => {
    const t = Tensor.fromArray(gpu, a, inputs[i].shape);
    t.requiresGrad = !!inputs[i].grad;
    return t;
  });
  const out = gpuFn(tensors);
  const ref = cpuFn(arrays.map((a) => Float64Array.from(a)));
  const got = await out.read();
  const scale = Math.max(1, ...Array.from(ref, Math.abs));
  assertClose(got, ref, { rtol: fwdTol, atol: fwdTol * scale, what: `${name} forward` });
  if (!inputs.some((i) => i.grad)) return;
  const seedValues = random(out.size, seed + 1000);
  gpu.tape.backward(out, Tensor.fromArray(gpu, seedValues, out.shape));
  /** @param {Float64Array[]} xs */
  const loss = (xs) => {
    const y = cpuFn(xs);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * seedValues[i];
    return s;
  };
  for (let k = 0; k < inputs.length; k++) {
    if (!inputs[k].grad) continue;
    const analytic = await gradOf(tensors[k], `${name}: input ${k}`).read();
    const xs = arrays.map((a) => Float64Array.from(a));
    const n = xs[k].length;
    const picks =
      n <= samples
        ? [...Array(n).keys()]
        : Array.from({ length: samples }, (_, j) => Math.floor(((j + 0.5) * n) / samples));
    const numeric = [];
    const analyticPicked = [];
    for (const i of picks) {
      const orig = xs[k][i];
      xs[k][i] = orig + h;
      const up = loss(xs);
      xs[k][i] = orig - h;
      const down = loss(xs);
      xs[k][i] = orig;
      numeric.push((up - down) / (2 * h));
      analyticPicked.push(analytic[i]);
    }
    const err = relError(analyticPicked, numeric, gradFloor);
    assert.ok(
      err < gradTol,
      `${name}: gradient of input ${k} has relative error ${err.toExponential(2)} ` +
        `(analytic ${firstFour(analyticPicked)}, numeric ${firstFour(numeric)})`,
    );
  }
  tensors.forEach((t) => t.dispose());
  out.dispose();
}
