/**
 * SISN training, as the authors' `solver.py`: L1 loss on random LR patches (nearest-upsampled
 * input), Adam (betas 0.9/0.999, eps 1e-8), MultiStepLR with milestones at 1000 * each `--decay`
 * entry, optional gradient value clipping, validation PSNR (RGB, border 6 + scale) every
 * `--eval_steps`. Better to live with: best and last checkpoints written atomically with the
 * optimiser and RNG state (`--resume` continues the same loss curve), a JSONL log, an SVG plot, a
 * PNG sheet of validation faces, and a stop with a clear message on a non-finite loss.
 */
import { existsSync, readFileSync, appendFileSync } from 'node:fs';
import { platform } from '../platform/index.js';
import { join } from 'node:path';
import { Gpu } from '../engine.js';
import { Tensor } from '../tensor.js';
import { SISN, type SisnConfig } from '../nn/sisn.js';
import { Adam, MultiStepLR } from '../optim/adam.js';
import { l1Loss, upsampleNearest } from '../ops/index.js';
import { Rng } from '../data/rng.js';
import { listImages, loadPairs, selectRange, parseSize, type FacePair } from '../data/dataset.js';
import { PatchSampler } from '../data/sampler.js';
import { evaluate, predict } from './evaluate.js';
import { saveCheckpoint, loadCheckpoint } from './checkpoint.js';
import { writePlot, writeSheet, type Point } from './report.js';
import { Progress, formatDuration } from './progress.js';
import { startOptions, prepareRunFolder } from './start.js';

export interface TrainOptions {
  scale: number;
  num_groups: number;
  num_blocks: number;
  num_channels: number;
  lr: number;
  /** Milestones in thousands of steps, '-'-separated (official semantics). */
  decay: string;
  gamma: number;
  batch_size: number;
  patch_size: number;
  max_steps: number;
  eval_steps: number;
  gclip: number;
  seed: number;
  dataset_root: string;
  /** 'train/val' index ranges, e.g. '1-850/851-950'. Ignored for validation when val_root is set. */
  train_val_range: string;
  val_root?: string;
  lr_root?: string;
  /** Centre crop of HR images, 'WxH'. */
  hr_crop?: string;
  ckpt_root: string;
  resume: boolean;
  /** Start a fresh run in a ckpt_root that holds an old one, replacing it. */
  overwrite: boolean;
  no_structure_path: boolean;
  no_attention: boolean;
  /** Validation faces in the PNG sheet. */
  sheet_faces: number;
  /** Evaluation border; default 6 + scale. */
  border?: number;
  /** Skip timing kernel variants in the first step and validation for shapes this adapter has no choice for. */
  no_tune: boolean;
}

export const DEFAULTS: TrainOptions = {
  scale: 4,
  num_groups: 10,
  num_blocks: 10,
  num_channels: 64,
  lr: 2e-4,
  decay: '50-100-150-200-250-300-350-400',
  gamma: 0.5,
  batch_size: 10,
  patch_size: 32,
  max_steps: 1000000,
  eval_steps: 100,
  gclip: 0,
  seed: 1,
  dataset_root: '',
  train_val_range: '1-850/851-950',
  ckpt_root: './pt',
  resume: false,
  overwrite: false,
  no_structure_path: false,
  no_attention: false,
  sheet_faces: 4,
  no_tune: false,
};

export interface TrainResult {
  steps: number;
  bestPsnr: number;
  bestStep: number;
  lastLoss: number;
  seconds: number;
}

