#!/usr/bin/env node
// Checks this engine's SISN against a PyTorch fixture directory (format sisn-oracle-fixtures/1).
// Usage: npm run conformance -- DIR [--all]. Exits 1 and lists the worst mismatches on failure.
import { Gpu, checkConformance } from '../dist/index.js';

const args = process.argv.slice(2);
const dir = args.find((a) => !a.startsWith('--'));
if (!dir) {
  console.error('usage: npm run conformance -- FIXTURE_DIR [--all]');
  process.exit(2);
}
const gpu = await Gpu.open();
let code = 0;
try {
  const started = Date.now();
  const report = await checkConformance(gpu, dir);
  const worst = [...report.checks].sort((a, b) => b.ratio - a.ratio);
  const shown = args.includes('--all') ? worst : report.failures.length ? report.failures.sort((a, b) => b.ratio - a.ratio).slice(0, 20) : worst.slice(0, 5);
  console.log(`${dir}: SISN ${report.config} on ${gpu.describe()}`);
  console.log(`${report.checks.length} checks, ${report.failures.length} failed (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  console.log(report.failures.length ? 'worst mismatches (error / tolerance):' : 'closest to tolerance (error / tolerance):');
  for (const c of shown) console.log(`  ${c.ratio.toFixed(3).padStart(8)}  ${c.name}: ${c.detail}`);
  code = report.failures.length ? 1 : 0;
} catch (e) {
  console.error(`conformance: ${e.message}`);
  code = 2;
} finally {
  gpu.dispose();
}
process.exit(code);
