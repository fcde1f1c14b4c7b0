// The portable path: with the `subgroups` feature forced off, the kernels that have a subgroup
// fast path still match the references, gradients and the PyTorch fixtures.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import * as ops from '../dist/index.js';
import { checkConformance } from '../dist/index.js';
import { preprocess, subgroupSizesFit } from '../dist/internals.js';
import * as ref from './reference.js';
import { withGpu, cases } from './helpers.js';
import { checkOp } from './gradcheck.js';

const test = suite('no subgroups');
const ctx = withGpu(test, { subgroups: false });

test('the device really runs without subgroups', () => {
  assert.is(ctx.gpu.features.subgroups, false);
  assert.not.match(
    preprocess('t', '// @if subgroups\nx\n// @else\ny\n// @endif', { subgroups: false }),
    /enable subgroups|x/,
  );
  assert.match(
    preprocess('t', '// @if subgroups\nx\n// @else\ny\n// @endif', { subgroups: true }),
    /^enable subgroups;[\s\S]*x/,
  );
  assert.throws(() => preprocess('t', '// @if subgroups\nx', { subgroups: true }), /@if without @endif/);
});

test('subgroup paths only where subgroups have 4 to 64 lanes (whole subgroups of a 64-lane workgroup)', () => {
  for (const [min, max] of [
    [4, 4],
    [8, 8],
    [4, 64],
    [16, 16],
  ])
    assert.ok(subgroupSizesFit({ subgroupMinSize: min, subgroupMaxSize: max }), `${min}-${max}`);
  for (const [min, max] of [
    [4, 128],
    [128, 128],
    [2, 8],
    [0, 0],
    [undefined, undefined],
  ])
    assert.not.ok(subgroupSizesFit({ subgroupMinSize: min, subgroupMaxSize: max }), `${min}-${max}`);
});

for (const [B, C, H, W, O, K, G, bias] of cases([
  [2, 8, 6, 5, 32, 3, 4, false],
  [1, 3, 5, 7, 5, 3, 1, true],
  [2, 6, 4, 9, 6, 1, 1, false],
])) {
  test(`conv2d B${B} ${C}->${O} k${K} groups ${G}`, async () => {
    const ws = [O, C / G, K, K];
    const pad = (K - 1) / 2;
    await checkOp(ctx.gpu, {
      name: 'conv2d',
      inputs: [
        { shape: [B, C, H, W], grad: true },
        { shape: ws, grad: true },
        ...(bias ? [{ shape: [O], grad: true }] : []),
      ],
      gpuFn: ([x, w, b]) => ops.conv2d(x, w, b ?? null, { padding: pad, groups: G }),
      cpuFn: ([x, w, b]) => ref.conv2d(x, [B, C, H, W], w, ws, b, pad, G),
    });
  });
}

test('sisn-small conformance without subgroups', async () => {
  const report = await checkConformance(ctx.gpu, fileURLToPath(new URL('./fixtures/sisn-small', import.meta.url)));
  assert.equal(
    report.failures.map((f) => `${f.name}: ${f.detail}`),
    [],
  );
});

test.run();
