#!/usr/bin/env node
// Checks this engine's SISN against PyTorch fixture sets (format sisn-oracle-fixtures/1).
// Usage: npm run conformance -- DIR... [--all]. The first line names the adapter (SISN_ADAPTER
// chooses it); each set gets its sections and worst ratios. Exits 1 when a check fails, 2 on errors.
import { Gpu, checkConformance } from '../dist/index.js';

const args = process.argv.slice(2);
const dirs = args.filter((a) => !a.startsWith('--'));
if (!dirs.length) {
  console.error('usage: npm run conformance -- FIXTURE_DIR... [--all]');
  process.exit(2);
}

/** @param {import('../dist/index.js').Check[]} checks */
const worstFirst = (checks) => [...checks].sort((a, b) => b.ratio - a.ratio);
/** @param {import('../dist/index.js').Check} c */
const line = (c) => `  ${c.ratio.toFixed(3).padStart(8)}  ${c.name}: ${c.detail}`;

/**
 * @param {import('../dist/index.js').ConformanceReport} report
 * @param {number} seconds
 */
function print(report, seconds) {
  console.log(`${report.dir}: SISN ${report.config}`);
  for (const section of report.sections) {
    const checks = report.checks.filter((c) => c.section === section);
    const failed = checks.filter((c) => !(c.ratio <= 1)).length;
    const worst = Math.max(...checks.map((c) => c.ratio));
    console.log(
      `  ${section.padEnd(24)} ${String(checks.length).padStart(4)} checks  worst ` +
        `${worst.toFixed(3)}${failed ? `  ${failed} FAILED` : ''}`,
    );
  }
  const [worst] = worstFirst(report.checks);
  console.log(
    `${report.checks.length} checks in ${report.sections.length} sections, ${report.failures.length} failed ` +
      `(${seconds.toFixed(1)} s); worst ratio ${worst.ratio.toFixed(3)} (${worst.name})`,
  );
  const shown = args.includes('--all')
    ? worstFirst(report.checks)
    : report.failures.length
      ? worstFirst(report.failures).slice(0, 20)
      : worstFirst(report.checks).slice(0, 5);
  console.log(
    report.failures.length ? 'worst mismatches (error / tolerance):' : 'closest to tolerance (error / tolerance):',
  );
  for (const c of shown) console.log(line(c));
}

let code = 0;
let gpu;
try {
  gpu = await Gpu.open();
  console.log(`adapter: ${gpu.describe()}`);
  for (const dir of dirs) {
    const started = Date.now();
    const report = await checkConformance(gpu, dir);
    print(report, (Date.now() - started) / 1000);
    if (report.failures.length) code = 1;
  }
} catch (e) {
  console.error(`conformance: ${/** @type {Error} */ (e).message}`);
  code = 2;
} finally {
  gpu?.dispose();
}
process.exit(code);
