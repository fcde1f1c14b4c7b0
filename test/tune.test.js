// The kernel tuner: choices per adapter in the cache file, reused without timing, re-tuned when a
// shader changes, corrupt files ignored, a tuned model equal to the default one, and `sisn tune`.
// No timing is asserted: which candidate wins is the adapter's business.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Gpu, SISN, Rng, Tensor, l1Loss, upsampleNearest, conv2dWeightGrad } from '../dist/index.js';
import { decideVariant } from '../dist/internals.js';
import { random, assertClose, gradOf, readJson } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sisn-tune-'));
const file = join(dir, 'kernel-choices.json');
const previous = process.env.SISN_CACHE_DIR;
test.before(() => {
  process.env.SISN_CACHE_DIR = dir;
});
test.after(() => {
  if (previous === undefined) delete process.env.SISN_CACHE_DIR;
  else process.env.SISN_CACHE_DIR = previous;
  rmSync(dir, { recursive: true, force: true });
});

// A kernel with two variants that compute the same: one element or four per invocation.
const SOURCE = `
struct Params { n: u32 }
override ROWS: u32 = 1u;
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(64)
fn double(@builtin(global_invocation_id) id: vec3u) {
  for (var r = 0u; r < ROWS; r++) {
    let i = id.x * ROWS + r;
    if (i < p.n) { out[i] = 2.0 * inp[i]; }
  }
}`;
const VARIANTS = ['one', 'four'];

async function open(source = SOURCE, options = {}) {
  const gpu = await Gpu.open(options);
  gpu.kernels.define('tunetest', source);
  return gpu;
}

/**
 * The test op: asks the tuner which variant to launch unless one is given; `trials` counts trial launches.
 * @param {Gpu} gpu
 * @param {Tensor} x
 * @param {string[]} trials
 * @param {string} [variant]
 * @returns {Tensor}
 */
function double(gpu, x, trials, variant) {
  const chosen =
    variant ??
    gpu.kernels.variant('tunetest.double', `n${x.size}`, VARIANTS, (name) => {
      trials.push(name);
      double(gpu, x, trials, name).dispose();
    });
  const rows = chosen === 'four' ? 4 : 1;
  const out = Tensor.empty(gpu, x.shape);
  gpu.kernels.dispatch('tunetest.double', {
    uniforms: { n: x.size },
    buffers: { out, inp: x },
    invocations: Math.ceil(x.size / rows),
    constants: { ROWS: rows },
  });
  return out;
}

/**
 * One tuning run of the test op over `size` values.
 * @param {Gpu} gpu
 * @param {import('../dist/index.js').TuneOptions} [options]
 * @param {number} [size]
 */
async function run(gpu, options, size = 1000) {
  const x = Tensor.fromArray(gpu, random(size, 3), [size]);
  /** @type {string[]} */
  const trials = [];
  const { result, tuned, skipped } = await gpu.tune(async () => {
    const y = double(gpu, x, trials);
    const values = await y.read();
    y.dispose();
    return values;
  }, options);
  assertClose(
    result,
    (await x.read()).map((v) => 2 * v),
    { what: 'doubled' },
  );
  x.dispose();
  return { tuned, trials, skipped };
}

/**
 * The kernel-choice cache file as the tests read it: per adapter, per kernel, per shape key the choice.
 * @typedef {{ choice: string, candidates: string[], pipelines: { name: string, constants: Record<string, number> }[] }}
 *   CachedKey
 * @typedef {{ kernels: Record<string, { source: string, keys: Record<string, CachedKey> }> }} CachedAdapter
 * @typedef {{ version: number, adapters: Record<string, CachedAdapter> }} ChoiceCache
 */
/** @param {string} path */
const readCacheAt = (path) => /** @type {ChoiceCache} */ (readJson(path));
const readCache = () => readCacheAt(file);
/**
 * This adapter's entry of a kernel-choice cache (the tests plant others named 'another...').
 * @param {ChoiceCache} cache
 * @returns {[string, CachedAdapter]}
 */
const adapterEntry = (cache) => {
  const entry = Object.entries(cache.adapters).find(([name]) => !name.startsWith('another'));
  if (!entry) throw new Error("the cache has no entry for this test's adapter");
  return entry;
};

