#!/usr/bin/env node
// `npm test`: the whole suite on the default adapter, and the adapter checks (the op checks
// against CPU references and finite differences, and the PyTorch fixture conformance: the files
// test/{ops,composite,nosubgroups,conformance,sequence,serve}*.test.js) on each adapter configuration below.
// Each run is a uvu child process under a header naming its adapter; two run at a time where
// there are two cores: the first is shown as it goes, the others whole, in order, once done. The last line sums them
// all as
// 'N passed, N failed'; the exit status is non-zero if anything failed.
//
// With SISN_ADAPTER, SISN_SUBGROUPS, SISN_LIMITS or SISN_FEATURE_LEVEL set, only the whole suite runs, as they say
// (e.g. `SISN_ADAPTER=swiftshader npm test`).
import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const uvu = fileURLToPath(new URL('../node_modules/uvu/bin.js', import.meta.url));
const WHOLE_SUITE = '\\.test\\.js$';
const ADAPTER_CHECKS = '^(ops|composite|nosubgroups|conformance|sequence|serve)([.-][^/]*)?\\.test\\.js$';

// SwiftShader, the slowest, starts first beside the whole suite.
const CONFIGURATIONS = [
  { name: 'SwiftShader, 4-lane subgroups', env: { SISN_ADAPTER: 'swiftshader' } },
  { name: 'lavapipe, 16-lane subgroups', env: { SISN_ADAPTER: 'llvmpipe', LP_NATIVE_VECTOR_WIDTH: '512' } },
  { name: 'lavapipe without subgroups', env: { SISN_ADAPTER: 'llvmpipe', SISN_SUBGROUPS: 'off' } },
  { name: "WebGPU's default limits", env: { SISN_LIMITS: 'default' } },
  // Dawn's OpenGL ES backend (Mesa's llvmpipe under EGL): a device in WebGPU's compatibility mode.
  { name: 'compatibility mode (OpenGL ES)', env: { SISN_FEATURE_LEVEL: 'compatibility' } },
];

// The adapter a configuration opens, as the engine describes it, or why it cannot.
/** @param {NodeJS.ProcessEnv} env */
function adapterOf(env) {
  const probe = `
    import { Gpu } from './dist/index.js';
    try { const gpu = await Gpu.open(); console.log(gpu.describe()); gpu.dispose(); }
    catch (e) { console.log('cannot open: ' + e.message); }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: root, env, encoding: 'utf8' });
  return (r.stdout.trim() || `cannot open: ${r.stderr.trim()}`).replace(/\n/g, '\n  ');
}

// Runs uvu on the files matching `pattern` and counts from its summary. uvu passes a suite
// whose `before` hook threw, with fewer tests passed than it has: those count as failed. A run
// with no summary, or that exits non-zero with nothing failed, counts one failure.
/**
 * @param {string} pattern
 * @param {NodeJS.ProcessEnv} env
 * @param {boolean} live
 * @returns {Promise<{ output: string, passed: number, failed: number }>}
 */
function runUvu(pattern, env, live) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [uvu, 'test', pattern], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const take = (/** @type {Buffer} */ chunk) => {
      output += chunk.toString();
      if (live) process.stdout.write(chunk);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('close', (code) => {
      // eslint-disable-next-line no-control-regex -- strips the ANSI colour codes uvu prints
      const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
      const count = (/** @type {string} */ label) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(plain)?.[1] ?? NaN);
      const [total, passed, skipped] = [count('Total'), count('Passed'), count('Skipped')];
      if (!Number.isFinite(total + passed + skipped)) return resolve({ output, passed: 0, failed: 1 });
      const failed = total - passed - skipped;
      resolve({ output, passed, failed: failed || (code === 0 ? 0 : 1) });
    });
  });
}

/** @typedef {{ name: string, env: Record<string, string>, pattern: string }} Run */

/**
 * @param {Run} run
 * @param {string} adapter
 */
function header(run, adapter) {
  const scope = run.pattern === WHOLE_SUITE ? 'the whole suite' : 'the op checks and fixture conformance';
  const settings = Object.entries(run.env)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  console.log(`\n=== ${run.name}: ${scope}${settings ? ` (${settings})` : ''}\n  adapter: ${adapter}`);
}

// The first run is shown as it goes; the others are kept until their turn to be printed.
/**
 * @param {Run} run
 * @param {boolean} live
 */
async function execute(run, live) {
  const env = { ...process.env, ...run.env };
  const started = Date.now();
  const adapter = adapterOf(env);
  if (live) header(run, adapter);
  const result = await runUvu(run.pattern, env, live);
  return { ...result, adapter, seconds: (Date.now() - started) / 1000 };
}

const chosenByUser = ['SISN_ADAPTER', 'SISN_SUBGROUPS', 'SISN_LIMITS', 'SISN_FEATURE_LEVEL'].some(
  (k) => process.env[k],
);
const runs = [
  { name: chosenByUser ? 'the adapter the environment chooses' : 'the default adapter', env: {}, pattern: WHOLE_SUITE },
];
if (!chosenByUser) for (const c of CONFIGURATIONS) runs.push({ ...c, pattern: ADAPTER_CHECKS });

// At most `parallel` runs at once, started in order.
const parallel = Math.min(2, availableParallelism());
let free = parallel;
/** @type {((value?: unknown) => void)[]} */
const waiting = [];
/**
 * @template T
 * @param {() => Promise<T>} fn
 * @returns {Promise<T>}
 */
async function inTurn(fn) {
  if (free > 0) free--;
  else await new Promise((resolve) => waiting.push(resolve));
  try {
    return await fn();
  } finally {
    const nextInLine = waiting.shift();
    if (nextInLine) nextInLine();
    else free++;
  }
}
if (runs.length > 1)
  console.log(`${runs.length} test runs, ${parallel} at a time; the first is shown as it goes, the others once done`);
const results = runs.map((run, i) => inTurn(() => execute(run, i === 0)));

let passed = 0;
let failed = 0;
for (let i = 0; i < runs.length; i++) {
  const run = runs[i];
  const r = await results[i];
  if (i > 0) {
    header(run, r.adapter);
    process.stdout.write(r.output);
  }
  console.log(`=== ${run.name}: ${r.passed} passed, ${r.failed} failed in ${r.seconds.toFixed(0)} s`);
  passed += r.passed;
  failed += r.failed;
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