function loadData(o: TrainOptions, log: (m: string) => void): { train: FacePair[]; val: FacePair[] } {
  const started = Date.now();
  const files = listImages(o.dataset_root);
  const [trainRange, valRange] = o.train_val_range.split('/');
  const trainFiles = trainRange ? selectRange(files, trainRange, '--train_val_range (train)') : files;
  const common = { scale: o.scale, hrCrop: parseSize(o.hr_crop), lrRoot: o.lr_root, log };
  const train = loadPairs(o.dataset_root, trainFiles, common);
  let val: FacePair[];
  if (o.val_root) val = loadPairs(o.val_root, listImages(o.val_root), common);
  else if (valRange)
    val = loadPairs(o.dataset_root, selectRange(files, valRange, '--train_val_range (validation)'), common);
  else throw new Error('no validation set: give --train_val_range TRAIN/VAL or --val_root');
  log(
    `data: ${train.length} training and ${val.length} validation faces from ${o.dataset_root} (decoded in ` +
      `${((Date.now() - started) / 1000).toFixed(1)} s)`,
  );
  return { train, val };
}

/** Reads the JSONL log, keeping only entries up to `step` (what a resumed run had checkpointed). */
function trimmedLog(path: string, step: number): { lines: string[]; losses: Point[]; psnrs: Point[] } {
  const lines: string[] = [];
  const losses: Point[] = [];
  const psnrs: Point[] = [];
  if (existsSync(path)) {
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const e = JSON.parse(line) as
        { type: 'train'; step: number; loss: number } | { type: 'eval'; step: number; psnr: number };
      if (e.step > step) continue;
      lines.push(line);
      if (e.type === 'train') losses.push({ step: e.step, value: e.loss });
      if (e.type === 'eval') psnrs.push({ step: e.step, value: e.psnr });
    }
  }
  return { lines, losses, psnrs };
}

/** Checks the numeric options; returns the LR milestones in steps. */
function checkOptions(o: TrainOptions): number[] {
  if (!o.dataset_root) throw new Error('--dataset_root is required');
  for (const k of ['max_steps', 'eval_steps', 'batch_size'] as const)
    if (!(Number.isInteger(o[k]) && o[k] > 0)) throw new Error(`--${k} must be a positive integer, got ${o[k]}`);
  if (!(o.lr > 0)) throw new Error(`--lr must be positive, got ${o.lr}`);
  const milestones = o.decay ? o.decay.split('-').map((d) => 1000 * Number(d)) : [];
  if (milestones.some((m) => !Number.isFinite(m))) throw new Error(`--decay '${o.decay}' must look like 50-100-150`);
  return milestones;
}

/** Where the model, RNG, optimiser moments and best score start: a checkpoint, or a fresh model. */
interface Start {
  model: SISN;
  rng: Rng;
  step: number;
  bestPsnr: number;
  bestStep: number;
  adamState: { expAvg: Float32Array; expAvgSq: Float32Array; step: number } | null;
}

/** Resumes from the last checkpoint (`o` holds its options, see start.ts), or initialises a model. */
function startModel(gpu: Gpu, o: TrainOptions, lastPath: string, log: (m: string) => void): Start {
  if (!o.resume) {
    const config: SisnConfig = {
      scale: o.scale as SisnConfig['scale'],
      groups: o.num_groups,
      blocks: o.num_blocks,
      channels: o.num_channels,
    };
    const model = new SISN(gpu, config);
    const rng = new Rng(o.seed);
    model.initialize(rng);
    return { model, rng, step: 0, bestPsnr: -Infinity, bestStep: 0, adamState: null };
  }
  const ck = loadCheckpoint(gpu, lastPath);
  log(`resuming from ${lastPath} at step ${ck.meta.step}`);
  const { bestPsnr, bestStep } = ck.meta;
  return {
    model: ck.model,
    rng: new Rng(ck.meta.rng),
    step: ck.meta.step,
    bestPsnr,
    bestStep,
    adamState: { expAvg: ck.expAvg, expAvgSq: ck.expAvgSq, step: ck.meta.adamStep },
  };
}

/** Everything a running job holds between steps. */
interface Run extends Start {
  o: TrainOptions;
  gpu: Gpu;
  adam: Adam;
  scheduler: MultiStepLR;
  sampler: PatchSampler;
  val: FacePair[];
  sheetPairs: FacePair[];
  history: { losses: Point[]; psnrs: Point[] };
  paths: { last: string; best: string; log: string };
  title: string;
  progress: Progress;
  started: number;
}