test('without a choice an op gets the first variant, and outside a tuning run nothing is timed', async () => {
  rmSync(file, { force: true });
  const gpu = await open();
  /** @type {string[]} */
  const trials = [];
  assert.is(
    gpu.kernels.variant('tunetest.double', 'n8', VARIANTS, (name) => trials.push(name)),
    'one',
  );
  assert.is(
    gpu.kernels.variant('tunetest.double', 'n8', ['only'], (name) => trials.push(name)),
    'only',
  );
  assert.equal(trials, []);
  assert.not.ok(existsSync(file));
  gpu.dispose();
});

test('a tuning run times every candidate of a key once, picks one of them and writes the cache file', async () => {
  rmSync(file, { force: true });
  writeFileSync(
    file,
    JSON.stringify({
      version: 1,
      adapters: { 'another adapter': { kernels: { 'tunetest.double': { source: 'x', keys: {} } } } },
    }),
  );
  const gpu = await open();
  const { tuned, trials, skipped } = await run(gpu);
  assert.is(skipped, undefined);
  assert.is(trials.length, 6 * VARIANTS.length, 'three rounds to pick the fastest and three to re-time it, each');
  assert.equal(new Set(trials), new Set(VARIANTS));
  assert.is(tuned.length, 1);
  assert.ok(VARIANTS.includes(tuned[0].choice), tuned[0].choice);
  assert.equal(Object.keys(tuned[0].ms).sort(), [...VARIANTS].sort());
  const cache = readCache();
  assert.ok(cache.adapters['another adapter'], "another adapter's entries are kept");
  const [identity, entry] = adapterEntry(cache);
  assert.ok(identity.includes(gpu.adapter.info.description), identity);
  const kernel = entry.kernels['tunetest.double'];
  assert.match(kernel.source, /^[0-9a-f]{16}$/);
  assert.is(kernel.keys.n1000.choice, tuned[0].choice);
  assert.equal(kernel.keys.n1000.candidates, VARIANTS);
  const rows = tuned[0].choice === 'four' ? 4 : 1;
  assert.equal(
    kernel.keys.n1000.pipelines,
    [{ name: 'tunetest.double', constants: { ROWS: rows } }],
    'the pipelines prepareAll compiles',
  );
  gpu.dispose();
});

test('the fastest is chosen only where it beats the default again on the rounds that did not pick it', () => {
  const names = ['default', 'lucky', 'steady'];
  // Selection rounds, then confirmation rounds.
  const lucky = decideVariant(names, [
    [10, 10, 10, 10, 10, 10],
    [8, 11, 11, 10, 10.2, 9.9],
    [9.5, 9.5, 9.5, 9.8, 9.7, 9.9],
  ]);
  assert.is(lucky.fastest, 'lucky');
  assert.is(lucky.choice, 'default', 'a lucky first round is not enough');
  assert.ok(Math.abs(lucky.versusDefault - 1) < 1e-9, String(lucky.versusDefault));
  assert.equal(lucky.ms, { default: 10, lucky: 8, steady: 9.5 }, 'the least of the selection rounds');
  const faster = decideVariant(names, [
    [10, 10, 10, 10, 12, 10],
    [6, 6, 6, 6, 6, 9],
    [9, 9, 9, 9, 9, 9],
  ]);
  assert.is(faster.choice, 'lucky');
  assert.ok(Math.abs(faster.versusDefault - 0.6) < 1e-9, String(faster.versusDefault));
  const missing = decideVariant(names, [
    [10, 10, 10, 0, 0, 0],
    [6, 6, 6, 6, 6, 6],
    [9, 9, 9, 9, 9, 9],
  ]);
  assert.is(missing.choice, 'default', 'no time for the default: it stays');
  assert.throws(() => decideVariant(names, [[1, 2, 3]]), /want 6 times for each of 3/);
});

