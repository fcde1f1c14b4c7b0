/**
 * SISN training, as the authors' `solver.py`: L1 loss on random LR patches (nearest-upsampled
 * input), Adam (betas 0.9/0.999, eps 1e-8), MultiStepLR with milestones at 1000 * each `--decay`
 * entry, optional gradient value clipping, validation PSNR (RGB, border 6 + scale) every
 * `--eval_steps`. Better to live with: best and last checkpoints written atomically with the
 * optimiser and RNG state (`--resume` continues the same loss curve), a JSONL log, an SVG plot, a
 * PNG sheet of validation faces, and a stop with a clear message on a non-finite loss.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync, appendFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { Gpu } from '../engine.js';
import { Tensor } from '../tensor.js';
import { SISN, type SisnConfig } from '../nn/sisn.js';
import { Adam, MultiStepLR } from '../optim/adam.js';
import { l1Loss, upsampleNearest } from '../ops/index.js';
import { Rng } from '../data/rng.js';
import { listImages, loadPairs, selectRange, type FacePair } from '../data/dataset.js';
import { PatchSampler } from '../data/sampler.js';
import { evaluate, predict } from './evaluate.js';
import { saveCheckpoint, loadCheckpoint } from './checkpoint.js';
import { writePlot, writeSheet, type Point } from './report.js';
import { Progress, formatDuration } from './progress.js';

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
  no_structure_path: boolean;
  no_attention: boolean;
  /** Validation faces in the PNG sheet. */
  sheet_faces: number;
  /** Evaluation border; default 6 + scale. */
  border?: number;
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
  no_structure_path: false,
  no_attention: false,
  sheet_faces: 4,
};

export interface TrainResult {
  steps: number;
  bestPsnr: number;
  bestStep: number;
  lastLoss: number;
  seconds: number;
}

/** 'WxH' (e.g. '88x104') as [width, height]. */
export function parseSize(text: string | undefined, option = '--hr_crop'): [number, number] | undefined {
  if (!text) return undefined;
  const m = /^(\d+)x(\d+)$/.exec(text);
  if (!m || !Number(m[1]) || !Number(m[2])) throw new Error(`${option} '${text}' must look like 88x104 (width x height)`);
  return [Number(m[1]), Number(m[2])];
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
  else if (valRange) val = loadPairs(o.dataset_root, selectRange(files, valRange, '--train_val_range (validation)'), common);
  else throw new Error('no validation set: give --train_val_range TRAIN/VAL or --val_root');
  log(`data: ${train.length} training and ${val.length} validation faces from ${o.dataset_root} (decoded in ${((Date.now() - started) / 1000).toFixed(1)} s)`);
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
      const e = JSON.parse(line);
      if (e.step > step) continue;
      lines.push(line);
      if (e.type === 'train') losses.push({ step: e.step, value: e.loss });
      if (e.type === 'eval') psnrs.push({ step: e.step, value: e.psnr });
    }
  }
  return { lines, losses, psnrs };
}

