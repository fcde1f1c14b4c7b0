// Seeded random API programs, each checked against a CPU mirror of the same program
// (test/sequence-programs.js), on every adapter configuration that runs the op checks. A failure
// names the program's seed and steps; `node scripts/sequence.mjs --seed N --count 1` replays it.
import { suite } from 'uvu';
import { runProgram } from './sequence-programs.js';
import { withGpu } from './helpers.js';

const test = suite('sequence');
const ctx = withGpu(test);
const PROGRAMS = 1000;
const BATCHES = 4;

for (let batch = 0; batch < BATCHES; batch++) {
  const first = 1 + (batch * PROGRAMS) / BATCHES;
  const last = first + PROGRAMS / BATCHES - 1;
  test(`programs ${first} to ${last}: results equal the CPU mirror, the pool's in-use bytes come back`, async () => {
    for (let seed = first; seed <= last; seed++) await runProgram(ctx.gpu, seed);
  });
}

test.run();
