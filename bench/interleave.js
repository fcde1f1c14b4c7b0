// Two builds of the engine timed in one process, one step of each in turn, so that the machine's
// drift (this shared machine moves by ±20% between runs of one build) falls on both alike.
//
//   node bench/interleave.js <repoA> <repoB> [--cache-a DIR] [--cache-b DIR] [--case train|S:LR] [--rounds N]
//
// repoA / repoB: checkouts with dist/ built (a git worktree of the older commit, say); each may keep
// its kernel choices in a cache folder of its own (choices are keyed by shader source, one per
// kernel: tune each build into its folder first). --case train (default): the x4 training step,
// batch 10, LR 32; S:LR: the forward at scale S, LR size LR, batch 1. Prints each round's times and
// B/A, then the medians.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'cache-a': { type: 'string' },
    'cache-b': { type: 'string' },
    case: { type: 'string', default: 'train' },
    rounds: { type: 'string', default: '5' },
  },
});
if (positionals.length !== 2) {
  console.error(
    'usage: node bench/interleave.js <repoA> <repoB> [--cache-a DIR] [--cache-b DIR] [--case train|S:LR] [--rounds N]',
  );
  process.exit(2);
}
const rounds = Number(values.rounds);
const forward = values.case === 'train' ? null : values.case.split(':').map(Number);
if (!(rounds >= 1) || (forward && (forward.length !== 2 || forward.some((v) => !(v > 0))))) {
  console.error(`interleave: bad --rounds ${values.rounds} or --case ${values.case} (train, or scale:lr such as 4:64)`);
  process.exit(2);
}

/**
 * The engine of the checkout `repo` opened, with the case's step (typed as this checkout's: both
 * builds are assumed to keep the same API).
 * @param {string} repo
 * @param {string | undefined} cache
 */
async function open(repo, cache) {
  // The choices file is read when the engine opens: point it at this build's folder first.
  if (cache) process.env.SISN_CACHE_DIR = resolve(cache);
  else delete process.env.SISN_CACHE_DIR;
  const at = (/** @type {string} */ file) => pathToFileURL(resolve(repo, file)).href;
  /** @type {unknown} */
  const engine = await import(at('dist/index.js'));
  /** @type {unknown} */
  const steps = await import(at('bench/step-profile.js'));
  const { Gpu, SISN } = /** @type {typeof import('../dist/index.js')} */ (engine);
  const { forwardPass, trainingStep } = /** @type {typeof import('./step-profile.js')} */ (steps);
  const gpu = await Gpu.open();
  await SISN.prepare(gpu);
  const run = forward
    ? forwardPass(gpu, {
        scale: /** @type {import('../dist/index.js').SisnConfig['scale']} */ (forward[0]),
        lrSize: forward[1],
      })
    : trainingStep(gpu, { scale: 4, batch: 10, lrSize: 32 });
  return { gpu, run, times: /** @type {number[]} */ ([]) };
}

/** @param {Awaited<ReturnType<typeof open>>} build */
async function once(build) {
  const start = performance.now();
  build.run();
  await build.gpu.sync();
  return performance.now() - start;
}

const a = await open(positionals[0], values['cache-a']);
const b = await open(positionals[1], values['cache-b']);
for (const build of [a, b]) for (let i = 0; i < 2; i++) await once(build);
/** @type {number[]} */
const ratios = [];
for (let r = 0; r < rounds; r++) {
  // Alternate which goes first.
  let ta, tb;
  if (r % 2) [tb, ta] = [await once(b), await once(a)];
  else [ta, tb] = [await once(a), await once(b)];
  a.times.push(ta);
  b.times.push(tb);
  ratios.push(tb / ta);
  console.log(`round ${r + 1}: A ${ta.toFixed(0)} ms, B ${tb.toFixed(0)} ms, B/A ${(tb / ta).toFixed(3)}`);
}
const median = (/** @type {number[]} */ v) => [...v].sort((x, y) => x - y)[v.length >> 1];
console.log(
  `median: A ${median(a.times).toFixed(0)} ms, B ${median(b.times).toFixed(0)} ms, B/A ${median(ratios).toFixed(3)}`,
);
for (const build of [a, b]) {
  build.run.dispose();
  build.gpu.dispose();
}
process.exit(0);
