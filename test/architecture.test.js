// SISN at every scale: the state_dict (names, order, shapes) is the official model/sisn.py's, and
// the scale-dependent head (space-to-depth) and tail (upsampler) compute what the official code
// does, at x3 (one conv C->9C, PixelShuffle(3)) and x8 (three [conv C->4C, PixelShuffle(2)]).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  SISN,
  Tensor,
  Rng,
  inferConfig,
  parseSafetensors,
  readTorchCheckpoint,
  stateDict,
  stripModulePrefix,
} from '../dist/index.js';
import { FIXTURES } from './fixture-sets.js';
import { withGpu, random, relError, cases } from './helpers.js';
import * as ref from './reference.js';
/** @import { SisnConfig } from '../dist/index.js' */

const test = suite('architecture');
const ctx = withGpu(test);

/**
 * The official Net's state_dict in registration order, written from model/sisn.py, utils/isab.py,
 * utils/ISA.py and EDSR's common.py (default_conv with bias, MeanShift, Upsampler).
 * @param {SisnConfig} config
 */
function officialStateDict({ scale, groups, blocks, channels: c }) {
  /** @type {[string, number[]][]} */
  const out = [];
  /** @type {(name: string, o: number, i: number, k: number, bias?: boolean) => void} */
  const conv = (name, o, i, k, bias = true) => {
    out.push([`${name}.weight`, [o, i, k, k]]);
    if (bias) out.push([`${name}.bias`, [o]]);
  };
  /** @type {(name: string, n: number) => void} */
  const bn = (name, n) => {
    for (const k of ['weight', 'bias', 'running_mean', 'running_var']) out.push([`${name}.${k}`, [n]]);
    out.push([`${name}.num_batches_tracked`, []]);
  };
  const radix = 4;
  const inter = Math.max(Math.floor((c * radix) / 4), 32);
  /** @param {string} p */
  const isab = (p) => {
    conv(`${p}.conv1`, c, c, 1, false);
    bn(`${p}.bn1`, c);
    conv(`${p}.conv2.conv`, radix * c, c / radix, 3, false);
    bn(`${p}.conv2.bn0`, radix * c);
    conv(`${p}.conv2.conv1x1_1`, inter, c, 1);
    bn(`${p}.conv2.bn1`, inter);
    conv(`${p}.conv2.conv1x1_2`, radix * c, inter, 1);
    conv(`${p}.conv3`, c, c, 1, false);
    bn(`${p}.bn3`, c);
    conv(`${p}.skip`, c, c, 1, false);
  };
  conv('sub_mean', 3, 3, 1);
  conv('add_mean', 3, 3, 1);
  conv('head.1', c, 3 * scale * scale, 3);
  for (let g = 0; g < groups; g++) {
    for (let i = 0; i < blocks; i++) isab(`body.${g}.body.${i}`);
    conv(`body.${g}.body.${blocks}`, c, c, 3);
    isab(`body.${g}.IA`);
  }
  conv(`body.${groups}`, c, c, 3);
  // Upsampler: 2^n -> n x [conv C->4C, PixelShuffle(2)] at Sequential indices 0, 2, 4; 3 -> [conv C->9C,
  // PixelShuffle(3)].
  if (scale === 3) conv('tail.0.0', 9 * c, c, 3);
  else for (let j = 0; j < Math.log2(scale); j++) conv(`tail.0.${2 * j}`, 4 * c, c, 3);
  conv('tail.1', 3, c, 3);
  return out;
}

/** @param {InstanceType<typeof SISN>} model */
const entriesOf = (model) => model.entries.map((e) => [e.name, [...e.shape]]);

test('the official state_dict, as written here, is what PyTorch saved for both fixture sets', () => {
  const ordered = stripModulePrefix(readTorchCheckpoint(join(FIXTURES, 'sisn-small/weights_dataparallel.pt')));
  assert.equal(
    [...ordered].map(([k, t]) => [k, t.shape]),
    officialStateDict({ scale: 4, groups: 2, blocks: 2, channels: 32 }),
  );
  const x2 = parseSafetensors(readFileSync(join(FIXTURES, 'sisn-x2/weights.safetensors'))).tensors;
  /** @param {[string, number[]][]} list */
  const sorted = (list) => [...list].sort(([a], [b]) => (a < b ? -1 : 1));
  assert.equal(
    sorted([...x2].map(([k, t]) => [k, t.shape])),
    sorted(officialStateDict({ scale: 2, groups: 2, blocks: 3, channels: 24 })),
  );
});

for (const config of /** @type {SisnConfig[]} */ ([
  { scale: 2, groups: 2, blocks: 3, channels: 24 },
  { scale: 3, groups: 2, blocks: 1, channels: 16 },
  { scale: 4, groups: 1, blocks: 2, channels: 64 },
  { scale: 8, groups: 1, blocks: 1, channels: 8 },
])) {
  test(
    `x${config.scale} G${config.groups} I${config.blocks} C${config.channels}: state_dict as the official code, ` +
      `config inferred back`,
    async () => {
      const model = new SISN(ctx.gpu, config);
      try {
        assert.equal(entriesOf(model), officialStateDict(config));
        assert.equal(inferConfig(await stateDict(model)), config);
      } finally {
        model.dispose();
      }
    },
  );
}

for (const [scale, size] of cases([
  [/** @type {const} */ (3), 12],
  [/** @type {const} */ (8), 16],
])) {
  test(`x${scale}: head space-to-depth and the upsampling tail match the CPU reference`, async () => {
    const { gpu } = ctx;
    const c = 8;
    const model = new SISN(gpu, { scale, groups: 1, blocks: 1, channels: c });
    model.initialize(new Rng(scale));
    const x = Tensor.fromArray(gpu, random(2 * 3 * size * size, scale, 0, 255), [2, 3, size, size]);
    /** @type {Map<string, Tensor>} */
    const captured = new Map();
    const out = gpu.noGrad(() => model.forward(x, (name, t) => captured.set(name, t.retain())));
    /** @param {string} name */
    const read = async (name) => {
      const t = captured.get(name);
      if (!t) throw new Error(`the forward pass did not report ${name}`);
      return t.read();
    };
    /** @param {string} name */
    const param = (name) => model.params.get(name).read();
    const h = size / scale;

    const depth = ref.spaceToDepth(await read('sub_mean.out'), [2, 3, size, size], scale);
    assert.ok(relError(await read('head.0.out'), depth) < 1e-6, 'space-to-depth');
    /** @type {ArrayLike<number>} */
    let y = await read('tail.in');
    let side = h;
    for (const [j, factor] of (scale === 3 ? [3] : [2, 2, 2]).entries()) {
      const conv = ref.conv2d(
        y,
        [2, c, side, side],
        await param(`tail.0.${2 * j}.weight`),
        [factor * factor * c, c, 3],
        await param(`tail.0.${2 * j}.bias`),
        1,
        1,
      );
      y = ref.pixelShuffle(conv, [2, factor * factor * c, side, side], factor);
      side *= factor;
    }
    assert.is(side, size);
    assert.ok(relError(await read('tail.0.out'), y) < 1e-5, 'upsampler');
    assert.equal(out.shape, [2, 3, size, size]);
    for (const t of captured.values()) t.release();
    [x, out].forEach((t) => t.dispose());
    model.dispose();
  });
}

test.run();
