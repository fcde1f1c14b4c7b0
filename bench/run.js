#!/usr/bin/env node
// Benchmarks (tinybench, medians): every kernel family at SISN's real shapes, beside a reference
// GEMM measured in the same run, then end-to-end forward passes (three rounds each, every round
// followed by PyTorch CPU's time for the case where it is installed) and a training step of the paper
// config, and face descriptors and detections per second (face-api's networks on the engine). Prints
// a table and writes JSON (default bench/results.json, then shown in docs/performance.md by
// scripts/performance-doc.mjs).
//
//   npm run bench                      everything (several minutes on a 2-core CPU adapter)
//   npm run bench -- --quick           kernels and the smallest forward only
//   npm run bench -- --json out.json   another output file
//   npm run bench -- --no-pytorch      without the PyTorch CPU reference (run where `import torch` works)
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { Bench } from 'tinybench';
import { spawnSync } from 'node:child_process';
import {
  Gpu,
  SISN,
  Tensor,
  Rng,
  conv2d,
  conv2dInputGrad,
  conv2dWeightGrad,
  batchNorm2d,
  globalAvgPool,
  splitAttend,
  pixelShuffle,
} from '../dist/index.js';
import { median as medianOf } from '../dist/internals.js';
import { trainingStep, forwardPass, profile } from './step-profile.js';
import { DOC, pytorchRounds, withResults } from '../scripts/performance-doc.mjs';
import { faceThroughput } from './face.js';

/**
 * What this run writes: docs/performance.md's fields, and more (peakGemm and face are set before
 * anything reads them).
 * @typedef {import('../scripts/performance-doc.mjs').BenchResults} BenchResults
 * @typedef {import('../scripts/performance-doc.mjs').EndToEndResult} EndToEndResult
 * @typedef {BenchResults & { peakGemm: NonNullable<BenchResults['peakGemm']>,
 *   face: Awaited<ReturnType<typeof faceThroughput>>, pytorch?: { cases: Record<string, number> },
 *   trainingStepProfile?: { kernels: unknown[] } }} Results
 * @typedef {[name: string, amount: number, unit: 'flop' | 'byte', fn: (() => void) | null]} KernelCase
 */

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonPath =
  args[args.indexOf('--json') + 1] && args.includes('--json')
    ? args[args.indexOf('--json') + 1]
    : new URL('./results.json', import.meta.url).pathname;

// With timestamp queries where the adapter has them: the training step's breakdown by kernel family.
const gpu = await Gpu.open({ profiling: true }).catch(() => Gpu.open());
const profiling = gpu.device.features.has('timestamp-query');
const compileStarted = performance.now();
const pipelines = await SISN.prepare(gpu);
const compileMs = performance.now() - compileStarted;
const rng = new Rng(7);
const rand = (/** @type {number[]} */ shape, lo = -1, hi = 1) =>
  Tensor.fromArray(
    gpu,
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(lo, hi)),
    shape,
  );
const results = /** @type {Results} */ (
  /** @type {unknown} */ ({
    adapter: gpu.describe(),
    cpu: os.cpus()[0]?.model,
    cores: os.cpus().length,
    node: process.version,
    date: new Date().toISOString(),
    compile: { pipelines, ms: compileMs },
    kernels: [],
    endToEnd: [],
  })
);

/**
 * Median wall time (ms) of one launch of `fn`. Each sample records `reps` launches and waits for
 * them once; by default `reps` is chosen so a sample takes about 50 ms, which buries the cost of
 * the wait itself.
 * @param {string} name
 * @param {() => unknown} fn
 * @param {{ reps?: number, iterations?: number, warmups?: number }} [options]
 */
async function median(name, fn, { reps, iterations = 8, warmups = 1 } = {}) {
  if (reps === undefined) {
    fn();
    await gpu.sync();
    const t = performance.now();
    fn();
    await gpu.sync();
    reps = Math.max(1, Math.min(200, Math.round(50 / (performance.now() - t))));
  }
  const bench = new Bench({ name, iterations, time: 0, warmupIterations: warmups, warmupTime: 0 });
  bench.add(name, async () => {
    for (let r = 0; r < reps; r++) fn();
    await gpu.sync();
  });
  await bench.run();
  const task = bench.tasks[0];
  if (task.result.state !== 'completed')
    throw /** @type {{ error?: Error }} */ (task.result).error ?? new Error(`${name}: ${task.result.state}`);
  return task.result.latency.p50 / reps;
}

