// Writes small PyTorch-style checkpoints for the loader tests: a zip (stored or deflated entries)
// around a protocol-2 pickle laid out as torch.save lays out a state_dict, with every field
// (offset, shape, strides, storage) open to tampering.
import { crc32, deflateRawSync } from 'node:zlib';

const te = new TextEncoder();
/** @param {number} v */
const u16 = (v) => [v & 0xff, (v >>> 8) & 0xff];
/** @param {number} v */
const u32 = (v) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
/** @param {number} v */
const u64 = (v) => [...u32(v % 2 ** 32), ...u32(Math.floor(v / 2 ** 32))];
const SATURATED = u32(0xffffffff);

/** @typedef {{ deflate?: string[], declare?: Record<string, number>, zip64?: boolean }} ZipOptions */

/**
 * A zip of [name, bytes] entries; names in `deflate` are compressed; `declare` overrides sizes;
 * `zip64` moves every size, offset and count of the directory into ZIP64 fields and records.
 * @param {[string, Uint8Array][]} entries
 * @param {ZipOptions} [options]
 */
export function makeZip(entries, { deflate = [], declare = {}, zip64 = false } = {}) {
  const locals = [];
  const central = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const method = deflate.includes(name) ? 8 : 0;
    const body = method ? deflateRawSync(data) : data;
    const size = declare[name] ?? data.byteLength;
    const nameBytes = te.encode(name);
    const common = [
      ...u16(20),
      ...u16(0),
      ...u16(method),
      ...u16(0),
      ...u16(0x21),
      ...u32(crc32(data)),
      ...u32(body.byteLength),
      ...u32(size),
      ...u16(nameBytes.length),
    ];
    const local = Uint8Array.from([...u32(0x04034b50), ...common, ...u16(0), ...nameBytes]);
    if (zip64) {
      const sizes = [
        ...u16(20),
        ...u16(0),
        ...u16(method),
        ...u16(0),
        ...u16(0x21),
        ...u32(crc32(data)),
        ...SATURATED,
        ...SATURATED,
        ...u16(nameBytes.length),
      ];
      const extra = [...u16(1), ...u16(24), ...u64(size), ...u64(body.byteLength), ...u64(offset)];
      central.push(
        Uint8Array.from([
          ...u32(0x02014b50),
          ...u16(45),
          ...sizes,
          ...u16(extra.length),
          ...u16(0),
          ...u16(0),
          ...u16(0),
          ...u32(0),
          ...SATURATED,
          ...nameBytes,
          ...extra,
        ]),
      );
    } else {
      central.push(
        Uint8Array.from([
          ...u32(0x02014b50),
          ...u16(20),
          ...common,
          ...u16(0),
          ...u16(0),
          ...u16(0),
          ...u16(0),
          ...u32(0),
          ...u32(offset),
          ...nameBytes,
        ]),
      );
    }
    locals.push(local, body);
    offset += local.byteLength + body.byteLength;
  }
  const dirSize = central.reduce((s, c) => s + c.byteLength, 0);
  if (!zip64) {
    const end = Uint8Array.from([
      ...u32(0x06054b50),
      ...u16(0),
      ...u16(0),
      ...u16(entries.length),
      ...u16(entries.length),
      ...u32(dirSize),
      ...u32(offset),
      ...u16(0),
    ]);
    return Buffer.concat([...locals, ...central, end]);
  }
  const record = Uint8Array.from([
    ...u32(0x06064b50),
    ...u64(44),
    ...u16(45),
    ...u16(45),
    ...u32(0),
    ...u32(0),
    ...u64(entries.length),
    ...u64(entries.length),
    ...u64(dirSize),
    ...u64(offset),
  ]);
  const locator = Uint8Array.from([...u32(0x07064b50), ...u32(0), ...u64(offset + dirSize), ...u32(1)]);
  const end = Uint8Array.from([
    ...u32(0x06054b50),
    ...u16(0),
    ...u16(0),
    ...u16(0xffff),
    ...u16(0xffff),
    ...SATURATED,
    ...SATURATED,
    ...u16(0),
  ]);
  return Buffer.concat([...locals, ...central, record, locator, end]);
}

