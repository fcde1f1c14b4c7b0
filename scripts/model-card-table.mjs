#!/usr/bin/env node
// Prints the metrics tables of weights/README.md from the `sisn eval --json` files in weights/eval/
// (PSNR/SSIM) and weights/eval/identity/ (`sisn eval --identity`: detection, identity distance,
// share matched, rank-1), so the model card is regenerated from measurements rather than typed by hand.
//   node scripts/model-card-table.mjs [eval-dir]
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** @typedef {Record<string, number>} Scores */
/**
 * An eval JSON file, as much of it as the tables read.
 * @typedef {{ scale: number, count: number, range?: string, hr_crop?: string, hr_size?: number,
 *   dataset_root: string[], sisn: Scores, bicubic: Scores,
 *   identity: import('../dist/index.js').IdentityResult }} EvalFile
 */

/**
 * @param {string} path
 * @returns {EvalFile}
 */
function readEval(path) {
  /** @type {unknown} */
  const parsed = JSON.parse(readFileSync(path, 'utf8'));
  return /** @type {EvalFile} */ (parsed);
}

const dir = process.argv[2] ?? 'weights/eval';
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort();
if (files.length === 0) {
  console.error(`no eval JSON files in ${dir}`);
  process.exit(1);
}

/** A human name for the evaluated set, from the options recorded in the JSON. */
/** @param {EvalFile} r */
function setName(r) {
  if (r.range) return `CelebA test ${r.range} (${r.count} faces, ${r.hr_crop})`;
  return `HQ faces resized to ${r.hr_size} (${r.count} faces, ${r.dataset_root.length} sets)`;
}

/**
 * @param {Scores} m
 * @param {string} key
 * @param {number} digits
 */
const pair = (m, key, digits) => `${m[key].toFixed(digits)} / ${m[`${key}Y`].toFixed(digits)}`;
/**
 * @param {EvalFile} r
 * @param {string} key
 * @param {number} digits
 */
const gain = (r, key, digits) => {
  const d = (/** @type {string} */ k) => r.sisn[k] - r.bicubic[k];
  const sign = (/** @type {number} */ x) => (x >= 0 ? '+' : '') + x.toFixed(digits);
  return `**${sign(d(key))}** / ${sign(d(`${key}Y`))}`;
};

const rows = ['| scale | test set | method | PSNR RGB / Y | SSIM RGB / Y |', '|---|---|---|---|---|'];
const results = files.map((f) => readEval(join(dir, f)));
results.sort((a, b) => a.scale - b.scale || (a.range ? 0 : 1) - (b.range ? 0 : 1));
for (const r of results) {
  const head = `| x${r.scale} | ${setName(r)} |`;
  rows.push(`${head} bicubic | ${pair(r.bicubic, 'psnr', 2)} | ${pair(r.bicubic, 'ssim', 4)} |`);
  rows.push(`${head} SISN | ${pair(r.sisn, 'psnr', 2)} | ${pair(r.sisn, 'ssim', 4)} |`);
  rows.push(`${head} **gain** | ${gain(r, 'psnr', 2)} | ${gain(r, 'ssim', 4)} |`);
}
console.log(rows.join('\n'));

const identityDir = join(dir, 'identity');
if (existsSync(identityDir)) {
  const runs = readdirSync(identityDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => readEval(join(identityDir, f)))
    .sort((a, b) => a.scale - b.scale || (a.range ? 0 : 1) - (b.range ? 0 : 1));
  const pct = (/** @type {number} */ v) => `${(100 * v).toFixed(1)}%`;
  const table = [
    '| scale | test set | method | detected | mean distance to HR | matched (< 0.6) | rank-1 |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of runs) {
    const { identity: id } = r;
    const head = `| x${r.scale} | ${setName(r)}, face found on HR in ${id.found} |`;
    table.push(`${head} HR (the reference) | ${pct(id.hr.detectionRate)} | - | - | - |`);
    for (const [m, name] of /** @type {const} */ ([
      ['nearest', 'LR (nearest)'],
      ['bicubic', 'bicubic'],
      ['sisn', 'SISN'],
    ])) {
      const x = id.methods[m];
      table.push(
        `${head} ${name} | ${pct(x.detectionRate)} | ${x.meanDistance.toFixed(3)} | ` +
          `${pct(x.matched)} | ${pct(x.rank1)} |`,
      );
    }
  }
  console.log(`\n${table.join('\n')}`);
}
