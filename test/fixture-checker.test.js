// The fixture checker itself: a broken optimiser, a missing file, a set that disagrees with its
// manifest, each must fail; `npm run conformance` names the adapter first and exits 1 on failure.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { checkConformance, parseSafetensors } from '../dist/index.js';
import {
  FIXTURES,
  EVAL_SECTIONS,
  TRAIN_SECTIONS,
  copySet,
  evalOnlyCopy,
  readManifest,
  scratch,
  withGpu,
} from './fixture-sets.js';
import { cases, entryOf } from './helpers.js';

const test = suite('fixture checker');
const ctx = withGpu(test);
const tmp = scratch(test);
const root = fileURLToPath(new URL('..', import.meta.url));
const x2 = join(FIXTURES, 'sisn-x2');

/** @import { ConformanceReport, Adam } from '../dist/index.js' */

/** @param {ConformanceReport} report */
const failed = (report) => report.failures.map((f) => `${f.section} / ${f.name}: ${f.detail}`);
/** @param {ConformanceReport} report */
const sectionsFailing = (report) => [...new Set(report.failures.map((f) => f.section))];

test("a skipped Adam step stays within the manifest's plain atol, so only the update check can catch it", () => {
  /** @param {string} file */
  const tensors = (file) => parseSafetensors(readFileSync(join(x2, file))).tensors;
  const before = tensors('weights.safetensors');
  const after = tensors('train_params_after_adam.safetensors');
  const { atol } = readManifest(join(x2, 'manifest.json')).tolerance_advice.params_after_adam;
  let moved = 0;
  for (const [name, t] of after) {
    const start = entryOf(before, name).data;
    t.data.forEach((v, i) => {
      assert.ok(Math.abs(v - start[i]) <= atol, `${name}[${i}] moved by more than atol`);
      moved = Math.max(moved, Math.abs(v - start[i]));
    });
  }
  assert.ok(moved > 1e-4, 'the reference step moves parameters by about lr');
});

for (const [what, adamStep] of cases([
  ['a skipped Adam step', () => {}],
  [
    'a sign-flipped Adam step',
    (/** @type {Adam} */ adam) => {
      adam.lr = -adam.lr;
      adam.update();
    },
  ],
  [
    'an Adam step with a tenth of the learning rate',
    (/** @type {Adam} */ adam) => {
      adam.lr /= 10;
      adam.update();
    },
  ],
])) {
  test(`${what} fails the Adam section, and only it`, async () => {
    const report = await checkConformance(ctx.gpu, x2, { adamStep });
    assert.equal(sectionsFailing(report), ['Adam step']);
    const adam = report.checks.filter((c) => c.section === 'Adam step');
    // Every parameter with a significant gradient fails; round-off and gradient-free ones cannot tell.
    assert.ok(
      report.failures.length >= adam.length - 16,
      `${report.failures.length} of ${adam.length} Adam checks failed`,
    );
    assert.ok(
      report.failures.every((f) => /update \[\d+\]/.test(f.detail)),
      failed(report).join('\n'),
    );
  });
}

test('a declared section whose file is missing fails, and is listed as checked', async () => {
  const dir = copySet('sisn-x2', tmp('no-grads'));
  rmSync(join(dir, 'train_grads.safetensors'));
  const report = await checkConformance(ctx.gpu, dir);
  assert.equal(report.sections, [...EVAL_SECTIONS, ...TRAIN_SECTIONS]);
  assert.equal(sectionsFailing(report), ['files', 'gradients', 'Adam step']);
  assert.equal(failed(report), [
    'files / file train_grads.safetensors: declared in the manifest but missing',
    'gradients / gradients: train_grads.safetensors: missing',
    'Adam step / Adam step: train_grads.safetensors: missing',
  ]);
});

test('a train section without its files fails; train files without a train section fail', async () => {
  const undeclared = evalOnlyCopy('sisn-x2', tmp('train-undeclared'));
  const manifest = readManifest(join(undeclared, 'manifest.json'));
  manifest.train = readManifest(join(x2, 'manifest.json')).train;
  writeFileSync(join(undeclared, 'manifest.json'), JSON.stringify(manifest));
  const report = await checkConformance(ctx.gpu, undeclared);
  assert.equal(sectionsFailing(report), TRAIN_SECTIONS);
  assert.ok(
    failed(report).includes('train output / train output: train_io.safetensors: not declared in the manifest'),
    failed(report).join('\n'),
  );

  const noSection = copySet('sisn-x2', tmp('no-train-section'), (m) => delete m.train);
  const r2 = await checkConformance(ctx.gpu, noSection);
  assert.equal(r2.sections, EVAL_SECTIONS);
  assert.equal(sectionsFailing(r2), ['files']);
  assert.is(r2.failures.length, 4);
  assert.match(r2.failures[0].detail, /a train file, but the manifest has no train section/);
});

test('a file that differs from its manifest entry fails the files section', async () => {
  const dir = evalOnlyCopy('sisn-x2', tmp('tampered'));
  const manifest = readManifest(join(dir, 'manifest.json'));
  manifest.files['eval_io.safetensors'].sha256 = '0'.repeat(64);
  const intermediates = manifest.files['eval_intermediates.safetensors'].tensors;
  assert.ok(intermediates, 'the manifest lists the intermediates');
  intermediates['tail.in'].shape = [3, 24, 9, 9];
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  rmSync(join(dir, 'eval_intermediates.safetensors'));
  const report = await checkConformance(ctx.gpu, dir);
  assert.equal(failed(report), [
    'files / file eval_io.safetensors: sha256 78782dadff361451c07154bd8b7372f97598e733bd49e0d28bebd7a783d1f3de, the ' +
      'manifest says 0000000000000000000000000000000000000000000000000000000000000000',
    'files / file eval_intermediates.safetensors: declared in the manifest but missing',
    'eval intermediates / eval intermediates: eval_intermediates.safetensors: missing',
  ]);
});

test('a manifest that is not this format is a clear error', async () => {
  const dir = copySet('sisn-x2', tmp('other-format'), (m) => (m.format = 'something/2'));
  try {
    await checkConformance(ctx.gpu, dir);
    assert.unreachable();
  } catch (e) {
    assert.match(
      /** @type {Error} */ (e).message,
      /other-format\/manifest\.json: format "something\/2", expected sisn-oracle-fixtures\/1/,
    );
  }
});

test('npm run conformance names the adapter first, lists the sections and exits 1 on a mismatch', () => {
  const bad = copySet('sisn-x2', tmp('bad-loss'), (m) => {
    if (m.train) m.train.loss *= 1.01;
  });
  const r = spawnSync(process.execPath, ['scripts/conformance.mjs', bad], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120000,
  });
  assert.is(r.status, 1, r.stderr);
  const lines = r.stdout.split('\n');
  assert.is(lines[0], `adapter: ${ctx.gpu.describe()}`);
  for (const section of [...EVAL_SECTIONS, ...TRAIN_SECTIONS])
    assert.match(r.stdout, new RegExp(`\\n  ${section} +\\d+ checks  worst`));
  assert.match(r.stdout, /loss +1 checks {2}worst [\d.]+ {2}1 FAILED/);
  assert.match(r.stdout, /422 checks in 9 sections, 1 failed/);
  assert.match(r.stdout, /worst mismatches[\s\S]*loss/);
});

test.run();
