// The weight loaders on crafted files: each malformed input ends in a clear error naming the file,
// fast and in bounded memory; the format is told from the bytes, not the extension.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  parseStateDict,
  parseSafetensors,
  serializeSafetensors,
  readStateDict,
  detectWeightsFormat,
  parseTfjsWeights,
  readTfjsWeights,
} from '../dist/index.js';
import { makeZip, op, statePickle, torchSave } from './torch-files.js';
import { entryOf } from './helpers.js';
/** @import { PickledTensor, SavedTensor } from './torch-files.js' */
import { makeTfjs, SMALL_TFJS } from './tfjs-files.js';
/** @import { TfjsFiles } from './tfjs-files.js' */

const test = suite('loaders');
const root = fileURLToPath(new URL('..', import.meta.url));
const pt = join(root, 'test/fixtures/sisn-small/weights_dataparallel.pt');
const tmp = mkdtempSync(join(tmpdir(), 'sisn-loaders-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** @type {Map<string, SavedTensor>} */
const dict = new Map([
  ['w', { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
  ['n', { dtype: 'I64', shape: [], data: [7] }],
]);
/** @param {number} n */
const floats = (n) => new Uint8Array(new Float32Array(n).buffer);
/** @type {(pickle: Uint8Array, storages?: Record<string, Uint8Array>) => Uint8Array} */
const archive = (pickle, storages = { 0: floats(4) }) =>
  makeZip([
    ['archive/data.pkl', pickle],
    ...Object.entries(storages).map(([k, v]) => /** @type {[string, Uint8Array]} */ ([`archive/data/${k}`, v])),
  ]);
/** @param {Partial<PickledTensor>} fields */
const tensor = (fields) => statePickle([{ name: 'w', key: '0', size: [4], stride: [1], ...fields }]);

test('a torch.save-style zip loads with its values: stored, deflated, ZIP64', () => {
  for (const options of [
    {},
    { deflate: ['archive/data.pkl', 'archive/data/0'] },
    { zip64: true, deflate: ['archive/data/1'] },
  ]) {
    const out = parseStateDict(torchSave(dict, options), 'small.pt');
    assert.equal([...out.keys()], ['w', 'n']);
    assert.equal(out.get('w'), dict.get('w'));
    assert.equal(out.get('n'), dict.get('n'));
  }
  const view = parseStateDict(
    archive(tensor({ size: [2, 2], stride: [1, 2] }), { 0: new Uint8Array(Float32Array.from([1, 2, 3, 4]).buffer) }),
    'view.pt',
  );
  assert.equal([...entryOf(view, 'w').data], [1, 3, 2, 4], 'a transposed view is gathered through its strides');
});

test('a GLOBAL without its newline is an error, not an endless loop', () => {
  const pickle = Uint8Array.from([...op.proto, 0x63, ...new TextEncoder().encode('collections OrderedDict')]);
  assert.throws(
    () => parseStateDict(archive(pickle), 'noline.pt'),
    /noline\.pt: malformed pickle: a text operand has no terminating newline/,
  );
});

test('tensors that reach past their storage are refused before anything is allocated', () => {
  /** @type {[Partial<PickledTensor>, RegExp][]} */
  const cases = [
    [{ size: [2 ** 28], stride: [0] }, /reads past its 4 elements/],
    [{ size: [2 ** 14, 2 ** 14], stride: [0, 0] }, /reads past its 4 elements/],
    [{ size: [5], stride: [1] }, /reads past/],
    [{ size: [4], stride: [1], offset: 1 }, /reads past/],
    [{ size: [2], stride: [4] }, /reads past/],
    [{ size: [-1], stride: [1] }, /malformed offset, shape or strides/],
    [{ size: [4], stride: [1, 1] }, /malformed offset, shape or strides/],
  ];
  for (const [fields, message] of cases) {
    assert.throws(
      () => parseStateDict(archive(tensor(fields)), 'crafted.pt'),
      (/** @type {Error} */ e) =>
        e.constructor === Error && /^crafted\.pt: /.test(e.message) && message.test(e.message),
      JSON.stringify(fields),
    );
  }
  assert.throws(
    () => parseStateDict(archive(tensor({}), { 0: new Uint8Array(6) }), 'odd.pt'),
    /odd\.pt: storage data\/0 holds 6 bytes, not a whole number of torch\.FloatStorage elements/,
  );
  assert.throws(() => parseStateDict(archive(tensor({}), {}), 'gone.pt'), /gone\.pt: storage data\/0 is missing/);
});

test('zip entries inflate to at most their declared size; odd archives get clear errors', () => {
  const bomb = new Uint8Array(64 << 20);
  /** @param {number} declare */
  const zipped = (declare) =>
    makeZip(
      [
        ['archive/data.pkl', tensor({})],
        ['archive/data/0', bomb],
      ],
      { deflate: ['archive/data/0'], declare: { 'archive/data/0': declare } },
    );
  assert.throws(
    () => parseStateDict(zipped(16), 'bomb.pt'),
    /bomb\.pt: entry "archive\/data\/0" inflates to more than its declared 16 bytes/,
  );
  assert.throws(
    () => parseStateDict(zipped(2 ** 31), 'huge.pt'),
    /huge\.pt: the deflated entries declare more than 1073741824 bytes/,
  );
  const file = torchSave(dict);
  const end = file.byteLength - 22;
  const saturated = Uint8Array.from(file);
  new DataView(saturated.buffer).setUint32(end + 16, 0xffffffff, true);
  assert.throws(
    () => parseStateDict(saturated, 'z64.pt'),
    /z64\.pt: corrupt zip archive: ZIP64 sizes without a ZIP64 locator/,
  );
  assert.throws(
    () => parseStateDict(file.subarray(0, 300), 'cut.pt'),
    /cut\.pt: corrupt zip archive: no end-of-directory record \(truncated\?\)/,
  );
  const twice = makeZip([
    ['archive/data.pkl', tensor({})],
    ['archive/data.pkl', tensor({})],
  ]);
  assert.throws(() => parseStateDict(twice, 'twice.pt'), /entry "archive\/data\.pkl" appears twice/);
});

test('a legacy (non-zip) torch.save file is named as such, with how to convert it', () => {
  const legacy = Uint8Array.from([
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0x80, 0x02,
  ]);
  assert.is(detectWeightsFormat(legacy), 'torch-legacy');
  assert.throws(
    () => parseStateDict(legacy, 'old.pth'),
    /old\.pth: a legacy \(pre-1\.6, non-zip\) torch\.save file: not supported\. Convert it .*torch\.save\(torch\.load/,
  );
});

test('the format comes from the bytes: a .pt renamed .safetensors loads, and the reverse', () => {
  const renamed = join(tmp, 'weights.safetensors');
  writeFileSync(renamed, readFileSync(pt));
  assert.is(detectWeightsFormat(readFileSync(renamed)), 'torch-zip');
  assert.is(readStateDict(renamed).size, readStateDict(pt).size);
  const reverse = join(tmp, 'weights.pt');
  writeFileSync(reverse, serializeSafetensors(dict));
  assert.equal(readStateDict(reverse).get('w'), dict.get('w'));
  writeFileSync(join(tmp, 'notes.pt'), 'just some text');
  assert.throws(
    () => readStateDict(join(tmp, 'notes.pt')),
    /notes\.pt: neither safetensors nor a PyTorch zip checkpoint/,
  );
});

/**
 * A safetensors file from a raw header object and data bytes.
 * @param {unknown} header
 * @param {Uint8Array} [data]
 */
function safetensors(header, data = new Uint8Array(0)) {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

test('safetensors: malformed headers and layouts are refused, naming the file and tensor', () => {
  /** @type {(shape: number[], offsets: number[], dtype?: string) => object} */
  const t = (shape, offsets, dtype = 'F32') => ({ dtype, shape, data_offsets: offsets });
  /** @type {[object, number, RegExp][]} */
  const cases = [
    [{ a: t([-1], [0, 4]) }, 4, /tensor a has shape \[-1\]: not a list of non-negative integers/],
    [{ a: t([1.5], [0, 4]) }, 4, /tensor a has shape \[1\.5\]/],
    [{ a: t([2], [0, 8]), b: t([2], [4, 12]) }, 12, /tensor b's data \[4, 12\) overlaps another tensor's/],
    [{ a: t([1], [0, 4]), b: t([1], [8, 12]) }, 12, /4 bytes before tensor b's data belong to no tensor/],
    [{ a: t([1], [0, 4]) }, 8, /4 bytes after the last tensor belong to no tensor/],
    [{ a: t([1], [4, 0]) }, 4, /data_offsets \[4,0\]: not \[begin, end\] with 0 <= begin <= end/],
    [{ a: t([3], [0, 8]) }, 8, /tensor a \[3\] F32 spans 8 bytes, expected 12/],
    [{ a: t([2], [0, 8]) }, 4, /data ends at byte 8 of a 4-byte data section \(truncated\?\)/],
    [{ a: t([1], [0, 4], 'F16') }, 4, /tensor a has dtype "F16"; only F32, I64 and U8 are supported/],
    [{ __metadata__: { step: 3 }, a: t([1], [0, 4]) }, 4, /__metadata__\.step is not a string/],
  ];
  for (const [header, dataBytes, message] of cases) {
    assert.throws(
      () => parseSafetensors(safetensors(header, new Uint8Array(dataBytes)), 'bad.safetensors'),
      (/** @type {Error} */ e) =>
        e.constructor === Error && /^bad\.safetensors: /.test(e.message) && message.test(e.message),
      JSON.stringify(header),
    );
  }
  const big = safetensors({ a: t([1], [0, 4]) }, new Uint8Array(4));
  new DataView(big.buffer).setBigUint64(0, 2n ** 60n, true);
  assert.throws(
    () => parseSafetensors(big, 'big.safetensors'),
    /big\.safetensors: truncated or not safetensors \(header of 1152921504606846976 bytes in a \d+-byte file\)/,
  );
  assert.throws(
    () => parseSafetensors(readFileSync(pt), 'zip.safetensors'),
    /zip\.safetensors: a zip archive \(a PyTorch checkpoint\?\), not safetensors/,
  );
  assert.throws(
    () => parseSafetensors(safetensors([1, 2]), 'list.safetensors'),
    /list\.safetensors: the header is not a JSON object/,
  );
  assert.equal(
    parseSafetensors(
      safetensors({ a: t([0, 3], [0, 0]), b: t([1], [0, 4]) }, new Uint8Array(4)),
      'empty.safetensors',
    ).tensors.get('a')?.shape,
    [0, 3],
  );
});

/**
 * A tfjs manifest and shards written to the temporary folder; returns the manifest's path.
 * @param {string} name
 * @param {TfjsFiles} files
 */
function writeTfjs(name, { manifest, shards }) {
  const dir = mkdtempSync(join(tmp, 'tfjs-'));
  for (const [p, bytes] of shards) writeFileSync(join(dir, p), bytes);
  writeFileSync(join(dir, name), JSON.stringify(manifest));
  return join(dir, name);
}

test('tfjs manifests: float32, int32 and uint8/uint16-quantized tensors, shards in order', () => {
  const weights = readTfjsWeights(writeTfjs('small-weights_manifest.json', makeTfjs(SMALL_TFJS)));
  assert.equal([...weights.keys()], ['conv/filters', 'conv/bias', 'scale/weights', 'steps']);
  for (const { tensors } of SMALL_TFJS) {
    for (const t of tensors) {
      const got = entryOf(weights, t.name);
      assert.equal(got.shape, t.shape, t.name);
      assert.is(got.dtype, t.dtype, t.name);
      t.values.forEach((v, i) =>
        assert.ok(Math.abs(got.data[i] - v) < 1e-6, `${t.name}[${i}]: ${got.data[i]} vs ${v}`),
      );
    }
  }
});

test('tfjs manifests: a missing shard, a short shard and a missing manifest name their files', () => {
  const files = makeTfjs(SMALL_TFJS);
  const path = writeTfjs('m-weights_manifest.json', files);
  rmSync(join(path, '../small-2.bin'));
  assert.throws(
    () => readTfjsWeights(path),
    /** @param {Error} e */ (e) =>
      e.message.startsWith(`${path}: cannot read the weights shard `) && /small-2\.bin: no such file/.test(e.message),
  );
  const short = new Map(files.shards).set('other.bin', entryOf(files.shards, 'other.bin').subarray(0, 5));
  assert.throws(
    () =>
      parseTfjsWeights(new TextEncoder().encode(JSON.stringify(files.manifest)), (p) => entryOf(short, p), 'm.json'),
    /^m\.json: group 1 \(other\.bin\): its 2 tensors need 8 bytes, the shards hold 5 \(truncated\?\)$/,
  );
  assert.throws(
    () => readTfjsWeights(join(tmp, 'none.json')),
    /cannot read the tfjs weights manifest .*none\.json: no such file/,
  );
});

test("tfjs manifests: face-api's two networks load, every tensor finite", () => {
  const models = join(root, 'node_modules/@vladmandic/face-api/model');
  const recognizer = readTfjsWeights(join(models, 'face_recognition_model-weights_manifest.json'));
  assert.is(recognizer.size, 117);
  assert.equal(entryOf(recognizer, 'fc').shape, [256, 128]);
  const detector = readTfjsWeights(join(models, 'tiny_face_detector_model-weights_manifest.json'));
  assert.equal(entryOf(detector, 'conv8/filters').shape, [1, 1, 512, 25]);
});

test.run();