// Reference GEMM: 1024 x 1024 x 1024.
gpu.kernels.define('bench_gemm', readFileSync(new URL('./gemm.wgsl', import.meta.url), 'utf8'));
{
  const n = 1024;
  const a = rand([n, n]);
  const b = rand([n, n]);
  const c = Tensor.empty(gpu, [n, n]);
  const ms = await median(
    'gemm',
    () =>
      gpu.kernels.dispatch('bench_gemm.main', {
        uniforms: { m: n, n, k: n },
        buffers: { a, b, c },
        invocations: [n / 8, n / 4, 1],
      }),
    { iterations: 5 },
  );
  results.peakGemm = { shape: '1024x1024x1024', ms, gflops: (2 * n ** 3) / ms / 1e6 };
  [a, b, c].forEach((t) => t.dispose());
}

const C = 64;
const LR = 32;
/** @type {KernelCase[]} */
const kernelCases = [];
/**
 * @param {string} name
 * @param {number[]} xs
 * @param {number[]} ws
 * @param {number} groups
 */
const convCase = (name, xs, ws, groups) => {
  const pad = (ws[2] - 1) / 2;
  const flops = 2 * ws.reduce((a, b) => a * b, 1) * xs[0] * xs[2] * xs[3];
  const x = rand(xs);
  const w = rand(ws, -0.1, 0.1);
  const g = rand([xs[0], ws[0], xs[2], xs[3]]);
  const o = { padding: pad, groups };
  kernelCases.push([`${name} forward`, flops, 'flop', () => conv2d(x, w, null, o).dispose()]);
  kernelCases.push([`${name} input grad`, flops, 'flop', () => conv2dInputGrad(g, w, o).dispose()]);
  kernelCases.push([`${name} weight grad`, flops, 'flop', () => conv2dWeightGrad(x, g, ws, o).dispose()]);
};
gpu.noGrad(() => {
  convCase(`grouped 3x3 ${C}->${4 * C} g4 @${LR}`, [1, C, LR, LR], [4 * C, C / 4, 3, 3], 4);
  convCase(`1x1 ${C}->${C} @${LR}`, [1, C, LR, LR], [C, C, 1, 1], 1);
  convCase(`3x3 ${C}->${C} @${LR}`, [1, C, LR, LR], [C, C, 3, 3], 1);
  convCase(`tail 3x3 ${C}->${4 * C} @${2 * LR}`, [1, C, 2 * LR, 2 * LR], [4 * C, C, 3, 3], 1);
});
{
  const z = rand([1, 4 * C, LR, LR]);
  const p = (/** @type {number} */ n) => rand([n], 0.5, 1.5);
  const [gm, bt, rm, rv] = [p(4 * C), p(4 * C), p(4 * C), p(4 * C)];
  const bytes = z.size * 4;
  kernelCases.push([
    `batchNorm eval+ReLU [1,${4 * C},${LR},${LR}]`,
    2 * bytes,
    'byte',
    () => batchNorm2d(z, gm, bt, rm, rv, { training: false, relu: true }).dispose(),
  ]);
  kernelCases.push([
    `batchNorm train [1,${4 * C},${LR},${LR}]`,
    4 * bytes,
    'byte',
    () => batchNorm2d(z, gm, bt, rm, rv, { training: true }).dispose(),
  ]);
  kernelCases.push([`global avg pool [1,${4 * C},${LR},${LR}]`, bytes, 'byte', () => globalAvgPool(z).dispose()]);
  const att = rand([1, 4 * C, 1, 1]);
  // Pooling of the splits' sum, then the softmax-weighted sum (the gate replaced by fixed logits).
  kernelCases.push([
    `split attention R4 [1,${4 * C},${LR},${LR}]`,
    bytes * 2.25,
    'byte',
    () => splitAttend(z, 4, () => att).dispose(),
  ]);
  kernelCases.push([`pixel shuffle [1,${4 * C},${2 * LR},${2 * LR}]`, 0, 'byte', null]);
  const ps = rand([1, 4 * C, 2 * LR, 2 * LR]);
  kernelCases[kernelCases.length - 1] = [
    `pixel shuffle [1,${4 * C},${2 * LR},${2 * LR}]`,
    2 * ps.size * 4,
    'byte',
    () => pixelShuffle(ps, 2).dispose(),
  ];
}
for (const [name, amount, unit, fn] of kernelCases) {
  // noGrad around each launch: wrapped around the async median it would end at the first await.
  const ms = await median(name, () => gpu.noGrad(/** @type {() => void} */ (fn)));
  const rate = amount / ms / 1e6;
  results.kernels.push({ name, ms, ...(unit === 'flop' ? { gflops: rate } : { gbps: rate }) });
  console.error(`  ${name}: ${ms.toFixed(2)} ms`);
}

// PyTorch CPU as the external reference, where it is installed (never a dependency).
/** @type {string | undefined} */
let python = args.includes('--no-pytorch')
  ? undefined
  : ['python3', '/usr/bin/python3'].find(
      (py) => spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0,
    );