/** One optimisation step; returns the loss. */
async function trainStep(run: Run): Promise<number> {
  const { gpu, model, o } = run;
  const batch = run.sampler.next(run.rng);
  const lrT = Tensor.fromArray(gpu, batch.lr, batch.lrShape);
  const hrT = Tensor.fromArray(gpu, batch.hr, batch.hrShape);
  model.params.zeroGrad();
  const loss = gpu.scope(() => l1Loss(model.forward(upsampleNearest(lrT, o.scale)), hrT));
  gpu.tape.backward(loss);
  run.adam.update();
  const value = (await loss.read())[0];
  [loss, lrT, hrT].forEach((t) => t.dispose());
  return value;
}

/**
 * `fn` (the first step, the first validation) as a tuning run: shapes without a kernel choice for
 * this adapter are timed (kernels/tuner.ts), unless --no_tune.
 */
async function tuning<T>(run: Run, what: string, fn: () => Promise<T>): Promise<T> {
  if (run.o.no_tune) return fn();
  const { result, tuned, skipped } = await run.gpu.tune(fn);
  const changed = tuned.filter((t) => t.choice !== t.candidates[0]).length;
  if (tuned.length)
    run.progress.note(
      `${what} timed the kernel variants of ${tuned.length} shapes (${changed} faster than the default), kept in ` +
        `${run.gpu.kernels.tuner.cachePath ?? 'memory'}`,
    );
  if (skipped) run.progress.note(`${what}: ${skipped}`);
  return result;
}

