/**
 * The eval sections: the eval-mode output (on the fused inference path and on the unfused one that
 * capturing intermediates takes) and every declared intermediate activation.
 */
import type { Gpu } from '../engine.js';
import { Tensor } from '../tensor.js';
import type { SISN } from '../nn/sisn.js';
import { elementwise, relToAbsmax, exact, type Comparison } from './compare.js';
import { f32, type Fixture } from './manifest.js';
import type { Checks } from './report.js';

const IO = 'eval_io.safetensors';
const INTERMEDIATES = 'eval_intermediates.safetensors';

export async function checkEval(gpu: Gpu, fixture: Fixture, model: SISN, checks: Checks): Promise<void> {
  if (!checks.require(fixture, 'eval output', [IO])) return;
  const withIntermediates =
    fixture.declares(INTERMEDIATES) && checks.require(fixture, 'eval intermediates', [INTERMEDIATES]);
  const names = new Set(withIntermediates ? fixture.tensorNames(INTERMEDIATES) : []);
  const tol = fixture.manifest.tolerance_advice;
  const input = fixture.tensor(IO, 'input');
  const ref = f32(fixture.tensor(IO, 'output'));
  const x = Tensor.fromArray(gpu, f32(input), input.shape);
  const captured = new Map<string, Tensor>();
  try {
    // Capturing runs the unfused network; the output is checked on both paths.
    const unfused = gpu.noGrad(() =>
      model.forward(x, (name, t) => names.has(name) && !captured.has(name) && captured.set(name, t.retain())),
    );
    const fused = gpu.noGrad(() => model.forward(x));
    const { atol, rtol } = tol.eval_output;
    checks.add(
      'eval output',
      elementwise('eval output', await fused.read(), ref, atol, rtol),
      elementwise('eval output (unfused, capturing)', await unfused.read(), ref, atol, rtol),
    );
    [fused, unfused].forEach((t) => t.dispose());
    if (!withIntermediates) return;
    const comparisons: Comparison[] = [];
    for (const name of names) {
      const t = captured.get(name);
      const want = fixture.tensors(INTERMEDIATES).get(name);
      if (!t || !want)
        comparisons.push(exact(`eval ${name}`, false, t ? `not in ${INTERMEDIATES}` : 'not produced by the model'));
      else
        comparisons.push(
          relToAbsmax(`eval ${name}`, await t.read(), f32(want), tol.eval_intermediates.rtol_to_tensor_absmax),
        );
    }
    checks.add('eval intermediates', ...comparisons);
  } finally {
    for (const t of captured.values()) t.release();
    x.dispose();
  }
}