test('a cached choice is used by a later engine without timing it again; retime times it', async () => {
  const cache = readCache();
  const [, entry] = adapterEntry(cache);
  entry.kernels['tunetest.double'].keys.n1000.choice = 'four';
  writeFileSync(file, JSON.stringify(cache));
  const gpu = await open();
  assert.is(
    gpu.kernels.variant('tunetest.double', 'n1000', VARIANTS, () => assert.unreachable('timed')),
    'four',
  );
  const again = await run(gpu);
  assert.equal(again.trials, []);
  assert.equal(again.tuned, []);
  assert.ok(
    gpu.kernels.tuner.chosenPipelines().some((p) => p.name === 'tunetest.double'),
    'prepareAll compiles the chosen pipelines',
  );
  const retimed = await run(gpu, { retime: true });
  assert.is(retimed.trials.length, 6 * VARIANTS.length);
  gpu.dispose();
});

test('a changed shader source is tuned again; another candidate list too', async () => {
  const gpu = await open(`${SOURCE}\n// changed`);
  assert.is(
    gpu.kernels.variant('tunetest.double', 'n1000', VARIANTS, () => {}),
    'one',
    'the old choice no longer holds',
  );
  const { trials } = await run(gpu);
  assert.is(trials.length, 6 * VARIANTS.length);
  assert.is(
    gpu.kernels.variant('tunetest.double', 'n1000', ['four', 'one'], () => {}),
    'four',
    'another list is not the tuned one',
  );
  gpu.dispose();
});

test('a corrupt cache file is ignored with a warning, and replaced by the next tuning run', async () => {
  writeFileSync(file, '{"version": 1, "adapters": ');
  /** @type {string[]} */
  const warnings = [];
  const warn = console.warn;
  console.warn = (m) => warnings.push(String(m));
  let gpu;
  try {
    gpu = await open();
  } finally {
    console.warn = warn;
  }
  assert.is(warnings.length, 1);
  assert.ok(warnings[0].includes(file), warnings[0]);
  assert.is(
    gpu.kernels.variant('tunetest.double', 'n1000', VARIANTS, () => {}),
    'one',
  );
  await run(gpu);
  assert.ok(adapterEntry(readCache())[1].kernels['tunetest.double'].keys.n1000);
  gpu.dispose();
});

test('without timestamp queries a tuning run runs untimed and says why', async () => {
  const gpu = await open(SOURCE, { profiling: false });
  assert.not.ok(gpu.kernels.tuner.canTime);
  const { trials, tuned, skipped } = await run(gpu, { retime: true });
  assert.equal(trials, []);
  assert.equal(tuned, []);
  assert.match(skipped ?? '', /timestamp-query/);
  gpu.dispose();
});

/**
 * Loss, weight gradients and eval output of a small SISN, tuned or not (the cache decides).
 * @param {Gpu} gpu
 * @param {boolean} tune
 */
async function smallSisn(gpu, tune) {
  const model = new SISN(gpu, { scale: 2, groups: 1, blocks: 1, channels: 8 });
  model.initialize(new Rng(5));
  model.training = true;
  const lr = Tensor.fromArray(gpu, random(2 * 3 * 6 * 6, 7, 0, 255), [2, 3, 6, 6]);
  const hr = Tensor.fromArray(gpu, random(2 * 3 * 12 * 12, 8, 0, 255), [2, 3, 12, 12]);
  const step = async () => {
    model.params.zeroGrad();
    const loss = gpu.scope(() => l1Loss(model.forward(upsampleNearest(lr, 2)), hr));
    gpu.tape.backward(loss);
    const value = await loss.read();
    loss.dispose();
    return value;
  };
  const { result: loss, tuned } = tune ? await gpu.tune(step) : { result: await step(), tuned: [] };
  const grads = await Promise.all(
    model.params
      .entries()
      .filter(([name]) => name.endsWith('weight'))
      .map(([, t]) => gradOf(t).read()),
  );
  [model, lr, hr].forEach((t) => t.dispose());
  return { loss, grads, tuned };
}

