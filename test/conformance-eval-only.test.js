// An eval-only set (no train_* files, no train section; made here from sisn-x2): the checker runs
// and reports the eval sections only.
import { suite } from 'uvu';
import { EVAL_SECTIONS, conformanceTest, evalOnlyCopy, scratch, withGpu } from './fixture-sets.js';

const test = suite('conformance eval-only');
const ctx = withGpu(test);
const tmp = scratch(test);

conformanceTest(test, ctx, 'sisn-x2 eval-only', {
  dir: () => evalOnlyCopy('sisn-x2', tmp('x2-eval-only')),
  sections: EVAL_SECTIONS,
  counts: { files: 3, weights: 3, 'eval output': 2, 'eval intermediates': 24 },
});

test.run();
