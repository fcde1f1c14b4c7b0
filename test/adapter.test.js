// Choosing the adapter: by a part of its name (Gpu.open, SISN_ADAPTER, --adapter), the default
// that never falls to SwiftShader, WebGPU's default limits, compatibility mode (Dawn's OpenGL ES
// adapter), kernels a device's limits cannot hold, and a suite whose GPU cannot open.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Gpu, Tensor, add } from '../dist/index.js';

const test = suite('adapter');
const root = fileURLToPath(new URL('..', import.meta.url));
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/**
 * A child process without this run's adapter settings, plus `env`.
 * @param {string[]} args
 * @param {Record<string, string | undefined>} [env]
 */
function node(args, env = {}) {
  const clean = { ...process.env };
  for (const k of ['SISN_ADAPTER', 'SISN_SUBGROUPS', 'SISN_LIMITS', 'SISN_FEATURE_LEVEL']) delete clean[k];
  return spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', timeout: 60000, env: { ...clean, ...env } });
}

/**
 * Opens an engine with `options`, runs `check` on it and disposes it.
 * @param {import('../dist/index.js').GpuOptions} options
 * @param {(gpu: Gpu) => unknown} check
 */
async function withOpen(options, check) {
  const gpu = await Gpu.open(options);
  try {
    await check(gpu);
  } finally {
    gpu.dispose();
  }
}

test('a part of the name, in any case, picks the adapter', async () => {
  await withOpen({ adapter: 'SwiftShader' }, (gpu) => {
    assert.is(gpu.adapter.info.architecture, 'swiftshader');
    assert.is(gpu.adapter.info.subgroupMaxSize, 4);
  });
  await withOpen({ adapter: 'LLVMPIPE' }, (gpu) => assert.match(gpu.describe(), /llvmpipe/));
});

test('an unknown adapter name is an error that lists the adapters', async () => {
  try {
    await Gpu.open({ adapter: 'no-such-gpu' });
    assert.unreachable('opened an adapter that does not exist');
  } catch (e) {
    assert.match(/** @type {Error} */ (e).message, /no WebGPU adapter matches 'no-such-gpu'/);
    assert.match(/** @type {Error} */ (e).message, /llvmpipe/);
    assert.match(/** @type {Error} */ (e).message, /SwiftShader/);
  }
});

test('the default adapter is not SwiftShader even when the Vulkan loader lists it first', () => {
  const probe =
    "import { Gpu } from './dist/index.js'; const g = await Gpu.open(); console.log(g.adapter.info.architecture); " +
    'g.dispose();';
  const r = node(['--input-type=module', '-e', probe], { VK_ADD_DRIVER_FILES: SWIFTSHADER_ICD });
  assert.is(r.status, 0, r.stderr);
  assert.not.match(r.stdout, /swiftshader/);
});

test("Mesa's software drivers get several worker threads per core unless LP_NUM_THREADS is set", () => {
  const probe =
    "import { Gpu } from './dist/index.js'; import { availableParallelism } from 'node:os'; const g = await " +
    'Gpu.open(); console.log(`${process.env.LP_NUM_THREADS} ${availableParallelism()}`); g.dispose();';
  // An undefined value leaves the variable out of the child's environment.
  const r = node(['--input-type=module', '-e', probe], { LP_NUM_THREADS: undefined });
  assert.is(r.status, 0, r.stderr);
  // Dawn prints warnings to stdout too: the probe's line is the one of two numbers.
  const line = r.stdout.match(/^(\d+) (\d+)$/m);
  assert.ok(line, r.stdout);
  const [threads, cores] = line.slice(1).map(Number);
  assert.is(threads, Math.min(32, 4 * cores));
  const mine = node(['--input-type=module', '-e', probe], { LP_NUM_THREADS: '3' });
  assert.is(mine.status, 0, mine.stderr);
  assert.match(mine.stdout, /^3 \d+$/m);
});

test("limits: 'default' asks for WebGPU's default limits, not the adapter's", async () => {
  await withOpen({ limits: 'default' }, (gpu) => {
    assert.is(gpu.limits.maxStorageBufferBindingSize, 128 * 2 ** 20);
    assert.is(gpu.limits.maxComputeWorkgroupStorageSize, 16 * 2 ** 10);
    assert.is(gpu.limits.maxComputeInvocationsPerWorkgroup, 256);
    assert.is(gpu.limits.maxStorageBuffersPerShaderStage, 8);
  });
});

test('SISN_ADAPTER, SISN_SUBGROUPS and SISN_LIMITS choose for Gpu.open; bad values are errors', () => {
  const probe =
    "import { Gpu } from './dist/index.js'; const g = await Gpu.open(); console.log([g.adapter.info.architecture, " +
    "g.features.subgroups, g.limits.maxComputeInvocationsPerWorkgroup].join(' ')); g.dispose();";
  const r = node(['--input-type=module', '-e', probe], {
    SISN_ADAPTER: 'swiftshader',
    SISN_SUBGROUPS: 'off',
    SISN_LIMITS: 'default',
  });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.trim(), 'swiftshader false 256');
  const bad = node(['--input-type=module', '-e', probe], { SISN_SUBGROUPS: 'maybe' });
  assert.is.not(bad.status, 0);
  assert.match(bad.stderr, /SISN_SUBGROUPS must be 'on' or 'off', not 'maybe'/);
});