test(
  'a tuning run over a small SISN picks a candidate for every key it met; a tuned model computes what the ' +
    'default one does',
  async () => {
    rmSync(file, { force: true });
    const gpu = await Gpu.open();
    const base = await smallSisn(gpu, true);
    assert.ok(base.tuned.length > 0, 'the weight gradients were tuned');
    for (const t of base.tuned) assert.ok(t.candidates.includes(t.choice), `${t.kernel} [${t.key}]: ${t.choice}`);
    gpu.dispose();
    // Every key forced to its last candidate (not the default), as a later run would read it.
    const cache = readCache();
    for (const kernel of Object.values(adapterEntry(cache)[1].kernels))
      for (const c of Object.values(kernel.keys)) c.choice = c.candidates[c.candidates.length - 1];
    writeFileSync(file, JSON.stringify(cache));
    const tunedGpu = await Gpu.open();
    const tuned = await smallSisn(tunedGpu, false);
    tunedGpu.dispose();
    assertClose(tuned.loss, base.loss, { rtol: 1e-5, what: 'loss' });
    tuned.grads.forEach((g, i) =>
      assertClose(g, base.grads[i], { rtol: 1e-4, atol: 1e-4, what: `weight gradient ${i}` }),
    );
  },
);

test('conv2d weight gradient: an unknown variant is an error', async () => {
  const gpu = await Gpu.open();
  const [x, g] = [Tensor.zeros(gpu, [1, 2, 3, 3]), Tensor.zeros(gpu, [1, 2, 3, 3])];
  assert.throws(() => conv2dWeightGrad(x, g, [2, 2, 3, 3], { padding: 1, variant: 'nope' }), /no variant 'nope'/);
  gpu.dispose();
});

test('training times kernel variants in its first step and validation, and not with --no_tune', () => {
  const own = mkdtempSync(join(tmpdir(), 'sisn-tune-train-'));
  const faces = join(root, 'test/fixtures/faces');
  const tiny = [
    '--dataset_root',
    faces,
    '--train_val_range',
    '1-4/5-6',
    '--hr_crop',
    '88x104',
    '--num_groups',
    '1',
    '--num_blocks',
    '1',
    '--num_channels',
    '8',
    '--batch_size',
    '2',
    '--patch_size',
    '8',
    '--max_steps',
    '2',
    '--eval_steps',
    '2',
  ];
  /** @type {(cache: string, ...args: string[]) => import('node:child_process').SpawnSyncReturns<string>} */
  const trainJs = (cache, ...args) =>
    spawnSync(process.execPath, [join(root, 'train.js'), ...tiny, ...args], {
      encoding: 'utf8',
      env: { ...process.env, SISN_CACHE_DIR: join(own, cache) },
      timeout: 300000,
    });
  try {
    const tuned = trainJs('tuned', '--ckpt_root', join(own, 'a'));
    assert.is(tuned.status, 0, tuned.stderr);
    assert.match(tuned.stderr, /the first step timed the kernel variants of \d+ shapes/);
    assert.match(tuned.stderr, /the first validation timed the kernel variants of \d+ shapes/);
    const cache = readCacheAt(join(own, 'tuned', 'kernel-choices.json'));
    assert.ok(Object.values(cache.adapters)[0].kernels['conv2d_weight.weight_grad']);
    const untuned = trainJs('untuned', '--ckpt_root', join(own, 'b'), '--no_tune');
    assert.is(untuned.status, 0, untuned.stderr);
    assert.not.match(untuned.stderr, /timed the kernel variants/);
    assert.not.ok(existsSync(join(own, 'untuned', 'kernel-choices.json')));
  } finally {
    rmSync(own, { recursive: true, force: true });
  }
});

test('sisn tune on a tiny config times the kernels and writes the cache', () => {
  const own = mkdtempSync(join(tmpdir(), 'sisn-tune-cli-'));
  try {
    const r = spawnSync(
      process.execPath,
      [join(root, 'dist/cli/bin.js'), 'tune', '--scale', '2', '--channels', '8', '--lr', '6', '--batch', '2'],
      { encoding: 'utf8', env: { ...process.env, SISN_CACHE_DIR: own }, timeout: 120000 },
    );
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /training step, batch 2, LR 6x6: \d+ kernel shapes timed/);
    assert.match(r.stdout, /inference, LR 6x6/);
    assert.match(r.stdout, /conv2d_weight\.weight_grad \[b2 c8x/);
    const cache = readCacheAt(join(own, 'kernel-choices.json'));
    assert.ok(Object.values(cache.adapters)[0].kernels['conv2d_weight.weight_grad']);
  } finally {
    rmSync(own, { recursive: true, force: true });
  }
});

test.run();
