// Engine foundation: registry reflection, dispatch folding, buffer pool, tensors, errors, exit.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor, add, mul, scale, relu } from '../dist/index.js';
import { reflectShader, packUniforms, foldGroups, bucketSize, preprocess, SHADER_DIR } from '../dist/internals.js';
import { withGpu, random, assertClose } from './helpers.js';

const test = suite('engine');
const ctx = withGpu(test);

test('registry derives bindings and uniform offsets from WGSL (mixed u32/f32/vec4 members)', () => {
  const code = `
    struct P { n: u32, a: f32, v: vec4<f32>, m: u32, w: vec4u, s: f32 }
    @group(0) @binding(0) var<uniform> p: P;
    @group(0) @binding(1) var<storage, read> x: array<f32>;
    @group(0) @binding(2) var<storage, read_write> y: array<f32>;
    @group(0) @binding(3) var<storage, read_write> unused: array<f32>;
    fn load(i: u32) -> f32 { return x[i]; }
    @compute @workgroup_size(8, 2) fn k(@builtin(global_invocation_id) g: vec3u) { y[g.x] = load(g.x) * p.a; }`;
  const [info] = reflectShader('mixed', code);
  const { uniform } = info;
  assert.ok(uniform, 'the entry has a uniform buffer');
  assert.is(info.name, 'mixed.k');
  assert.equal(info.workgroupSize, [8, 2, 1]);
  // Only what the entry uses (through helper functions too) is in its layout.
  assert.equal(info.storage.map((s) => [s.name, s.binding, s.readOnly]).sort(), [
    ['x', 1, true],
    ['y', 2, false],
  ]);
  assert.is(uniform.binding, 0);
  assert.is(uniform.size, 80);
  assert.equal(
    uniform.fields.map((f) => [f.name, f.offset, f.kind, f.components]),
    [
      ['n', 0, 'u32', 1],
      ['a', 4, 'f32', 1],
      ['v', 16, 'f32', 4],
      ['m', 32, 'u32', 1],
      ['w', 48, 'u32', 4],
      ['s', 64, 'f32', 1],
    ],
  );
  const bytes = packUniforms('mixed.k', uniform, { n: 7, a: 0.5, v: [1, 2, 3, 4], m: 9, w: [5, 6, 7, 8], s: -1 });
  const dv = new DataView(bytes.buffer);
  assert.is(dv.getUint32(0, true), 7);
  assert.is(dv.getFloat32(4, true), 0.5);
  assert.is(dv.getFloat32(28, true), 4);
  assert.is(dv.getUint32(32, true), 9);
  assert.is(dv.getUint32(60, true), 8);
  assert.is(dv.getFloat32(64, true), -1);
  assert.throws(() => packUniforms('mixed.k', uniform, { n: 1 }), /not given/);
  assert.throws(
    () => packUniforms('mixed.k', uniform, { n: 1, a: 0, v: [1, 2, 3, 4], m: 0, w: [0, 0, 0, 0], s: 0, typo: 1 }),
    /no uniform member named 'typo'/,
  );
  assert.throws(
    () => packUniforms('mixed.k', uniform, { n: -1, a: 0, v: [1, 2, 3, 4], m: 0, w: [0, 0, 0, 0], s: 0 }),
    /must be a u32/,
  );
});

test('a user-defined kernel runs through the registry with its reflected layout', async () => {
  const { gpu } = ctx;
  gpu.kernels.define(
    'custom',
    `
    struct P { n: u32, k: f32, offset: vec4f }
    @group(0) @binding(0) var<uniform> p: P;
    @group(0) @binding(1) var<storage, read> x: array<f32>;
    @group(0) @binding(2) var<storage, read_write> y: array<f32>;
    @compute @workgroup_size(16) fn main(@builtin(global_invocation_id) g: vec3u) {
      if (g.x < p.n) { y[g.x] = x[g.x] * p.k + p.offset.z; }
    }`,
  );
  const x = Tensor.fromArray(gpu, [1, 2, 3, 4, 5]);
  const y = Tensor.empty(gpu, [5]);
  gpu.kernels.dispatch('custom.main', {
    uniforms: { n: 5, k: 2, offset: [0, 0, 10, 0] },
    buffers: { x, y },
    groups: 1,
  });
  assert.equal([...(await y.read())], [12, 14, 16, 18, 20]);
  assert.throws(
    () =>
      gpu.kernels.dispatch('custom.main', {
        uniforms: { n: 5, k: 2, offset: [0, 0, 0, 0] },
        buffers: { x },
        groups: 1,
      }),
    /'y' not given/,
  );
});

