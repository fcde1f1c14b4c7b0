// Shared by the conformance tests: the bundled fixture sets, eval-only copies of them, and one
// suite per set that runs the checker on the suite's GPU (SISN_ADAPTER and friends apply).
import * as assert from 'uvu/assert';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkConformance } from '../dist/index.js';
import { withGpu, readJson } from './helpers.js';

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
export const EVAL_SECTIONS = ['files', 'weights', 'eval output', 'eval intermediates'];
export const TRAIN_SECTIONS = ['train output', 'loss', 'gradients', 'BN buffers', 'Adam step'];

/**
 * Paths in a scratch folder for a suite: made on first use (not at import, so a run that never
 * starts the suite leaves nothing behind) and removed after the suite.
 * @param {import('uvu').Test<any>} suite
 * @returns {(name: string) => string}
 */
export function scratch(suite) {
  /** @type {string | null} */
  let dir = null;
  suite.after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return (name) => join((dir ??= mkdtempSync(join(tmpdir(), 'sisn-conformance-'))), name);
}

/**
 * A fixture set's manifest.json, the fields the tests read or edit: each file's hash (and tensors' shapes), the
 * train section's loss, and the tolerance advice per comparison.
 * @typedef {object} Manifest
 * @property {string} format
 * @property {Record<string, { sha256: string, tensors?: Record<string, { shape: number[] }> }>} files
 * @property {{ loss: number }} [train]
 * @property {Record<string, { atol: number, rtol?: number }>} tolerance_advice
 */

/**
 * A set's manifest.
 * @param {string} path the manifest.json
 */
export const readManifest = (path) => /** @type {Manifest} */ (readJson(path));

/**
 * Copies a set; `edit` may change the manifest before it is written back.
 * @param {string} name
 * @param {string} to
 * @param {(manifest: Manifest) => void} [edit]
 */
export function copySet(name, to, edit = () => {}) {
  cpSync(join(FIXTURES, name), to, { recursive: true });
  const path = join(to, 'manifest.json');
  const manifest = readManifest(path);
  edit(manifest);
  writeFileSync(path, JSON.stringify(manifest, null, 1));
  return to;
}

/**
 * An eval-only copy of a set: no train_* files and no train section, as such sets come.
 * @param {string} name
 * @param {string} to
 */
export function evalOnlyCopy(name, to) {
  copySet(name, to, (manifest) => {
    delete manifest.train;
    for (const file of Object.keys(manifest.files)) {
      if (file.startsWith('train_')) {
        delete manifest.files[file];
        rmSync(join(to, file));
      }
    }
    for (const key of Object.keys(manifest.tolerance_advice))
      if (!key.startsWith('eval_')) delete manifest.tolerance_advice[key];
  });
  return to;
}

/**
 * Registers a test that checks one fixture set and expects every check of the given sections to
 * pass; `counts` pins the number of checks per section (gradients: one per parameter).
 * @param {import('uvu').Test<any>} test
 * @param {{ readonly gpu: import('../dist/index.js').Gpu }} ctx
 * @param {string} name
 * @param {{ dir: string | (() => string), sections: string[], counts?: Record<string, number> }} options
 */
export function conformanceTest(test, ctx, name, { dir, sections, counts = {} }) {
  test(`${name}: ${sections.join(', ')}`, async () => {
    const report = await checkConformance(ctx.gpu, typeof dir === 'function' ? dir() : dir);
    assert.is(report.adapter, ctx.gpu.describe());
    assert.equal(report.sections, sections);
    for (const [section, n] of Object.entries(counts))
      assert.is(report.checks.filter((c) => c.section === section).length, n, section);
    assert.equal(
      report.failures.map((f) => `${f.section} / ${f.name}: ${f.detail}`),
      [],
    );
  });
}

export { withGpu };
