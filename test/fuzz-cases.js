// The loader fuzz cases, run in a child process by fuzz-loaders.test.js (so a hang can be timed out
// and a crash cannot take the test runner down). Usage: node test/fuzz-cases.js SEED FIRST COUNT
// Each case mutates a valid .pt or .safetensors file or tfjs manifest and its shards (chosen, like
// the mutation, by a generator seeded with SEED and the case number, so one case reproduces alone)
// and parses it. One JSON line per case:
// {case, what, loaded} or {case, what, error: {name, message}}, after a {start} line; at the end,
// {maxRssKiB}.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseStateDict, parseTfjsWeights, serializeSafetensors } from '../dist/index.js';
import { makeZip, torchSave } from './torch-files.js';
import { mulberry32 } from './mulberry32.js';
import { entryOf, parseJson } from './helpers.js';
import { makeTfjs, SMALL_TFJS } from './tfjs-files.js';
/** @import { TfjsFiles } from './tfjs-files.js' */

const [seed, first, count] = process.argv.slice(2).map(Number);
const fixture = readFileSync(fileURLToPath(new URL('fixtures/sisn-small/weights_dataparallel.pt', import.meta.url)));

/**
 * Deterministic random numbers for one case (mulberry32 seeded by seed and case).
 * @typedef {{ int: (n: number) => number, pick: <T>(list: readonly T[]) => T }} CaseRng
 * @param {number} caseSeed
 * @returns {CaseRng}
 */
function generator(caseSeed) {
  const next = mulberry32(caseSeed);
  /** @param {number} n */
  const int = (n) => Math.floor(next() * n);
  return { int, pick: (list) => list[int(list.length)] };
}

/**
 * The stored entries of a zip written without data descriptors: where each record and its data lie.
 * @typedef {{ eocd: number, entries: { name: string, central: number, local: number, data: Uint8Array }[] }} ZipLayout
 * @param {Uint8Array} bytes
 * @returns {ZipLayout}
 */
function zipLayout(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const eocd = bytes.byteLength - 22;
  const entries = [];
  let at = view.getUint32(eocd + 16, true);
  for (let n = view.getUint16(eocd + 10, true); n > 0; n--) {
    const nameLen = view.getUint16(at + 28, true);
    const local = view.getUint32(at + 42, true);
    const dataAt = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLen));
    entries.push({ name, central: at, local, data: bytes.subarray(dataAt, dataAt + view.getUint32(at + 20, true)) });
    at += 46 + nameLen + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
  }
  return { eocd, entries };
}

/** @type {Map<string, import('./torch-files.js').SavedTensor>} */
const small = new Map([
  ['conv.weight', { dtype: 'F32', shape: [2, 3, 1, 1], data: Float32Array.from([1, -2, 3.5, 0, 1e-3, 7]) }],
  ['conv.bias', { dtype: 'F32', shape: [2], data: Float32Array.from([0.5, -0.5]) }],
  ['bn.num_batches_tracked', { dtype: 'I64', shape: [], data: [12] }],
]);
const smallPt = torchSave(small);
/** @type {Record<string, { bytes: Uint8Array, layout?: ZipLayout } | TfjsFiles>} */
const bases = {
  'fixture.pt': { bytes: fixture, layout: zipLayout(fixture) },
  'small.pt': { bytes: smallPt, layout: zipLayout(smallPt) },
  'small.safetensors': { bytes: serializeSafetensors(small, { format: 'pt', note: 'fuzz' }) },
};
bases['small-weights_manifest.json'] = makeTfjs(SMALL_TFJS);

const INTERESTING = [
  0, 1, 2, 3, 4, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
];
const OPCODES = [
  0x80, 0x95, 0x2e, 0x28, 0x63, 0x93, 0x71, 0x72, 0x94, 0x68, 0x6a, 0x7d, 0x5d, 0x29, 0x74, 0x85, 0x86, 0x87, 0x4b,
  0x4d, 0x4a, 0x8a, 0x47, 0x58, 0x8c, 0x55, 0x54, 0x4e, 0x88, 0x89, 0x51, 0x52, 0x62, 0x73, 0x75, 0x61, 0x65, 0x0a,
  0x00, 0x49, 0x69,
];

/** @type {(rng: CaseRng, bytes: Uint8Array, from?: number, to?: number) => Uint8Array} */
const flip = (rng, bytes, from = 0, to = bytes.byteLength) => {
  const out = Uint8Array.from(bytes);
  for (let k = 1 + rng.int(4); k > 0; k--) out[from + rng.int(to - from)] ^= 1 + rng.int(255);
  return out;
};
/** @type {(bytes: Uint8Array, at: number, size: number, value: number) => Uint8Array} */
const setUint = (bytes, at, size, value) => {
  const out = Uint8Array.from(bytes);
  for (let i = 0; i < size; i++) out[at + i] = Math.floor(value / 256 ** i) & 0xff;
  return out;
};
/** @type {(rng: CaseRng, bytes: Uint8Array) => Uint8Array} */
const splice = (rng, bytes) => {
  const at = rng.int(bytes.byteLength);
  const len = 1 + rng.int(16);
  if (rng.int(2)) return Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(at + len)]);
  return Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(at, at + len), ...bytes.subarray(at)]);
};

