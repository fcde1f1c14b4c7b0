// sisn-small (x4, G2 I2 C32, batch 2) against PyTorch: every section of the set, on this adapter.
import { suite } from 'uvu';
import { join } from 'node:path';
import { FIXTURES, EVAL_SECTIONS, TRAIN_SECTIONS, conformanceTest, withGpu } from './fixture-sets.js';

const test = suite('conformance sisn-small');
const ctx = withGpu(test);

conformanceTest(test, ctx, 'sisn-small', {
  dir: join(FIXTURES, 'sisn-small'),
  sections: ['files', 'weights', 'DataParallel checkpoint', ...EVAL_SECTIONS.slice(2), ...TRAIN_SECTIONS],
  counts: { files: 7, 'eval output': 2, 'eval intermediates': 24, gradients: 114, 'BN buffers': 72, 'Adam step': 114 },
});

test.run();