test(
  'the registry sizes launches from @workgroup_size, requires the uniforms an entry reads, ' +
    'fills omitted read-only bindings and unwritten writable ones',
  async () => {
    const { gpu } = ctx;
    gpu.kernels.define(
      'launch',
      `
    struct P { n: u32, k: f32, add: f32, use_b: u32 }
    @group(0) @binding(0) var<uniform> p: P;
    @group(0) @binding(1) var<storage, read> a: array<f32>;
    @group(0) @binding(2) var<storage, read> b: array<f32>;
    @group(0) @binding(3) var<storage, read_write> y: array<f32>;
    @compute @workgroup_size(16) fn line(@builtin(global_invocation_id) g: vec3u) {
      if (g.x < p.n) { y[g.x] = a[g.x] * p.k + p.add + select(0.0, b[g.x], p.use_b != 0u); }
    }
    @compute @workgroup_size(4, 2, 2) fn cube(@builtin(global_invocation_id) g: vec3u) {
      if (g.x < 5u && g.y < 3u && g.z < 3u) { y[(g.z * 3u + g.y) * 5u + g.x] = f32(g.x + 10u * g.y + 100u * g.z); }
    }`,
    );
    const n = 37;
    const a = Tensor.fromArray(gpu, random(n, 4));
    const y = Tensor.full(gpu, [45], -1);
    // 37 invocations in workgroups of 16; `b` left out (not read while use_b is 0).
    gpu.kernels.dispatch('launch.line', { uniforms: { n, k: 2, add: 0, use_b: 0 }, buffers: { a, y }, invocations: n });
    const line = await y.read();
    const av = random(n, 4);
    for (let i = 0; i < n; i++) assert.is(line[i], Math.fround(av[i] * 2));
    gpu.kernels.dispatch('launch.cube', { buffers: { y }, invocations: [5, 3, 3] });
    const cube = await y.read();
    for (let i = 0; i < 45; i++) assert.is(cube[i], (i % 5) + 10 * (Math.floor(i / 5) % 3) + 100 * Math.floor(i / 15));
    assert.throws(() => gpu.kernels.dispatch('launch.line', { buffers: { a }, invocations: 1 }), /'y' not given/);
    // Every uniform member the entry reads must be given (`cube` reads none).
    assert.throws(
      () => gpu.kernels.dispatch('launch.line', { uniforms: { n, k: 2 }, buffers: { a, y }, invocations: n }),
      /^kernel launch\.line: uniform member 'add' not given$/,
    );
    // A writable binding a call does not write (its flag off) is named as such and gets scratch.
    const before = [...(await y.read())];
    const none = { n: 0, k: 0, add: 0, use_b: 0 };
    gpu.kernels.dispatch('launch.line', { uniforms: none, buffers: { a }, unwritten: ['y'], invocations: 1 });
    assert.equal([...(await y.read())], before, 'y untouched');
    assert.throws(
      () => gpu.kernels.dispatch('launch.line', { buffers: { a, y }, unwritten: ['y'], invocations: 1 }),
      /'y' is marked unwritten but given a buffer/,
    );
    assert.throws(
      () => gpu.kernels.dispatch('launch.line', { buffers: { y }, unwritten: ['a'], invocations: 1 }),
      /'a' is marked unwritten but read-only/,
    );
    assert.throws(
      () => gpu.kernels.dispatch('launch.line', { buffers: { a, y }, unwritten: ['z'], invocations: 1 }),
      /no storage binding named z/,
    );
    assert.throws(
      () => gpu.kernels.dispatch('launch.line', { uniforms: none, buffers: { a, y }, invocations: 1, groups: 1 }),
      /either invocations or groups/,
    );
    assert.throws(
      () => gpu.kernels.dispatch('launch.cube', { buffers: { y }, invocations: [4, 2, 2 * 70000] }),
      /exceeds/,
    );
    [a, y].forEach((t) => t.dispose());
  },
);