export async function train(options: Partial<TrainOptions>, log: (m: string) => void = (m) => console.error(m)): Promise<TrainResult> {
  const o: TrainOptions = { ...DEFAULTS, ...options };
  if (!o.dataset_root) throw new Error('--dataset_root is required');
  for (const k of ['max_steps', 'eval_steps', 'batch_size'] as const) if (!(Number.isInteger(o[k]) && o[k] > 0)) throw new Error(`--${k} must be a positive integer, got ${o[k]}`);
  if (!(o.lr > 0)) throw new Error(`--lr must be positive, got ${o.lr}`);
  const milestones = o.decay ? o.decay.split('-').map((d) => 1000 * Number(d)) : [];
  if (milestones.some((m) => !Number.isFinite(m))) throw new Error(`--decay '${o.decay}' must look like 50-100-150`);
  mkdirSync(o.ckpt_root, { recursive: true });
  const lastPath = join(o.ckpt_root, 'last.safetensors');
  const bestPath = join(o.ckpt_root, 'best.safetensors');
  const logPath = join(o.ckpt_root, 'log.jsonl');

  const gpu = await Gpu.open();
  try {
    log(`adapter: ${gpu.describe()}`);
    let model: SISN;
    let rng: Rng;
    let start = 0;
    let bestPsnr = -Infinity;
    let bestStep = 0;
    let adamState: { expAvg: Float32Array; expAvgSq: Float32Array; step: number } | null = null;
    if (o.resume) {
      if (!existsSync(lastPath)) throw new Error(`--resume: no checkpoint at ${lastPath}`);
      const ck = loadCheckpoint(gpu, lastPath);
      model = ck.model;
      rng = new Rng(ck.meta.rng);
      start = ck.meta.step;
      ({ bestPsnr, bestStep } = ck.meta);
      adamState = { expAvg: ck.expAvg, expAvgSq: ck.expAvgSq, step: ck.meta.adamStep };
      const saved = ck.meta.options as Partial<TrainOptions>;
      for (const k of ['scale', 'num_groups', 'num_blocks', 'num_channels', 'no_structure_path', 'no_attention'] as const) {
        if (options[k] !== undefined && options[k] !== saved[k]) log(`--resume: the checkpoint was trained with --${k} ${saved[k]}; keeping that`);
        (o as unknown as Record<string, unknown>)[k] = saved[k];
      }
      log(`resuming from ${lastPath} at step ${start}`);
    } else {
      const config: SisnConfig = { scale: o.scale as SisnConfig['scale'], groups: o.num_groups, blocks: o.num_blocks, channels: o.num_channels };
      model = new SISN(gpu, config);
      rng = new Rng(o.seed);
      model.initialize(rng);
    }
    model.setAblation({ structurePath: !o.no_structure_path, attention: !o.no_attention });
    const { train: trainSet, val } = loadData(o, log);
    const sampler = new PatchSampler(trainSet, o.scale, o.batch_size, o.patch_size, log);
    const border = o.border ?? 6 + o.scale;
    const sheetPairs = val.slice(0, Math.max(0, o.sheet_faces));

    const adam = new Adam(model.params, { lr: o.lr, betas: [0.9, 0.999], eps: 1e-8, gradClip: o.gclip });
    if (adamState) adam.loadState(adamState.expAvg, adamState.expAvgSq, adamState.step);
    const scheduler = new MultiStepLR(adam, milestones, o.gamma, o.lr);
    const history = trimmedLog(logPath, start);
    writeFileSync(`${logPath}.tmp`, history.lines.map((l) => `${l}\n`).join(''));
    renameSync(`${logPath}.tmp`, logPath);
    const title = `SISN x${o.scale} G${model.config.groups} I${model.config.blocks} C${model.config.channels}`;
    const params = model.params.entries().reduce((n, [, t]) => n + t.size, 0);
    log(`${title}: ${params} parameters, batch ${o.batch_size}, LR patch ${sampler.patch.join('x')}, steps ${start}..${o.max_steps}`);

    const compileStarted = Date.now();
    const pipelines = await SISN.prepare(gpu);
    log(`compiled ${pipelines} pipelines in ${((Date.now() - compileStarted) / 1000).toFixed(1)} s`);
    model.training = true;
    const progress = new Progress(o.max_steps, start);
    const started = Date.now();
    let lastLoss = NaN;
    for (let step = start; step < o.max_steps; step++) {
      const lr = scheduler.at(step);
      const batch = sampler.next(rng);
      const lrT = Tensor.fromArray(gpu, batch.lr, batch.lrShape);
      const hrT = Tensor.fromArray(gpu, batch.hr, batch.hrShape);
      model.params.zeroGrad();
      const loss = gpu.scope(() => l1Loss(model.forward(upsampleNearest(lrT, o.scale)), hrT));
      gpu.tape.backward(loss);
      adam.update();
      lastLoss = (await loss.read())[0];
      [loss, lrT, hrT].forEach((t) => t.dispose());
      if (!Number.isFinite(lastLoss)) {
        throw new Error(`the loss became ${lastLoss} at step ${step + 1}; training stopped. The last good checkpoint is ${existsSync(lastPath) ? lastPath : 'not written yet'}; try a lower --lr or --gclip`);
      }
      appendFileSync(logPath, `${JSON.stringify({ type: 'train', step: step + 1, loss: lastLoss, lr })}\n`);
      history.losses.push({ step: step + 1, value: lastLoss });
      progress.update(step + 1, lastLoss, lr);

      if ((step + 1) % o.eval_steps === 0 || step + 1 === o.max_steps) {
        const t0 = Date.now();
        const result = await evaluate(model, val, border, false);
        const { psnr, ssim } = result.sisn;
        const isBest = psnr >= bestPsnr;
        if (isBest) [bestPsnr, bestStep] = [psnr, step + 1];
        const meta = { step: step + 1, rng: rng.state, bestPsnr, bestStep, options: { ...o } };
        await saveCheckpoint(lastPath, model, adam, meta);
        if (isBest) await saveCheckpoint(bestPath, model, adam, meta);
        appendFileSync(logPath, `${JSON.stringify({ type: 'eval', step: step + 1, psnr, ssim, psnr_y: result.sisn.psnrY, ssim_y: result.sisn.ssimY, lr, best_psnr: bestPsnr, best_step: bestStep, seconds: (Date.now() - started) / 1000 })}\n`);
        history.psnrs.push({ step: step + 1, value: psnr });
        writePlot(join(o.ckpt_root, 'plot.svg'), history.losses, history.psnrs, title);
        if (sheetPairs.length) writeSheet(join(o.ckpt_root, 'sheet.png'), sheetPairs, await predict(model, sheetPairs), o.scale);
        model.training = true;
        progress.note(`[${step + 1}/${o.max_steps}] val PSNR ${psnr.toFixed(2)} dB SSIM ${ssim.toFixed(4)} (best ${bestPsnr.toFixed(2)} @ ${bestStep}) lr ${lr} eval ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      }
    }
    const seconds = (Date.now() - started) / 1000;
    log(`done: ${o.max_steps - start} steps in ${formatDuration(seconds)}; best validation PSNR ${bestPsnr.toFixed(2)} dB at step ${bestStep}; checkpoints in ${o.ckpt_root}`);
    adam.dispose();
    model.dispose();
    return { steps: o.max_steps - start, bestPsnr, bestStep, lastLoss, seconds };
  } finally {
    gpu.dispose();
  }
}