/**
 * PyTorch's median (ms) of one end-to-end case, in a process of its own: PyTorch's training step
 * runs much slower after the forwards in one process (docs/performance.md); alone, each case gets
 * PyTorch at its best. Undefined without PyTorch, and after a failure (reported once).
 * @param {string} name
 */
function pytorchMs(name) {
  if (!python) return undefined;
  console.error(`  PyTorch CPU reference (${python}): ${name} ...`);
  const ref = spawnSync(
    python,
    [
      new URL('./pytorch_reference.py', import.meta.url).pathname,
      '--threads',
      String(os.cpus().length),
      '--case',
      name,
    ],
    { encoding: 'utf8' },
  );
  if (ref.status !== 0) {
    console.error(`  PyTorch reference failed:\n${ref.stderr}`);
    python = undefined;
    return undefined;
  }
  /** @type {unknown} */
  const report = JSON.parse(ref.stdout);
  const { cases, ...about } = /** @type {{ torch: string, threads: number, cases: Record<string, number> }} */ (report);
  results.pytorch ??= { ...about, cases: {} };
  return cases[name];
}

// End to end, paper config (G10 I10 C64): eval forwards at batch 1, and a training step.
/** @type {[import('../dist/index.js').SisnConfig['scale'], number, number][]} */
const forwardCases = quick
  ? [[4, 128, 12.6]]
  : [
      [4, 128, 12.6],
      [4, 256, 50.4],
      [8, 256, 17.8],
    ];
// This machine moves by ±20% between runs of one build, PyTorch by more: each forward runs three
// rounds of the engine and then PyTorch, and the doc gives the median ratio and the range.
const ROUNDS = 3;
for (const [scale, hr, gflop] of forwardCases) {
  const name = `forward x${scale} HR ${hr}`;
  const run = forwardPass(gpu, { scale, lrSize: hr / scale });
  const t = performance.now();
  run();
  await gpu.sync();
  const firstMs = performance.now() - t;
  /** @type {import('../scripts/performance-doc.mjs').EndToEndRun[]} */
  const runs = [];
  for (let round = 1; round <= ROUNDS; round++) {
    // The second and third calls still run slower (buffers the pool has not held before, the quiet
    // wait still learning), and later rounds follow PyTorch's process: each round has two warm-ups
    // and a median of 5, as the PyTorch reference does.
    const ms = await median(name, run, { reps: 1, iterations: 5, warmups: 2 });
    const torchMs = pytorchMs(name);
    runs.push(torchMs === undefined ? { ms } : { ms, pytorchMs: torchMs, ratio: ms / torchMs });
    console.error(
      `  ${name} round ${round}/${ROUNDS}: ${ms.toFixed(0)} ms` +
        (round === 1 ? ` (first call ${firstMs.toFixed(0)} ms)` : '') +
        (torchMs === undefined ? '' : `, PyTorch CPU ${torchMs.toFixed(0)} ms, ${(ms / torchMs).toFixed(2)}x`),
    );
  }
  run.dispose();
  const ms = medianOf(runs.map((r) => r.ms));
  const e = /** @type {EndToEndResult} */ ({
    name,
    case: 'G10 I10 C64, batch 1, eval',
    ms,
    gflops: gflop / (ms / 1000),
    firstCallMs: firstMs,
    runs,
  });
  const ratios = runs.flatMap((r) => (r.ratio === undefined ? [] : [r.ratio]));
  if (ratios.length > 0) {
    e.pytorchMs = medianOf(runs.flatMap((r) => (r.pytorchMs === undefined ? [] : [r.pytorchMs])));
    e.vsPytorch = medianOf(ratios);
    e.vsPytorchRange = [Math.min(...ratios), Math.max(...ratios)];
    /** @type {NonNullable<Results['pytorch']>} */ (results.pytorch).cases[name] = e.pytorchMs;
  }
  results.endToEnd.push(e);
}
if (!quick) {
  const step = trainingStep(gpu, { scale: 4, batch: 10, lrSize: 32 });
  const t = performance.now();
  step();
  await gpu.sync();
  const firstMs = performance.now() - t;
  gpu.pool.resetPeak();
  const ms = await median('train step', step, { reps: 1, iterations: 3 });
  const peakMiB = gpu.pool.peakInUseBytes / 2 ** 20;
  results.endToEnd.push(
    /** @type {EndToEndResult} */ ({
      name: 'training step x4',
      case: 'G10 I10 C64, batch 10, LR patch 32, L1 + backward + Adam',
      ms,
      gflops: 378 / (ms / 1000),
      firstCallMs: firstMs,
      peakMiB,
    }),
  );
  console.error(`  training step: ${ms.toFixed(0)} ms (first call ${firstMs.toFixed(0)} ms)`);
  if (profiling) {
    const p = await profile(gpu, step);
    results.trainingStepProfile = {
      gpuMs: p.gpuMs,
      dispatches: p.dispatches,
      shareOutsideConvolutions: 1 - p.convShare,
      families: p.families,
      kernels: p.kernels,
    };
  }
  step.dispose();
}
for (const e of results.endToEnd) e.vsGemm = /** @type {number} */ (e.gflops) / results.peakGemm.gflops;
results.face = await faceThroughput(gpu);
console.error(
  `  face: ${results.face.descriptors.perSecond.toFixed(1)} descriptors/s, ` +
    `${results.face.detections.perSecond.toFixed(1)} detections/s`,
);