/** Pickle opcodes, as byte arrays to concatenate. */
export const op = {
  proto: [0x80, 2],
  /** @type {(mod: string, name: string) => number[]} */
  global: (mod, name) => [0x63, ...te.encode(`${mod}\n${name}\n`)],
  /** @type {(s: string) => number[]} */
  str: (s) => {
    const b = te.encode(s);
    return [0x58, ...u32(b.length), ...b];
  },
  /** @type {(v: number) => number[]} */
  int: (v) => [0x4a, ...u32(v)],
  mark: [0x28],
  tuple: [0x74],
  emptyTuple: [0x29],
  reduce: [0x52],
  binpersid: [0x51],
  newFalse: [0x89],
  setItems: [0x75],
  stop: [0x2e],
};

const emptyOrderedDict = [...op.global('collections', 'OrderedDict'), ...op.emptyTuple, ...op.reduce];

/**
 * One tensor of a pickled state_dict: its storage's key and type, element count, offset, size and stride.
 * @typedef {{ name: string, key: string, type?: string, numel?: number, offset?: number, size: number[],
 *   stride: number[] }} PickledTensor
 */

/**
 * The pickle of an OrderedDict of tensors: each { name, key, type ('FloatStorage'...), offset, size, stride }.
 * @param {PickledTensor[]} tensors
 */
export function statePickle(tensors) {
  const out = [...op.proto, ...emptyOrderedDict, ...op.mark];
  for (const t of tensors) {
    out.push(...op.str(t.name), ...op.global('torch._utils', '_rebuild_tensor_v2'), ...op.mark);
    out.push(
      ...op.mark,
      ...op.str('storage'),
      ...op.global('torch', t.type ?? 'FloatStorage'),
      ...op.str(t.key),
      ...op.str('cpu'),
      ...op.int(t.numel ?? 0),
      ...op.tuple,
      ...op.binpersid,
    );
    out.push(...op.int(t.offset ?? 0));
    out.push(...op.mark, ...t.size.flatMap(op.int), ...op.tuple);
    out.push(...op.mark, ...t.stride.flatMap(op.int), ...op.tuple);
    out.push(...op.newFalse, ...emptyOrderedDict, ...op.tuple, ...op.reduce);
  }
  out.push(...op.setItems, ...op.stop);
  return Uint8Array.from(out);
}

/** @param {number[]} shape */
const rowMajor = (shape) => shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));

/**
 * One entry of a state_dict to save: F32 data as a Float32Array, I64 as a list of integers (as parsed).
 * @typedef {import('../dist/index.js').SafeTensor} SavedTensor
 */

/**
 * A torch.save-style checkpoint of a state_dict: Map name -> { dtype 'F32' | 'I64', shape, data }.
 * @param {Iterable<[string, SavedTensor]>} dict
 * @param {ZipOptions} [options]
 */
export function torchSave(dict, options = {}) {
  /** @type {PickledTensor[]} */
  const tensors = [];
  /** @type {[string, Uint8Array][]} */
  const entries = [];
  for (const [name, t] of dict) {
    const key = String(tensors.length);
    const { data } = t;
    /** @type {Uint8Array} */
    let bytes;
    if (t.dtype === 'I64') bytes = new Uint8Array(BigInt64Array.from(data, (v) => BigInt(v)).buffer);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else throw new Error(`torchSave: ${name} holds ${t.dtype} values as a list, not a typed array`);
    tensors.push({
      name,
      key,
      type: t.dtype === 'I64' ? 'LongStorage' : 'FloatStorage',
      size: t.shape,
      stride: rowMajor(t.shape),
      numel: t.data.length,
    });
    entries.push([`archive/data/${key}`, bytes]);
  }
  return makeZip(
    [['archive/data.pkl', statePickle(tensors)], ['archive/byteorder', te.encode('little')], ...entries],
    options,
  );
}