/** @typedef {[string, Uint8Array]} Mutation what was changed, and the changed file */

/**
 * Mutations of a zip checkpoint; the pickle and storage edits re-zip so the archive stays valid.
 * @param {CaseRng} rng
 * @param {{ bytes: Uint8Array, layout?: ZipLayout }} base
 * @returns {Mutation}
 */
function mutateTorch(rng, { bytes, layout }) {
  if (!layout) throw new Error('a .pt base has a zip layout');
  const entry = rng.pick(layout.entries);
  /** @type {(name: string, data: Uint8Array) => Uint8Array} */
  const rezip = (name, data) => makeZip(layout.entries.map((e) => [e.name, e.name === name ? data : e.data]));
  const pkl = layout.entries.find((e) => e.name.endsWith('data.pkl'));
  if (!pkl) throw new Error('a .pt base holds data.pkl');
  const pickleOffsets = () =>
    [...pkl.data.keys()].filter((i) => [0x4a, 0x4b, 0x4d, 0x58, 0x71, 0x68].includes(pkl.data[i]));
  switch (rng.int(9)) {
    case 0:
      return ['flip anywhere', flip(rng, bytes)];
    case 1:
      return ['truncate', bytes.subarray(0, rng.int(bytes.byteLength))];
    case 2: {
      /** @type {[string, number, number][]} */
      const fields = [
        ['central sizes', entry.central + 20, 4],
        ['central size', entry.central + 24, 4],
        ['central method', entry.central + 10, 2],
        ['central name length', entry.central + 28, 2],
        ['central extra length', entry.central + 30, 2],
        ['central offset', entry.central + 42, 4],
        ['local name length', entry.local + 26, 2],
        ['local extra length', entry.local + 28, 2],
        ['entry count', layout.eocd + 10, 2],
        ['directory size', layout.eocd + 12, 4],
        ['directory offset', layout.eocd + 16, 4],
      ];
      const [what, at, size] = rng.pick(fields);
      const value = rng.pick(INTERESTING);
      return [`${entry.name} ${what} = ${value}`, setUint(bytes, at, size, value % 256 ** size)];
    }
    case 3:
      return [
        `flip in headers of ${entry.name}`,
        flip(rng, flip(rng, bytes, entry.central, entry.central + 46), entry.local, entry.local + 30),
      ];
    case 4:
      return ['flip in the pickle', rezip(pkl.name, flip(rng, pkl.data))];
    case 5: {
      const at = rng.int(pkl.data.byteLength);
      const code = rng.pick(OPCODES);
      const data = Uint8Array.from(pkl.data);
      data[at] = code;
      return [`pickle byte ${at} = 0x${code.toString(16)}`, rezip(pkl.name, data)];
    }
    case 6: {
      const at = rng.pick(pickleOffsets()) + 1;
      /** @type {Record<number, number>} */
      const operandSizes = { 0x4a: 4, 0x4b: 1, 0x4d: 2, 0x58: 4, 0x71: 1, 0x68: 1 };
      const size = operandSizes[pkl.data[at - 1]];
      const value = rng.pick(INTERESTING) % 256 ** size;
      return [`pickle operand at ${at} = ${value}`, rezip(pkl.name, setUint(pkl.data, at, size, value))];
    }
    case 7:
      return ['pickle splice', rezip(pkl.name, splice(rng, pkl.data))];
    default: {
      const cut = rng.int(entry.data.byteLength + 8);
      const data =
        cut <= entry.data.byteLength
          ? entry.data.subarray(0, cut)
          : Uint8Array.from([...entry.data, ...new Uint8Array(cut - entry.data.byteLength)]);
      return [`${entry.name} resized to ${cut} bytes`, rezip(entry.name, data)];
    }
  }
}

const BAD_VALUES = [-1, 1.5, 0, 2 ** 53, 2 ** 60, 'x', null, [], {}, [1, 2, 3], true];

/**
 * Mutations of a safetensors file: bytes, the header length, and the header's JSON fields.
 * @param {CaseRng} rng
 * @param {{ bytes: Uint8Array }} base
 * @returns {Mutation}
 */
