// sisn-x2 (x2, G2 I3 C24, batch 3) against PyTorch: every section of the set, on this adapter.
import { suite } from 'uvu';
import { join } from 'node:path';
import { FIXTURES, EVAL_SECTIONS, TRAIN_SECTIONS, conformanceTest, withGpu } from './fixture-sets.js';

const test = suite('conformance sisn-x2');
const ctx = withGpu(test);

conformanceTest(test, ctx, 'sisn-x2', {
  dir: join(FIXTURES, 'sisn-x2'),
  sections: [...EVAL_SECTIONS, ...TRAIN_SECTIONS],
  counts: { files: 7, 'eval output': 2, 'eval intermediates': 24, gradients: 144, 'BN buffers': 96, 'Adam step': 144 },
});

test.run();
