// The training step and forward passes of bench/run.js and bench/profile.js, and their per-kernel
// GPU time from the engine's timestamp-query profiler, grouped by kernel family.
import { SISN, Tensor, Rng, Adam, l1Loss, upsampleNearest } from '../dist/index.js';

/**
 * @typedef {import('../dist/index.js').Gpu} Gpu
 * @typedef {Partial<import('../dist/index.js').SisnConfig>} ModelShape
 */

/**
 * A model of the given shape with PyTorch's default initialisation (times do not depend on values).
 * @param {Gpu} gpu
 * @param {ModelShape} [shape]
 */
export function benchModel(gpu, { scale = 4, groups = 10, blocks = 10, channels = 64 } = {}) {
  const model = new SISN(gpu, { scale, groups, blocks, channels });
  model.initialize(new Rng(1));
  return model;
}

/**
 * @param {Gpu} gpu
 * @param {Rng} rng
 * @param {number[]} shape
 * @param {number} lo
 * @param {number} hi
 */
export function randomTensor(gpu, rng, shape, lo, hi) {
  return Tensor.fromArray(
    gpu,
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(lo, hi)),
    shape,
  );
}

/**
 * One training step (L1 loss, backward, Adam) on random LR/HR batches, as a function to call
 * repeatedly; `dispose` frees its model, optimiser and data.
 * @param {Gpu} gpu
 * @param {ModelShape & { batch?: number, lrSize?: number }} [options]
 */
export function trainingStep(gpu, { scale = 4, batch = 10, lrSize = 32, ...shape } = {}) {
  const model = benchModel(gpu, { scale, ...shape });
  model.training = true;
  const opt = new Adam(model.params, { lr: 2e-4 });
  const rng = new Rng(7);
  const lr = randomTensor(gpu, rng, [batch, 3, lrSize, lrSize], 0, 255);
  const hr = randomTensor(gpu, rng, [batch, 3, lrSize * scale, lrSize * scale], 0, 255);
  const step = () => {
    model.params.zeroGrad();
    const loss = gpu.scope(() => l1Loss(model.forward(upsampleNearest(lr, scale)), hr));
    gpu.tape.backward(loss);
    opt.update();
    loss.dispose();
  };
  step.dispose = () => [opt, model, lr, hr].forEach((o) => o.dispose());
  return step;
}

/**
 * One eval forward pass (batch 1) of an LR image `lrSize` pixels square.
 * @param {Gpu} gpu
 * @param {ModelShape & { lrSize?: number }} [options]
 */
export function forwardPass(gpu, { scale = 4, lrSize = 32, ...shape } = {}) {
  const model = benchModel(gpu, { scale, ...shape });
  const lr = randomTensor(gpu, new Rng(7), [1, 3, lrSize, lrSize], 0, 255);
  const run = () => gpu.noGrad(() => gpu.scope(() => model.forward(upsampleNearest(lr, scale)))).dispose();
  run.dispose = () => [model, lr].forEach((o) => o.dispose());
  return run;
}

/**
 * The family of a profiler label ('conv2d.forward (input grad)' -> 'conv2d input grad'; kernel
 * variants such as 'conv2d@16_16_64_0.forward' count with their kernel).
 * @param {string} label
 */
export function kernelFamily(label) {
  const [kernel, tag] = label.split(' (');
  if (kernel.startsWith('conv2d')) {
    if (tag) return `conv2d ${tag.slice(0, -1)}`;
    return `conv2d ${kernel.split('.')[1].replace('_', ' ')}`;
  }
  return kernel.split('.')[0];
}

/**
 * Runs `fn` once more with every dispatch timed (the GPU must have been opened with
 * `profiling: true`; `fn` should have run before, so nothing compiles). Returns the kernels and
 * families by GPU time, and the share of convolutions.
 * @param {Gpu} gpu
 * @param {() => void} fn
 */
export async function profile(gpu, fn) {
  await gpu.sync();
  /** @type {Map<string, { ms: number, count: number }>} */
  const before = new Map([...(await gpu.recorder.profile().catch(() => new Map()))].map(([k, v]) => [k, { ...v }]));
  gpu.recorder.startProfiling();
  const dispatches = gpu.recorder.dispatchCount;
  const started = performance.now();
  fn();
  await gpu.sync();
  const wallMs = performance.now() - started;
  const kernels = [...(await gpu.recorder.profile())]
    .map(([label, t]) => ({
      label,
      ms: t.ms - (before.get(label)?.ms ?? 0),
      count: t.count - (before.get(label)?.count ?? 0),
    }))
    .filter((k) => k.count > 0)
    .sort((a, b) => b.ms - a.ms);
  const gpuMs = kernels.reduce((s, k) => s + k.ms, 0);
  /** @type {Map<string, { family: string, ms: number, count: number }>} */
  const families = new Map();
  for (const k of kernels) {
    const f = families.get(kernelFamily(k.label)) ?? { family: kernelFamily(k.label), ms: 0, count: 0 };
    f.ms += k.ms;
    f.count += k.count;
    families.set(f.family, f);
  }
  const byFamily = [...families.values()].sort((a, b) => b.ms - a.ms).map((f) => ({ ...f, share: f.ms / gpuMs }));
  const convMs = byFamily.filter((f) => f.family.startsWith('conv2d')).reduce((s, f) => s + f.ms, 0);
  return {
    wallMs,
    gpuMs,
    dispatches: gpu.recorder.dispatchCount - dispatches,
    convShare: convMs / gpuMs,
    families: byFamily,
    kernels,
  };
}