function mutateSafetensors(rng, { bytes }) {
  const headerLen = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  switch (rng.int(6)) {
    case 0:
      return ['flip anywhere', flip(rng, bytes)];
    case 1:
      return ['flip in the header', flip(rng, bytes, 8, 8 + headerLen)];
    case 2:
      return ['truncate', bytes.subarray(0, rng.int(bytes.byteLength))];
    case 3: {
      const value = rng.pick([0, 1, headerLen - 1, headerLen + 1, bytes.byteLength, 2 ** 32, 2 ** 53, 2 ** 63]);
      const out = Uint8Array.from(bytes);
      new DataView(out.buffer).setBigUint64(0, BigInt(value), true);
      return [`header length = ${value}`, out];
    }
    case 4:
      return ['splice', splice(rng, bytes)];
    default: {
      const header = /** @type {Record<string, Record<string, unknown>>} */ (
        parseJson(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)))
      );
      const name = rng.pick(Object.keys(header));
      const field =
        name === '__metadata__' ? rng.pick(Object.keys(header[name])) : rng.pick(['dtype', 'shape', 'data_offsets']);
      const value = rng.pick(BAD_VALUES);
      const target = header[name];
      if (Array.isArray(target[field]) && rng.int(2)) target[field][rng.int(target[field].length + 1)] = value;
      else target[field] = value;
      const json = new TextEncoder().encode(JSON.stringify(header));
      const out = new Uint8Array(8 + json.byteLength + bytes.byteLength - 8 - headerLen);
      new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
      out.set(json, 8);
      out.set(bytes.subarray(8 + headerLen), 8 + json.byteLength);
      return [`${name}.${field} = ${JSON.stringify(value)}`, out];
    }
  }
}

/**
 * Mutations of a tfjs manifest (its JSON fields and text) and of its shards (bytes and sizes).
 * @param {CaseRng} rng
 * @param {TfjsFiles} base
 * @returns {[string, () => unknown]}
 */
function mutateTfjs(rng, { manifest, shards }) {
  const groups = /** @type {{ paths: unknown, weights: Record<string, unknown>[] }[]} */ (structuredClone(manifest));
  const files = new Map(shards);
  const shard = rng.pick([...files.keys()]);
  /** @type {Uint8Array | null} */
  let text = null;
  let what;
  switch (rng.int(6)) {
    case 0:
      what = `flip in ${shard}`;
      files.set(shard, flip(rng, entryOf(files, shard)));
      break;
    case 1: {
      const bytes = entryOf(files, shard);
      const cut = rng.int(bytes.byteLength + 8);
      what = `${shard} resized to ${cut} bytes`;
      files.set(
        shard,
        cut <= bytes.byteLength
          ? bytes.subarray(0, cut)
          : Uint8Array.from([...bytes, ...new Uint8Array(cut - bytes.byteLength)]),
      );
      break;
    }
    case 2:
      what = `${shard} missing`;
      files.delete(shard);
      break;
    case 3:
      what = 'flip in the manifest text';
      text = flip(rng, new TextEncoder().encode(JSON.stringify(groups)));
      break;
    case 4: {
      const group = rng.pick(groups);
      const value = rng.pick([...BAD_VALUES, '../secret.bin', '/etc/passwd', 'other.bin']);
      if (Array.isArray(group.paths) && rng.int(2)) group.paths[rng.int(group.paths.length + 1)] = value;
      else group.paths = value;
      what = `paths = ${JSON.stringify(group.paths)}`;
      break;
    }
    default: {
      const weight = rng.pick(rng.pick(groups).weights);
      const field = rng.pick([
        'name',
        'shape',
        'dtype',
        'quantization',
        'quantization.dtype',
        'quantization.min',
        'quantization.scale',
      ]);
      const value = rng.pick([...BAD_VALUES, 'uint8', 'float16', 'int32', 'conv/filters', 1e308, -1e308]);
      const [key, sub] = field.split('.');
      const current = weight[key];
      if (sub && current) /** @type {Record<string, unknown>} */ (current)[sub] = value;
      else if (Array.isArray(current) && rng.int(2)) current[rng.int(current.length + 1)] = value;
      else weight[key] = value;
      what = `${String(weight.name)}.${field} = ${JSON.stringify(value)}`;
    }
  }
  const bytes = text ?? new TextEncoder().encode(JSON.stringify(groups));
  /** @param {string} path */
  const readShard = (path) => {
    const shardBytes = files.get(path);
    if (!shardBytes) throw new Error(`cannot read the weights shard ${path}: no such file or folder`);
    return shardBytes;
  };
  return [what, () => parseTfjsWeights(bytes, readShard, source)];
}

/** @type {string} the case's file name, for the loaders' messages */
let source = '';
/** @param {object} line */
const say = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
for (let n = first; n < first + count; n++) {
  const rng = generator(Math.imul(seed, 0x9e3779b1) ^ n);
  const baseName = rng.pick(Object.keys(bases));
  const base = bases[baseName];
  /** @type {[string, Uint8Array | (() => unknown)]} */
  const [mutation, bytesOrParse] =
    'manifest' in base
      ? mutateTfjs(rng, base)
      : baseName.endsWith('.pt')
        ? mutateTorch(rng, base)
        : mutateSafetensors(rng, base);
  // A random extension: the format must be told from the bytes.
  source = `case-${n}-of-${baseName}${rng.pick(['.pt', '.safetensors', '.bin'])}`;
  const what = `${baseName}: ${mutation}`;
  say({ start: n });
  try {
    if (typeof bytesOrParse === 'function') bytesOrParse();
    else parseStateDict(bytesOrParse, source);
    say({ case: n, what, loaded: true });
  } catch (caught) {
    const e = /** @type {Error | undefined} */ (caught);
    say({ case: n, what, source, error: { name: e?.constructor?.name, message: String(e?.message ?? e) } });
  }
}
say({ maxRssKiB: process.resourceUsage().maxRSS });