test('dispatches past 65,535 workgroups are folded into 2-D and cover every element', async () => {
  const { gpu } = ctx;
  assert.equal(foldGroups(10, 65535), [10, 1, 1]);
  const [gx, gy] = foldGroups(70001, 65535);
  assert.ok(gx <= 65535 && gy > 1 && gx * gy >= 70001);
  const n = 64 * 70000 + 3; // 70,001 workgroups of 64
  const a = Tensor.full(gpu, [n], 1.5);
  const b = Tensor.fromArray(gpu, random(n, 3));
  const c = add(a, b);
  const out = await c.read();
  const ref = random(n, 3);
  for (let i = 0; i < n; i++)
    if (out[i] !== Math.fround(1.5 + ref[i])) assert.unreachable(`element ${i}: ${out[i]} != ${1.5 + ref[i]}`);
  [a, b, c].forEach((t) => t.dispose());
});

test('the buffer pool reuses memory: 1,000 iterations keep allocated bytes stable', async () => {
  const { gpu } = ctx;
  const x = Tensor.fromArray(gpu, random(1000, 5), [10, 100]);
  const run = () => gpu.scope(() => relu(add(scale(x, 2), mul(x, x))));
  run().dispose();
  await gpu.sync();
  const allocated = gpu.pool.allocatedBytes;
  const inUse = gpu.pool.inUseBytes;
  for (let i = 0; i < 1000; i++) {
    run().dispose();
    if (i % 100 === 99) gpu.submit();
  }
  await gpu.sync();
  assert.is(gpu.pool.allocatedBytes, allocated, 'allocated bytes grew');
  assert.is(gpu.pool.inUseBytes, inUse, 'bytes in use leaked');
  x.dispose();
  assert.is(bucketSize(5000), 5120);
  assert.is(bucketSize(100), 256);
});

test('tensors round-trip exactly, including odd sizes and special values', async () => {
  const { gpu } = ctx;
  for (const n of [1, 7, 1023, 65537]) {
    const data = random(n, n, -1e6, 1e6);
    if (n > 3) data.set([0, -0, 1e-38, 3.4e38], 0);
    const t = Tensor.fromArray(gpu, data);
    const back = await t.read();
    assert.ok(
      back.every((v, i) => Object.is(v, data[i])),
      `round trip of ${n} values`,
    );
    t.dispose();
  }
  assert.throws(() => Tensor.fromArray(gpu, [1, 2, 3], [2, 2]), /do not fill shape/);
});

test('elementwise kernels match a CPU reference on odd sizes', async () => {
  const { gpu } = ctx;
  for (const n of [1, 7, 1023, 65537]) {
    const av = random(n, 11 + n);
    const bv = random(n, 17 + n);
    const a = Tensor.fromArray(gpu, av);
    const b = Tensor.fromArray(gpu, bv);
    /** @type {[Tensor, (i: number) => number][]} */
    const cases = [
      [add(a, b), (i) => av[i] + bv[i]],
      [mul(a, b), (i) => av[i] * bv[i]],
      [scale(a, -3.5), (i) => av[i] * -3.5],
      [relu(a), (i) => Math.max(av[i], 0)],
    ];
    for (const [t, f] of cases) {
      assertClose(
        await t.read(),
        Float32Array.from({ length: n }, (_, i) => f(i)),
        { rtol: 1e-6, atol: 0, what: `n=${n}` },
      );
      t.dispose();
    }
    a.dispose();
    b.dispose();
  }
});

test('a shader with an error gives a JS error that names the kernel', async () => {
  const { gpu } = ctx;
  gpu.kernels.define(
    'broken',
    `
    @group(0) @binding(0) var<storage, read_write> y: array<f32>;
    @compute @workgroup_size(1) fn bad() { let v: f32 = 1u; y[0] = v; }`,
  );
  try {
    await gpu.kernels.compile('broken.bad');
    assert.unreachable('compile should fail');
  } catch (e) {
    assert.match(/** @type {Error} */ (e).message, /broken\.bad/);
    assert.match(/** @type {Error} */ (e).message, /line \d+/);
  }
  // Used without warm-up, the error surfaces at the next sync, naming the kernel too.
  const y = Tensor.empty(gpu, [1]);
  gpu.kernels.dispatch('broken.bad', { buffers: { y }, groups: 1 });
  try {
    await gpu.sync();
    assert.unreachable('sync should fail');
  } catch (e) {
    assert.match(/** @type {Error} */ (e).message, /broken\.bad/);
  }
  assert.throws(
    () => gpu.kernels.dispatch('nosuchfile.main', { buffers: {}, groups: 1 }),
    /no shaders\/nosuchfile\.wgsl/,
  );
});

