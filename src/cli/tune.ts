/**
 * `sisn tune`: times the kernel variants for a model's shapes ahead of time and keeps the fastest
 * in the user's cache folder (see kernels/tuner.ts), for `sisn upscale`, `sisn eval` and training.
 *
 * The shapes of SISN's layers depend on the scale, the channels and the input size, not on the
 * number of groups and blocks (every block of every group is alike): a network of one group of one
 * block meets every shape of the paper's, in a fraction of the time.
 */
import { parseArgs } from 'node:util';
import { Gpu } from '../engine.js';
import { SISN, type SisnConfig } from '../nn/sisn.js';
import { Rng } from '../data/rng.js';
import { Tensor } from '../tensor.js';
import { l1Loss, upsampleNearest } from '../ops/index.js';
import { superResolve } from '../nn/upscale.js';
import type { TunedKey } from '../kernels/tuner.js';

export const TUNE_USAGE = `usage: sisn tune [--scale 4] [--channels 64] [--lr 32 ...] [--batch 10] [--train] [--infer]
  times every kernel variant on the shapes of a SISN model and keeps the fastest for this adapter
  (in ~/.cache/sisn-webgpu/kernel-choices.json, or $XDG_CACHE_HOME or $SISN_CACHE_DIR instead)
  --scale S      2, 3, 4 or 8 (default 4)
  --channels C   feature channels (default 64, the shipped weights)
  --lr N         LR size in pixels (square), repeatable: the upscale inputs (batch 1), and the
                 training patch (default 32); larger images are cut into tiles of 'sisn upscale --tile'
  --batch B      training batch (default 10)
  --train        tune the training step (forward and backward)
  --infer        tune the inference forward (default: both, when neither is given)`;

function positiveInteger(text: string, option: string): number {
  const n = Number(text);
  if (!(Number.isInteger(n) && n > 0)) throw new Error(`--${option} must be a positive integer, got '${text}'`);
  return n;
}

/** One line per key: the choice and its time beside the default's, and how the fastest did when re-timed. */
function describe(t: TunedKey): string {
  const [fallback] = t.candidates;
  const ms = (name: string) => `${t.ms[name].toFixed(3)} ms`;
  const retimed = `${t.versusDefault.toFixed(2)}x the default's time when re-timed`;
  const times =
    t.choice !== fallback
      ? `${t.choice} ${ms(t.choice)} (default ${fallback} ${ms(fallback)}; ${retimed})`
      : t.fastest !== fallback
        ? `${fallback} ${ms(fallback)}, the default kept (${t.fastest} ${ms(t.fastest)}, but ${retimed})`
        : `${fallback} ${ms(fallback)} (the default)`;
  return `  ${t.kernel} [${t.key}]: ${times}`;
}

/** The training step on random data: forward in training mode, L1 loss, backward (no optimiser step). */
function trainingStep(gpu: Gpu, model: SISN, batch: number, lr: number): void {
  const s = model.config.scale;
  const rng = new Rng(2);
  const random = (shape: number[]) =>
    Tensor.fromArray(
      gpu,
      Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.uniform(0, 255)),
      shape,
    );
  const [input, target] = [random([batch, 3, lr, lr]), random([batch, 3, lr * s, lr * s])];
  model.training = true;
  const loss = gpu.scope(() => l1Loss(model.forward(upsampleNearest(input, s)), target));
  gpu.tape.backward(loss);
  model.params.zeroGrad();
  [loss, input, target].forEach((t) => t.dispose());
}

/** The upscale path's forward of one LR image (eval mode, no gradients). */
function inferenceForward(model: SISN, lr: number): Promise<Float32Array> {
  model.training = false;
  return superResolve(model, new Float32Array(3 * lr * lr).fill(128), 1, lr, lr);
}

export async function tuneCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      scale: { type: 'string', default: '4' },
      channels: { type: 'string', default: '64' },
      lr: { type: 'string', multiple: true },
      batch: { type: 'string', default: '10' },
      train: { type: 'boolean', default: false },
      infer: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(TUNE_USAGE);
    return 0;
  }
  const scale = Number(values.scale);
  if (![2, 3, 4, 8].includes(scale)) throw new Error(`--scale must be 2, 3, 4 or 8, got ${values.scale}`);
  const channels = positiveInteger(values.channels, 'channels');
  const sizes = (values.lr ?? ['32']).map((v) => positiveInteger(v, 'lr'));
  const batch = positiveInteger(values.batch, 'batch');
  const both = !values.train && !values.infer;
  const gpu = await Gpu.open();
  try {
    console.log(`adapter: ${gpu.describe()}`);
    if (!gpu.kernels.tuner.canTime) {
      console.error(
        'sisn tune: this adapter has no timestamp-query feature, so kernels cannot be timed; the default variants run',
      );
      return 1;
    }
    const model = new SISN(gpu, { scale: scale as SisnConfig['scale'], groups: 1, blocks: 1, channels });
    model.initialize(new Rng(1));
    const runs: [string, () => unknown][] = [];
    for (const lr of sizes) {
      if (both || values.train)
        runs.push([`training step, batch ${batch}, LR ${lr}x${lr}`, () => trainingStep(gpu, model, batch, lr)]);
      if (both || values.infer) runs.push([`inference, LR ${lr}x${lr}`, () => inferenceForward(model, lr)]);
    }
    let count = 0;
    const failed: string[] = [];
    for (const [what, run] of runs) {
      const started = Date.now();
      try {
        const { tuned } = await gpu.tune(run, { retime: true });
        console.log(
          `x${scale} C${channels} ${what}: ${tuned.length} kernel shapes timed in ` +
            `${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
        tuned.forEach((t) => console.log(describe(t)));
        count += tuned.length;
      } catch (e) {
        // A shape this adapter cannot run (a binding over its limits, say) costs only its own run.
        console.error(`x${scale} C${channels} ${what}: not tuned: ${(e as Error).message}`);
        failed.push(what);
      }
    }
    model.dispose();
    console.log(`${count} choices kept in ${gpu.kernels.tuner.cachePath}`);
    if (failed.length) {
      console.error(
        `sisn tune: ${failed.length} of ${runs.length} runs could not run on this adapter: ${failed.join('; ')}`,
      );
      return 1;
    }
  } finally {
    gpu.dispose();
  }
  return 0;
}
