// SISN: weights I/O round trips, bad-weights errors, ablations (fixture conformance: conformance-*.test.js).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync, mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSisn, saveSisn, parseSafetensors, serializeSafetensors, Tensor, SISN } from '../dist/index.js';
import { joinPatterns, withGpu, entryOf, parseJson } from './helpers.js';
/** @import { SafeTensor } from '../dist/index.js' */

const test = suite('model');
const ctx = withGpu(test);
const root = fileURLToPath(new URL('..', import.meta.url));
const fixtures = join(root, 'test/fixtures/sisn-small');
const tmp = mkdtempSync(join(tmpdir(), 'sisn-test-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

test('safetensors round trip: load -> save gives byte-identical tensors', async () => {
  const { gpu } = ctx;
  const src = join(fixtures, 'weights.safetensors');
  const model = loadSisn(gpu, src);
  assert.equal(model.config, { scale: 4, groups: 2, blocks: 2, channels: 32 });
  const out = join(tmp, 'round.safetensors');
  await saveSisn(model, out);
  const a = parseSafetensors(readFileSync(src)).tensors;
  const b = parseSafetensors(readFileSync(out));
  assert.is(b.tensors.size, a.size);
  assert.is(/** @type {{ scale: number }} */ (parseJson(b.metadata.config)).scale, 4);
  for (const [name, t] of a) {
    const u = b.tensors.get(name);
    assert.ok(u, `${name} missing after save`);
    assert.equal(u.shape, t.shape, name);
    assert.is(u.dtype, t.dtype, name);
    /** @param {SafeTensor} x */
    const bytes = (x) =>
      x.data instanceof Float32Array
        ? Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength)
        : Buffer.from(JSON.stringify(x.data));
    assert.ok(bytes(u).equals(bytes(t)), `${name} changed`);
  }
  // Data starts 8-byte aligned.
  const raw = readFileSync(out);
  assert.is(Number(raw.readBigUInt64LE(0)) % 8, 0);
  assert.ok(!readdirSync(tmp).some((f) => f.endsWith('.tmp')), 'temporary file left behind');
  model.dispose();
});

test('bad weights get a clear error naming the tensor, never a partial load', () => {
  const { gpu } = ctx;
  const src = readFileSync(join(fixtures, 'weights.safetensors'));
  const { tensors } = parseSafetensors(src);
  /** @type {(name: string, entries: [string, SafeTensor][]) => string} */
  const write = (name, entries) => {
    const p = join(tmp, name);
    writeFileSync(p, serializeSafetensors(entries));
    return p;
  };
  const without = [...tensors].filter(([k]) => k !== 'body.1.IA.conv3.weight');
  assert.throws(
    () => loadSisn(gpu, write('missing.safetensors', without)),
    /missing\.safetensors: missing 1 of the 186 tensors of SISN .*: body\.1\.IA\.conv3\.weight \[32,32,1,1\]$/,
  );
  // Each missing tensor is named, even the ones the configuration is read from.
  for (const gone of ['body.0.IA.conv1.weight', 'body.0.body.0.conv1.weight']) {
    assert.throws(
      () =>
        loadSisn(
          gpu,
          write(
            'missing.safetensors',
            [...tensors].filter(([k]) => k !== gone),
          ),
        ),
      new RegExp(`missing 1 of the 186 tensors .*: ${gone.replaceAll('.', '\\.')} `),
    );
  }
  assert.throws(
    () =>
      loadSisn(
        gpu,
        write(
          'missing.safetensors',
          [...tensors].filter(([k]) => k !== 'head.1.weight'),
        ),
      ),
    joinPatterns(
      /tensor head\.1\.weight \[C, 3\*s\*s, 3, 3\], which gives the scale and width, /,
      /is missing \(found 185 tensor\(s\): /,
    ),
  );
  const reshaped = [...tensors].map(
    ([k, t]) => /** @type {[string, SafeTensor]} */ ([k, k === 'tail.1.bias' ? { ...t, shape: [1, 3] } : t]),
  );
  assert.throws(
    () => loadSisn(gpu, write('shape.safetensors', reshaped)),
    /tail\.1\.bias has shape \[1,3\], expected \[3\]/,
  );
  /** @type {[string, SafeTensor][]} */
  const extra = [...tensors, ['body.0.extra.weight', { dtype: 'F32', shape: [1], data: new Float32Array(1) }]];
  assert.throws(
    () => loadSisn(gpu, write('extra.safetensors', extra)),
    /unexpected tensor\(s\).*body\.0\.extra\.weight/,
  );
  const truncated = join(tmp, 'truncated.safetensors');
  writeFileSync(truncated, src.subarray(0, src.length - 1000));
  assert.throws(() => loadSisn(gpu, truncated), /truncated/);
  const notWeights = join(tmp, 'text.safetensors');
  writeFileSync(notWeights, 'hello, this is not a weights file');
  assert.throws(() => loadSisn(gpu, notWeights), /text\.safetensors/);
  assert.throws(() => loadSisn(gpu, join(tmp, 'nope.safetensors')), /cannot read weights/);
});

test('ablation switches change the network (structure path, attention)', async () => {
  const { gpu } = ctx;
  const model = loadSisn(gpu, join(fixtures, 'weights.safetensors'));
  const io = parseSafetensors(readFileSync(join(fixtures, 'eval_io.safetensors'))).tensors;
  const x = Tensor.fromArray(gpu, entryOf(io, 'input').data, entryOf(io, 'input').shape);
  const run = async () => {
    const y = gpu.noGrad(() => model.forward(x));
    const v = await y.read();
    y.dispose();
    return v;
  };
  const full = await run();
  model.setAblation({ structurePath: false });
  const noIa = await run();
  model.setAblation({ attention: false });
  const noSa = await run();
  model.setAblation({});
  const again = await run();
  assert.ok(full.some((v, i) => v !== noIa[i]) && full.some((v, i) => v !== noSa[i]));
  assert.ok(full.every((v, i) => v === again[i]));
  // @ts-expect-error: scale 5 on purpose, to see it refused
  assert.throws(() => new SISN(gpu, { scale: 5, groups: 1, blocks: 1, channels: 8 }), /scale must be/);
  assert.throws(() => new SISN(gpu, { scale: 4, groups: 1, blocks: 1, channels: 6 }), /divisible by 4/);
  x.dispose();
  model.dispose();
});

test('the eval BatchNorm fold follows running statistics a train-mode forward moved', async () => {
  const { gpu } = ctx;
  const model = loadSisn(gpu, join(fixtures, 'weights.safetensors'));
  const io = parseSafetensors(readFileSync(join(fixtures, 'eval_io.safetensors'))).tensors;
  const x = Tensor.fromArray(gpu, entryOf(io, 'input').data, entryOf(io, 'input').shape);
  // A capture turns the fold off: BatchNorm then runs on its own from the running statistics.
  /** @param {import('../dist/index.js').ModelState['capture']} [capture] */
  const run = async (capture) => {
    const y = gpu.noGrad(() => model.forward(x, capture));
    const v = await y.read();
    y.dispose();
    return v;
  };
  const before = await run();
  model.training = true;
  await run();
  model.training = false;
  const fused = await run();
  const unfused = await run(() => {});
  /** @type {(a: Float32Array, b: Float32Array) => number} */
  const diff = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
  assert.ok(diff(before, unfused) > 1e-2, `the train-mode forward moved the output by only ${diff(before, unfused)}`);
  assert.ok(diff(fused, unfused) < 1e-3, `fused eval output differs from unfused by ${diff(fused, unfused)}`);
  x.dispose();
  model.dispose();
});

test.run();