test('compile is de-duplicated and warm-up builds pipelines before use', async () => {
  const { gpu } = ctx;
  const before = gpu.kernels.pipelinesCreated;
  await Promise.all([
    gpu.kernels.compile('elementwise.binary', { OP: 1 }),
    gpu.kernels.compile('elementwise.binary', { OP: 1 }),
  ]);
  assert.is(gpu.kernels.pipelinesCreated, before + 1);
  await gpu.kernels.warmup(['elementwise.binary', { name: 'elementwise.binary', constants: { OP: 1 } }]);
  assert.ok(gpu.kernels.pipelinesCreated <= before + 2);
});

test("every kernel fits WebGPU's default limits (8 storage buffers per stage, 256 invocations)", () => {
  for (const file of readdirSync(SHADER_DIR).filter((f) => f.endsWith('.wgsl'))) {
    for (const subgroups of [false, true]) {
      const code = preprocess(file.slice(0, -5), readFileSync(join(SHADER_DIR, file), 'utf8'), {
        subgroups,
        f16: false,
      });
      for (const info of reflectShader(file.slice(0, -5), code)) {
        assert.ok(info.storage.length <= 8, `${info.name}: ${info.storage.length} storage buffers`);
        assert.ok(
          info.workgroupSize[0] * info.workgroupSize[1] * info.workgroupSize[2] <= 256,
          `${info.name}: workgroup too large`,
        );
      }
    }
  }
});

test('a process that uses the engine exits by itself', () => {
  const script = `
    import { Gpu, Tensor, add } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
    const gpu = await Gpu.open();
    const a = Tensor.fromArray(gpu, [1, 2, 3]);
    const v = await add(a, a).read();
    console.log(v.join(','));
    gpu.dispose();`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 30000,
    cwd: fileURLToPath(new URL('..', import.meta.url)),
  });
  assert.is(r.signal, null, `killed by ${r.signal} (hung or crashed): ${r.stderr}`);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.trim(), '2,4,6');
});

test("the quiet wait learns a submit's latency per size, follows a slower one, cuts one the GPU beat", async () => {
  const { gpu } = ctx;
  const { recorder } = gpu;
  const quiet = recorder.quietWait;
  recorder.quietWait = true;
  const small = Tensor.fromArray(gpu, new Float32Array(64));
  const large = Tensor.fromArray(gpu, new Float32Array(64 * 1024));
  const medium = Tensor.fromArray(gpu, new Float32Array(4 * 1024));
  const after = (/** @type {number} */ ms) => () => new Promise((r) => setTimeout(r, ms));
  const done = () => Promise.resolve();
  /** @param {Tensor} t @param {() => Promise<unknown>} done */
  const waited = async (t, done) => {
    gpu.noGrad(() => add(t, t)).dispose();
    recorder.submit();
    const started = performance.now();
    await recorder.waitFor(done);
    return performance.now() - started;
  };
  try {
    await gpu.sync();
    // The same kernel and dispatch count on more data: learned as its own case.
    await waited(large, after(400));
    assert.ok((await waited(small, done)) < 200, 'slept for the larger submit');
    // Done long before the 340 ms sleep: each next sleep is 0.85 x 0.8 of the last (231, then 157 ms).
    const overslept = await waited(large, done);
    assert.ok(overslept >= 300, 'the learned latency was not slept');
    assert.ok((await waited(large, done)) < overslept - 50, 'the estimate kept the overslept time');
    assert.ok((await waited(large, done)) < 200, 'the estimate kept the overslept time');
    // Slower than learned, and waited for after the sleep: the next one sleeps for the slower time.
    await waited(medium, after(100));
    await waited(medium, after(300));
    assert.ok((await waited(medium, done)) >= 240, 'the estimate lagged a slower submit');
  } finally {
    recorder.quietWait = quiet;
    [small, large, medium].forEach((t) => t.dispose());
  }
});

test.run();