/** Validation after `steps` steps: checkpoints (last, and best when it is), log, plot and sheet. */
async function validate(run: Run, steps: number, lr: number): Promise<void> {
  const { o, model, paths } = run;
  const t0 = Date.now();
  const result = await evaluate(model, run.val, o.border ?? 6 + o.scale, false);
  const { psnr, ssim } = result.sisn;
  const isBest = psnr >= run.bestPsnr;
  if (isBest) [run.bestPsnr, run.bestStep] = [psnr, steps];
  const meta = { step: steps, rng: run.rng.state, bestPsnr: run.bestPsnr, bestStep: run.bestStep, options: { ...o } };
  await saveCheckpoint(paths.last, model, run.adam, meta);
  if (isBest) await saveCheckpoint(paths.best, model, run.adam, meta);
  appendFileSync(
    paths.log,
    `${JSON.stringify({
      type: 'eval',
      step: steps,
      psnr,
      ssim,
      psnr_y: result.sisn.psnrY,
      ssim_y: result.sisn.ssimY,
      lr,
      best_psnr: run.bestPsnr,
      best_step: run.bestStep,
      seconds: (Date.now() - run.started) / 1000,
    })}\n`,
  );
  run.history.psnrs.push({ step: steps, value: psnr });
  writePlot(join(o.ckpt_root, 'plot.svg'), run.history.losses, run.history.psnrs, run.title);
  if (run.sheetPairs.length)
    writeSheet(join(o.ckpt_root, 'sheet.png'), run.sheetPairs, await predict(model, run.sheetPairs), o.scale);
  model.training = true;
  run.progress.note(
    `[${steps}/${o.max_steps}] val PSNR ${psnr.toFixed(2)} dB SSIM ${ssim.toFixed(4)} (best ` +
      `${run.bestPsnr.toFixed(2)} @ ${run.bestStep}) lr ${lr} eval ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
}

/** Sets up a run on an open engine: model, optimiser, run folder, log (trimmed to the start), compiled pipelines. */
async function prepareRun(
  gpu: Gpu,
  o: TrainOptions,
  data: { train: FacePair[]; val: FacePair[] },
  milestones: number[],
  log: (m: string) => void,
): Promise<Run> {
  const paths = {
    last: join(o.ckpt_root, 'last.safetensors'),
    best: join(o.ckpt_root, 'best.safetensors'),
    log: join(o.ckpt_root, 'log.jsonl'),
  };
  const start = startModel(gpu, o, paths.last, log);
  const { model } = start;
  model.setAblation({ structurePath: !o.no_structure_path, attention: !o.no_attention });
  const { train: trainSet, val } = data;
  const sampler = new PatchSampler(trainSet, o.scale, o.batch_size, o.patch_size, log);
  const adam = new Adam(model.params, { lr: o.lr, betas: [0.9, 0.999], eps: 1e-8, gradClip: o.gclip });
  if (start.adamState) adam.loadState(start.adamState.expAvg, start.adamState.expAvgSq, start.adamState.step);
  prepareRunFolder(o.ckpt_root, o.overwrite);
  const history = trimmedLog(paths.log, start.step);
  platform.writeFileAtomic(paths.log, new TextEncoder().encode(history.lines.map((l) => `${l}\n`).join('')));
  const title = `SISN x${o.scale} G${model.config.groups} I${model.config.blocks} C${model.config.channels}`;
  const params = model.params.entries().reduce((n, [, t]) => n + t.size, 0);
  log(
    `${title}: ${params} parameters, batch ${o.batch_size}, LR patch ${sampler.patch.join('x')}, steps ` +
      `${start.step}..${o.max_steps}`,
  );
  const compileStarted = Date.now();
  const pipelines = await SISN.prepare(gpu);
  log(`compiled ${pipelines} pipelines in ${((Date.now() - compileStarted) / 1000).toFixed(1)} s`);
  const scheduler = new MultiStepLR(adam, milestones, o.gamma, o.lr);
  const sheetPairs = val.slice(0, Math.max(0, o.sheet_faces));
  return {
    ...start,
    o,
    gpu,
    adam,
    scheduler,
    sampler,
    val,
    sheetPairs,
    history,
    paths,
    title,
    progress: new Progress(o.max_steps, start.step),
    started: Date.now(),
  };
}

export async function train(
  options: Partial<TrainOptions>,
  log: (m: string) => void = (m) => console.error(m),
): Promise<TrainResult> {
  const o = startOptions(DEFAULTS, options, log);
  const milestones = checkOptions(o);
  const data = loadData(o, log);
  const gpu = await Gpu.open();
  try {
    log(`adapter: ${gpu.describe()}`);
    const run = await prepareRun(gpu, o, data, milestones, log);
    run.model.training = true;
    let lastLoss = NaN;
    let validated = false;
    for (let step = run.step; step < o.max_steps; step++) {
      const lr = run.scheduler.at(step);
      lastLoss = step === run.step ? await tuning(run, 'the first step', () => trainStep(run)) : await trainStep(run);
      if (!Number.isFinite(lastLoss)) {
        throw new Error(
          `the loss became ${lastLoss} at step ${step + 1}; training stopped. The last good checkpoint is ` +
            `${existsSync(run.paths.last) ? run.paths.last : 'not written yet'}; try a lower --lr or --gclip`,
        );
      }
      appendFileSync(run.paths.log, `${JSON.stringify({ type: 'train', step: step + 1, loss: lastLoss, lr })}\n`);
      run.history.losses.push({ step: step + 1, value: lastLoss });
      run.progress.update(step + 1, `loss ${lastLoss.toFixed(3)} lr ${lr.toExponential(1)}`);
      if ((step + 1) % o.eval_steps === 0 || step + 1 === o.max_steps) {
        const validation = () => validate(run, step + 1, lr);
        await (validated ? validation() : tuning(run, 'the first validation', validation));
        validated = true;
      }
    }
    const seconds = (Date.now() - run.started) / 1000;
    log(
      `done: ${o.max_steps - run.step} steps in ${formatDuration(seconds)}; best validation PSNR ` +
        `${run.bestPsnr.toFixed(2)} dB at step ${run.bestStep}; checkpoints in ${o.ckpt_root}`,
    );
    run.adam.dispose();
    run.model.dispose();
    return { steps: o.max_steps - run.step, bestPsnr: run.bestPsnr, bestStep: run.bestStep, lastLoss, seconds };
  } finally {
    gpu.dispose();
  }
}
