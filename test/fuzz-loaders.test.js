// Fuzzing the weight loaders: thousands of seeded mutations of a valid .pt, .safetensors and tfjs
// manifest with its shards (byte flips, truncations, zip header fields, length fields, pickle opcodes
// and operands, header and manifest JSON fields, shard sizes and paths). Each must load or throw a
// plain Error that names the file, within a per-case time bound, without crashing the (child)
// process and in bounded memory. A failure prints the seed and case;
// `node test/fuzz-cases.js SEED CASE 1` replays one. FUZZ_SEED and FUZZ_CASES override the defaults.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { parseJson } from './helpers.js';

const SEED = Number(process.env.FUZZ_SEED ?? 13);
const CASES = Number(process.env.FUZZ_CASES ?? 4000);
/** Per case: far above the few milliseconds a case takes; a busy 2-core machine once stalled the child 10 s. */
const CASE_BOUND_MS = 30_000;
/** Peak resident memory of the child: its baseline is about 150 MiB. */
const MAX_RSS_MIB = 768;
const cases = fileURLToPath(new URL('fuzz-cases.js', import.meta.url));

/**
 * A line fuzz-cases.js reports: a case that loaded, a case and the error it threw, or the peak memory at the end.
 * @typedef {{ case: number, what: string, loaded: true }
 *   | { case: number, what: string, loaded?: undefined, source: string, error: { name: string, message: string } }
 *   | { maxRssKiB: number }} CaseLine
 */

/**
 * Runs the cases in a child; resolves with its JSON lines, or a description of how it failed.
 * @param {number} seed
 * @param {number} first
 * @param {number} count
 * @returns {Promise<{ lines: CaseLine[], code: number | null, signal: string | null, hung: number | undefined,
 *   last: number, stderr: string }>}
 */
function runCases(seed, first, count) {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--max-old-space-size=512', cases, String(seed), String(first), String(count)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    /** @type {CaseLine[]} */
    const lines = [];
    let stderr = '';
    let started = { case: first, at: Date.now() };
    /** @type {number | undefined} */
    let hung;
    child.stderr.on('data', (d) => (stderr += d));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const msg = /** @type {CaseLine | { start: number }} */ (parseJson(line));
      if ('start' in msg) started = { case: msg.start, at: Date.now() };
      else lines.push(msg);
    });
    const watchdog = setInterval(() => {
      if (Date.now() - started.at > CASE_BOUND_MS) {
        hung = started.case;
        child.kill('SIGKILL');
      }
    }, 250);
    child.on('close', (code, signal) => {
      clearInterval(watchdog);
      resolve({ lines, code, signal, hung, last: started.case, stderr });
    });
  });
}

/** @param {number} n */
const replay = (n) => `(replay: node test/fuzz-cases.js ${SEED} ${n} 1)`;

test(`${CASES} mutated .pt, .safetensors and tfjs files load or fail with a clear Error (seed ${SEED})`, async () => {
  const run = await runCases(SEED, 0, CASES);
  if (run.hung !== undefined)
    assert.unreachable(`seed ${SEED} case ${run.hung} ran past ${CASE_BOUND_MS} ms ${replay(run.hung)}`);
  if (run.code !== 0)
    assert.unreachable(
      `seed ${SEED} case ${run.last} crashed the process (exit ${run.code}, ${run.signal}) ` +
        `${replay(run.last)}\n${run.stderr.slice(-2000)}`,
    );
  const results = run.lines.filter((l) => 'case' in l);
  assert.is(results.length, CASES, 'every case reported');
  for (const r of results) {
    if (r.loaded) continue;
    const where = `seed ${SEED} case ${r.case} (${r.what}) ${replay(r.case)}`;
    assert.is(r.error.name, 'Error', `${where}: threw a ${r.error.name}: ${r.error.message}`);
    assert.ok(r.error.message.includes(r.source), `${where}: the message does not name the file: ${r.error.message}`);
    assert.ok(r.error.message.length < 600, `${where}: a ${r.error.message.length}-character message`);
  }
  const loaded = results.filter((r) => r.loaded).length;
  assert.ok(
    loaded > 0 && loaded < CASES,
    `${loaded} of ${CASES} loaded: the mutations should both break and spare files`,
  );
  const end = run.lines.at(-1);
  const maxRssKiB = end && 'maxRssKiB' in end ? end.maxRssKiB : NaN;
  assert.ok(maxRssKiB / 1024 < MAX_RSS_MIB, `peak memory ${(maxRssKiB / 1024).toFixed(0)} MiB`);
});

test.run();
