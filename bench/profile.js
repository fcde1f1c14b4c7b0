#!/usr/bin/env node
// Per-kernel GPU time of one training step or forward pass (timestamp queries), by kernel and by
// family, with the share outside convolutions and the pool's peak memory.
//
//   node bench/profile.js [--eval] [--scale 4] [--batch 10] [--lr 32] [--groups 10] [--blocks 10] [--channels 64]
import { parseArgs } from 'node:util';
import { Gpu, SISN } from '../dist/index.js';
import { trainingStep, forwardPass, profile } from './step-profile.js';

const { values } = parseArgs({
  options: {
    eval: { type: 'boolean', default: false },
    scale: { type: 'string', default: '4' },
    batch: { type: 'string', default: '10' },
    lr: { type: 'string', default: '32' },
    groups: { type: 'string', default: '10' },
    blocks: { type: 'string', default: '10' },
    channels: { type: 'string', default: '64' },
  },
});
const shape = {
  scale: /** @type {import('../dist/index.js').SisnConfig['scale']} */ (+values.scale),
  lrSize: +values.lr,
  groups: +values.groups,
  blocks: +values.blocks,
  channels: +values.channels,
};
const gpu = await Gpu.open({ profiling: true });
await SISN.prepare(gpu);
const fn = values.eval ? forwardPass(gpu, shape) : trainingStep(gpu, { ...shape, batch: +values.batch });
for (let i = 0; i < 2; i++) {
  const t = performance.now();
  fn();
  await gpu.sync();
  console.log(`run ${i + 1}: ${(performance.now() - t).toFixed(0)} ms`);
}
gpu.pool.resetPeak();
const p = await profile(gpu, fn);
console.log(
  `profiled run: ${p.wallMs.toFixed(0)} ms wall, ${p.gpuMs.toFixed(0)} ms GPU in ${p.dispatches} dispatches, ` +
    `outside convolutions ${(100 * (1 - p.convShare)).toFixed(1)}%, peak ` +
    `${(gpu.pool.peakInUseBytes / 2 ** 20).toFixed(0)} MiB`,
);
const row = (/** @type {string} */ name, /** @type {number} */ ms, /** @type {number} */ count) =>
  console.log(
    `${ms.toFixed(1).padStart(10)} ${((100 * ms) / p.gpuMs).toFixed(1).padStart(5)}% ${String(count).padStart(6)}  ` +
      `${name}`,
  );
console.log('\nby family');
for (const f of p.families) row(f.family, f.ms, f.count);
console.log('\nby kernel');
for (const k of p.kernels) row(k.label, k.ms, k.count);
fn.dispose();
gpu.dispose();
process.exit(0);