test("featureLevel 'compatibility' opens Dawn's OpenGL ES adapter in compatibility mode, where ops run", async () => {
  await withOpen({ featureLevel: 'compatibility' }, async (gpu) => {
    assert.is(gpu.featureLevel, 'compatibility');
    assert.match(gpu.adapter.info.description, /OpenGL ES/);
    assert.not.ok(gpu.adapter.features.has('core-features-and-limits'));
    assert.not.ok(gpu.features.subgroups);
    assert.match(gpu.describe(), /\[compatibility mode, no optional features\]$/);
    // The adapter's limits, not compatibility mode's defaults (128 invocations per workgroup).
    assert.is(gpu.limits.maxComputeInvocationsPerWorkgroup, gpu.adapter.limits.maxComputeInvocationsPerWorkgroup);
    const sum = add(Tensor.fromArray(gpu, [1, 2, 3]), Tensor.fromArray(gpu, [10, 20, 30]));
    assert.equal([...(await sum.read())], [11, 22, 33]);
  });
  await withOpen({ featureLevel: 'core' }, (gpu) => {
    assert.is(gpu.featureLevel, 'core');
    assert.not.match(gpu.describe(), /compatibility/);
  });
  try {
    // @ts-expect-error: a feature level WebGPU does not have, on purpose
    await Gpu.open({ featureLevel: 'legacy' });
    assert.unreachable('opened a feature level WebGPU does not have');
  } catch (e) {
    assert.match(/** @type {Error} */ (e).message, /featureLevel must be 'core' or 'compatibility', not 'legacy'/);
  }
});

test('SISN_FEATURE_LEVEL chooses for Gpu.open; a bad value is an error', () => {
  const probe =
    "import { Gpu } from './dist/index.js'; const g = await Gpu.open(); console.log(g.featureLevel); g.dispose();";
  const r = node(['--input-type=module', '-e', probe], { SISN_FEATURE_LEVEL: 'compatibility' });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^compatibility$/m);
  const bad = node(['--input-type=module', '-e', probe], { SISN_FEATURE_LEVEL: 'compat' });
  assert.is.not(bad.status, 0);
  assert.match(bad.stderr, /SISN_FEATURE_LEVEL must be 'core' or 'compatibility', not 'compat'/);
});

test("a kernel that needs more than the device's limits is refused, naming the kernel and the limit", async () => {
  await withOpen({ featureLevel: 'compatibility', limits: 'default' }, (gpu) => {
    const invocations = gpu.limits.maxComputeInvocationsPerWorkgroup;
    const storage = gpu.limits.maxStorageBuffersPerShaderStage;
    const bindings = Array.from({ length: storage + 1 }, (_, i) => i);
    gpu.kernels.define(
      'toowide',
      `
      ${bindings.map((i) => `@group(0) @binding(${i}) var<storage, read_write> b${i}: array<f32>;`).join('\n')}
      @compute @workgroup_size(${invocations * 2}) fn wide(@builtin(global_invocation_id) g: vec3u) { b0[g.x] = 1.0; }
      @compute @workgroup_size(1) fn many(@builtin(global_invocation_id) g: vec3u) {
        ${bindings.map((i) => `b${i}[g.x] = 1.0;`).join(' ')}
      }`,
    );
    const y = Tensor.empty(gpu, [4]);
    const buffers = Object.fromEntries(bindings.map((i) => [`b${i}`, Tensor.empty(gpu, [4])]));
    assert.throws(
      () => gpu.kernels.dispatch('toowide.wide', { buffers: { b0: y }, groups: 1 }),
      new RegExp(
        `kernel toowide.wide \\(shaders/toowide.wgsl\\) needs ${invocations * 2} invocations per workgroup; ` +
          `this device allows ${invocations} \\(maxComputeInvocationsPerWorkgroup\\)`,
      ),
    );
    assert.throws(
      () => gpu.kernels.dispatch('toowide.many', { buffers, groups: 1 }),
      new RegExp(`needs ${storage + 1} storage buffers per shader stage; this device allows ${storage}`),
    );
  });
});

test('sisn adapters lists each adapter with its subgroup sizes and limits, and marks the default', () => {
  const r = node([join(root, 'dist/cli/bin.js'), 'adapters']);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /llvmpipe[^\n]*<- the default/);
  assert.match(r.stdout, /SwiftShader[^\n]*\n[^\n]*subgroups of 4 lanes/);
  assert.match(r.stdout, /maxStorageBufferBindingSize +\d/);
  assert.match(r.stdout, /maxComputeInvocationsPerWorkgroup +\d/);
  const chosen = node([join(root, 'dist/cli/bin.js'), 'adapters', '--adapter', 'swift']);
  assert.match(chosen.stdout, /SwiftShader[^\n]*<- chosen for 'swift'/);
  assert.is(node([join(root, 'dist/cli/bin.js'), 'adapters', '--verbose']).status, 2);
});

test('--adapter on a sisn command: an unknown name fails before any work, listing the adapters', () => {
  const r = node([join(root, 'dist/cli/bin.js'), 'upscale', 'in.png', '-o', 'out.png', '--adapter', 'no-such-gpu']);
  assert.is(r.status, 1);
  assert.match(r.stderr, /no WebGPU adapter matches 'no-such-gpu'[\s\S]*llvmpipe/);
});

test('a suite whose GPU cannot open fails the run', () => {
  const r = node([join(root, 'test/fixtures/suites/needs-gpu.js')], { SISN_ADAPTER: 'no-such-gpu' });
  assert.is.not(r.status, 0, 'the run passed');
  assert.match(r.stdout, /the suite's GPU did not open: no WebGPU adapter matches 'no-such-gpu'/);
  const fine = node([join(root, 'test/fixtures/suites/needs-gpu.js')]);
  assert.is(fine.status, 0, fine.stdout);
});

test.run();
