#!/usr/bin/env node
// Runs many seeded random API programs (test/sequence-programs.js; test/sequence.test.js runs
// 1,000 of them in `npm test`), each against its CPU mirror, from a given seed:
//   node scripts/sequence.mjs [--seed N (default 1)] [--count N (default 10000)] [--keep-going]
// A failure prints the program's seed, what differed and its steps; `--seed S --count 1` replays
// program S alone. The adapter is chosen as everywhere (SISN_ADAPTER, SISN_SUBGROUPS, SISN_LIMITS).
// Build first (npx tsc -p .).
import { parseArgs } from 'node:util';
import { Gpu } from '../dist/index.js';
import { runProgram } from '../test/sequence-programs.js';

const { values } = parseArgs({
  options: { seed: { type: 'string' }, count: { type: 'string' }, 'keep-going': { type: 'boolean' } },
});
const first = Number(values.seed ?? 1);
const count = Number(values.count ?? 10000);
if (!Number.isSafeInteger(first) || !Number.isSafeInteger(count) || count < 1) {
  console.error('sequence: --seed and --count take integers (--count at least 1)');
  process.exit(2);
}
const gpu = await Gpu.open();
console.log(`${gpu.describe()}: programs ${first} to ${first + count - 1}`);
const started = performance.now();
let checks = 0;
const failed = [];
for (let seed = first; seed < first + count; seed++) {
  try {
    checks += (await runProgram(gpu, seed)).checks;
  } catch (e) {
    failed.push(seed);
    console.log(`\n${/** @type {Error} */ (e).message}\nreplay: node scripts/sequence.mjs --seed ${seed} --count 1`);
    if (!values['keep-going']) break;
  }
  const done = seed - first + 1;
  if (done % 1000 === 0)
    console.log(`${done} programs, ${checks} comparisons, ${((performance.now() - started) / 1000).toFixed(0)} s`);
}
const ran = failed.length && !values['keep-going'] ? failed[0] - first + 1 : count;
const seconds = ((performance.now() - started) / 1000).toFixed(1);
const seeds = failed.length ? ` (seeds ${failed.join(', ')})` : '';
console.log(`${ran} programs, ${checks} comparisons, ${failed.length} failed${seeds}, ${seconds} s`);
gpu.dispose();
process.exit(failed.length ? 1 : 0);