// The training step's reference: one run, like the engine's (it takes minutes).
const train = results.endToEnd.find((e) => e.name === 'training step x4');
const trainTorchMs = train && pytorchMs(train.name);
if (train && trainTorchMs !== undefined) {
  Object.assign(train, { pytorchMs: trainTorchMs, vsPytorch: train.ms / trainTorchMs });
  /** @type {NonNullable<Results['pytorch']>} */ (results.pytorch).cases[train.name] = trainTorchMs;
}

/**
 * 'min-max' of some numbers.
 * @param {number[]} xs
 * @param {number} digits
 */
const range = (xs, digits) => `${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)}`;
const rows = [
  [`compile all ${pipelines} pipelines (SISN.prepare)`, compileMs.toFixed(0), '', 'before any timing below'],
  ['reference GEMM 1024^3', results.peakGemm.ms.toFixed(2), `${results.peakGemm.gflops.toFixed(1)} GFLOP/s`, ''],
  ...results.kernels.map((k) => [
    k.name,
    k.ms.toFixed(2),
    k.gflops !== undefined ? `${k.gflops.toFixed(1)} GFLOP/s` : `${/** @type {number} */ (k.gbps).toFixed(1)} GB/s`,
    k.gflops !== undefined ? `${((100 * k.gflops) / results.peakGemm.gflops).toFixed(0)}% of GEMM` : '',
  ]),
  ...results.endToEnd.map((e) => [
    `${e.name} (${e.case})`,
    e.runs
      ? `${e.ms.toFixed(0)} (${range(
          e.runs.map((r) => r.ms),
          0,
        )})`
      : e.ms.toFixed(0),
    `${/** @type {number} */ (e.gflops).toFixed(1)} GFLOP/s`,
    [
      `${(100 * e.vsGemm).toFixed(0)}% of GEMM`,
      e.pytorchMs &&
        `PyTorch CPU ${e.pytorchMs.toFixed(0)} ms (${/** @type {number} */ (e.vsPytorch).toFixed(1)}x` +
          (e.vsPytorchRange ? `, ${range(e.vsPytorchRange, 1)}x over ${pytorchRounds(e)} runs)` : ')'),
      `first call ${e.firstCallMs.toFixed(0)} ms`,
      e.peakMiB && `peak ${e.peakMiB.toFixed(0)} MiB`,
    ]
      .filter(Boolean)
      .join(', '),
  ]),
  [
    `face descriptors (${results.face.descriptors.case})`,
    results.face.descriptors.msPerFace.toFixed(1),
    `${results.face.descriptors.perSecond.toFixed(1)} descriptors/s`,
    'ms per face',
  ],
  [
    `face detections (${results.face.detections.case})`,
    results.face.detections.msPerImage.toFixed(1),
    `${results.face.detections.perSecond.toFixed(1)} detections/s`,
    'ms per image',
  ],
];
const width = rows.reduce((w, r) => r.map((c, i) => Math.max(w[i] ?? 0, c.length)), /** @type {number[]} */ ([]));
console.log(`${results.adapter}\n${results.cpu} x${results.cores}, Node ${results.node}\n`);
console.log(['case', 'ms (median)', 'rate', ''].map((c, i) => c.padEnd(width[i])).join('  '));
for (const r of rows) console.log(r.map((c, i) => (i === 1 ? c.padStart(width[i]) : c.padEnd(width[i]))).join('  '));
if (results.trainingStepProfile) {
  const p = results.trainingStepProfile;
  console.log(
    `\ntraining step by kernel family (GPU time, ${p.dispatches} dispatches; outside convolutions ` +
      `${(100 * p.shareOutsideConvolutions).toFixed(0)}%)`,
  );
  for (const f of p.families)
    console.log(
      `  ${f.family.padEnd(22)} ${f.ms.toFixed(0).padStart(7)} ms  ${(100 * f.share).toFixed(1).padStart(5)}%  ` +
        `${String(f.count).padStart(5)} dispatches`,
    );
}
writeFileSync(jsonPath, JSON.stringify(results, null, 1));
console.log(`\nwritten ${jsonPath}`);
if (!args.includes('--json')) {
  writeFileSync(DOC, withResults(readFileSync(DOC, 'utf8'), results));
  console.log(`and its results section in ${DOC}`);
}
gpu.dispose();
