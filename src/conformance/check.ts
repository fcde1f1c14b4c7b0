/**
 * Conformance of this engine's SISN against a PyTorch fixture set (format `sisn-oracle-fixtures/1`,
 * any scale, depth, width and batch; eval-only sets too). The manifest decides what is checked:
 * its files (size, sha256, tensors), the architecture, the eval output and intermediates, and for
 * sets with a `train` section the train-mode output, loss, every gradient, the BN buffers and the
 * Adam step, each with the manifest's tolerances. A declared section whose files are missing fails.
 */
import type { Gpu } from '../engine.js';
import { exact } from './compare.js';
import { Fixture } from './manifest.js';
import { Checks, type ConformanceReport } from './report.js';
import { WEIGHTS, checkWeights, checkDataParallel } from './model.js';
import { checkEval } from './eval.js';
import { checkTraining, type ConformanceOptions } from './train.js';

export type { Check } from './compare.js';
export type { ConformanceReport } from './report.js';
export type { ConformanceOptions };

function checkFiles(fixture: Fixture, checks: Checks): void {
  const declared = Object.keys(fixture.manifest.files).map((file) => {
    const trainWithoutSection = file.startsWith('train_') && !fixture.manifest.train;
    const problem = trainWithoutSection ? 'a train file, but the manifest has no train section' : fixture.verify(file);
    return exact(`file ${file}`, problem === null, problem ?? 'as declared');
  });
  checks.add('files', ...declared);
}

export async function checkConformance(
  gpu: Gpu,
  dir: string,
  options: ConformanceOptions = {},
): Promise<ConformanceReport> {
  const fixture = new Fixture(dir);
  const checks = new Checks();
  checkFiles(fixture, checks);
  if (!checks.require(fixture, 'weights', [WEIGHTS])) return checks.report(dir, gpu.describe(), 'no model');
  const { model, dict } = checkWeights(gpu, fixture, checks);
  try {
    checkDataParallel(fixture, dict, checks);
    // Eval mode changes no parameter or buffer, so training starts from the set's weights.
    await checkEval(gpu, fixture, model, checks);
    await checkTraining(gpu, fixture, model, dict, checks, options);
  } finally {
    model.dispose();
  }
  await gpu.sync();
  return checks.report(dir, gpu.describe(), JSON.stringify(model.config));
}
