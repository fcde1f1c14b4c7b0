/**
 * Loads a PyTorch checkpoint written by `torch.save(state_dict)` (the zip format of PyTorch >= 1.6):
 * `<name>/data.pkl` is a pickle whose tensors point at raw storages `<name>/data/<key>`. The
 * restricted unpickler (pickle.ts) rebuilds the (Ordered)dict; only the objects a state_dict holds
 * are accepted (tensors via `torch._utils._rebuild_tensor_v2` / `_rebuild_parameter`, dicts,
 * tuples, scalars), so nothing in the file is ever executed. Every tensor's offset, shape and
 * strides are checked against its storage before anything is allocated.
 */
import { readBytes } from './files.js';
import { readZip, type ZipEntry } from './zip.js';
import { unpickle, describe, type PickleGlobal } from './pickle.js';
import type { SafeTensor, StateDict } from './safetensors.js';

interface Storage {
  key: string;
  dtype: keyof typeof ELEMENT_BYTES;
  bytes: Uint8Array;
}
const STORAGE = Symbol('storage');
type StorageRef = { [STORAGE]: Storage };

const ELEMENT_BYTES = { F32: 4, F64: 8, F16: 2, I64: 8, I32: 4 } as const;

const STORAGE_DTYPES: Record<string, Storage['dtype']> = {
  'torch.FloatStorage': 'F32',
  'torch.DoubleStorage': 'F64',
  'torch.HalfStorage': 'F16',
  'torch.LongStorage': 'I64',
  'torch.IntStorage': 'I32',
};

/** The pickled magic number that starts a legacy (pre-1.6, non-zip) `torch.save` file. */
const LEGACY_MAGIC = [0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

export function isLegacyTorchSave(bytes: Uint8Array): boolean {
  return bytes[0] === 0x80 && LEGACY_MAGIC.every((b, i) => bytes[2 + i] === b);
}

export const LEGACY_ADVICE =
  'a legacy (pre-1.6, non-zip) torch.save file: not supported. Convert it with PyTorch: ' +
  "torch.save(torch.load('old.pt'), 'new.pt') writes the zip format, or " +
  "safetensors.torch.save_file(torch.load('old.pt'), 'new.safetensors')";

function half(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

function readElement(storage: Storage, dv: DataView, i: number): number {
  switch (storage.dtype) {
    case 'F32':
      return dv.getFloat32(i * 4, true);
    case 'F64':
      return dv.getFloat64(i * 8, true);
    case 'F16':
      return half(dv.getUint16(i * 2, true));
    case 'I64':
      return Number(dv.getBigInt64(i * 8, true));
    default:
      return dv.getInt32(i * 4, true);
  }
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Rebuilds `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`, checked against the storage. */
function rebuildTensor(args: unknown[], source: string, budget: { elements: number }): SafeTensor {
  const [ref, offset, size, stride] = args;
  if (!(ref && typeof ref === 'object' && STORAGE in ref)) throw new Error(`${source}: a tensor without a storage`);
  const storage = (ref as StorageRef)[STORAGE];
  const what = `${source}: the tensor on storage data/${storage.key}`;
  if (
    !isCount(offset) ||
    !Array.isArray(size) ||
    !Array.isArray(stride) ||
    !size.every(isCount) ||
    !stride.every(isCount) ||
    size.length !== stride.length
  ) {
    throw new Error(`${what} has a malformed offset, shape or strides (${describe([offset, size, stride])})`);
  }
  const available = storage.bytes.byteLength / ELEMENT_BYTES[storage.dtype];
  let count = 1;
  let last = offset;
  for (let d = 0; d < size.length; d++) {
    count *= size[d];
    last += Math.max(0, size[d] - 1) * stride[d];
  }
  if (count > available || (count > 0 && last >= available)) {
    throw new Error(
      `${what} (shape ${describe(size)}, strides ${describe(stride)}, offset ${offset}) reads past its ${available} ` +
        `elements`,
    );
  }
  budget.elements -= count;
  if (budget.elements < 0)
    throw new Error(
      `${source}: the tensors hold more elements than the archive has bytes (storages shared over and over)`,
    );
  const integer = storage.dtype === 'I64' || storage.dtype === 'I32';
  const shape = [...size];
  if (contiguous(size, stride) && storage.dtype === 'F32') {
    // What state_dicts hold: a straight copy (the storage may sit unaligned in the file).
    const data = new Float32Array(count);
    new Uint8Array(data.buffer).set(storage.bytes.subarray(offset * 4, (offset + count) * 4));
    return { dtype: 'F32', shape, data };
  }
  const values = gather(storage, offset, size, stride, count);
  return { dtype: integer ? 'I64' : 'F32', shape, data: integer ? values : Float32Array.from(values) };
}

/** Row-major with no gaps (dimensions of size 1 may carry any stride). */
function contiguous(size: number[], stride: number[]): boolean {
  let expected = 1;
  for (let d = size.length - 1; d >= 0; d--) {
    if (size[d] !== 1 && stride[d] !== expected) return false;
    expected *= size[d];
  }
  return true;
}

/** Reads a strided view element by element (views of a larger storage, other dtypes). */
function gather(storage: Storage, offset: number, size: number[], stride: number[], count: number): number[] {
  const dv = new DataView(storage.bytes.buffer, storage.bytes.byteOffset, storage.bytes.byteLength);
  const values = new Array<number>(count);
  const index = new Array<number>(size.length).fill(0);
  for (let n = 0; n < count; n++) {
    let at = offset;
    for (let d = 0; d < size.length; d++) at += index[d] * stride[d];
    values[n] = readElement(storage, dv, at);
    for (let d = size.length - 1; d >= 0; d--) {
      if (++index[d] < size[d]) break;
      index[d] = 0;
    }
  }
  return values;
}

const isTensor = (v: unknown): v is SafeTensor => !!v && typeof v === 'object' && 'dtype' in v && 'shape' in v;

function loadPickle(zip: Map<string, ZipEntry>, source: string): unknown {
  const pickles = [...zip.keys()].filter((k) => k === 'data.pkl' || /^[^/]+\/data\.pkl$/.test(k));
  if (pickles.length !== 1)
    throw new Error(`${source}: ${pickles.length ? 'several' : 'no'} data.pkl inside: not a torch.save checkpoint`);
  const prefix = pickles[0].slice(0, -'data.pkl'.length);
  const order = zip.get(`${prefix}byteorder`);
  if (order && new TextDecoder().decode(order.read()) !== 'little')
    throw new Error(`${source}: a big-endian checkpoint: not supported`);
  const budget = { elements: [...zip.values()].reduce((sum, e) => sum + e.size, 0) };
  const storages = new Map<string, Storage>();
  return unpickle(zip.get(pickles[0])!.read(), source, {
    persistentLoad(pid) {
      if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 3)
        throw new Error(`${source}: unsupported persistent id ${describe(pid)}`);
      const type = (pid[1] as PickleGlobal | undefined)?.global;
      const dtype = type === undefined ? undefined : STORAGE_DTYPES[type];
      if (!dtype)
        throw new Error(
          `${source}: unsupported storage type ${describe(type)} (supported: ` +
            `${Object.keys(STORAGE_DTYPES).join(', ')})`,
        );
      if (typeof pid[2] !== 'string' || pid[2].length > 64)
        throw new Error(`${source}: storage key ${describe(pid[2])} is not a short string`);
      const key = pid[2];
      let storage = storages.get(key);
      if (!storage) {
        const entry = zip.get(`${prefix}data/${key}`);
        if (!entry) throw new Error(`${source}: storage data/${key} is missing`);
        storage = { key, dtype, bytes: entry.read() };
        if (storage.bytes.byteLength % ELEMENT_BYTES[dtype])
          throw new Error(
            `${source}: storage data/${key} holds ${storage.bytes.byteLength} bytes, not a whole number of ${type} ` +
              `elements`,
          );
        storages.set(key, storage);
      }
      if (storage.dtype !== dtype) throw new Error(`${source}: storage data/${key} is used as two types`);
      return { [STORAGE]: storage } satisfies StorageRef;
    },
    reduce(fn, args) {
      const name = fn.global;
      if (name === 'collections.OrderedDict' || name === 'builtins.dict') return new Map();
      if (name === 'torch._utils._rebuild_tensor_v2' || name === 'torch._utils._rebuild_tensor')
        return rebuildTensor(args, source, budget);
      if (name === 'torch._utils._rebuild_parameter' && isTensor(args[0])) return args[0];
      throw new Error(
        `${source}: unsupported object ${describe(name)} in the checkpoint (expected a plain state_dict)`,
      );
    },
  });
}

/** Parses the bytes of a `torch.save(state_dict)` file (keys as saved; see stripModulePrefix). */
export function parseTorchCheckpoint(bytes: Uint8Array, source: string): StateDict {
  if (isLegacyTorchSave(bytes)) throw new Error(`${source}: ${LEGACY_ADVICE}`);
  let dict = loadPickle(readZip(bytes, source), source);
  // Training checkpoints sometimes wrap the weights: {'state_dict': ...} or {'model': ...}.
  if (dict instanceof Map && ![...dict.values()].some(isTensor))
    dict = dict.get('state_dict') ?? dict.get('model') ?? dict;
  if (!(dict instanceof Map)) throw new Error(`${source}: the checkpoint does not hold a state_dict`);
  const out: StateDict = new Map();
  for (const [k, v] of dict) {
    if (typeof k === 'string' && isTensor(v)) out.set(k, v);
  }
  if (!out.size) throw new Error(`${source}: no tensors found in the checkpoint`);
  return out;
}

/** Reads a `torch.save(state_dict)` file (keys as saved; see stripModulePrefix). */
export function readTorchCheckpoint(path: string): StateDict {
  return parseTorchCheckpoint(readBytes(path, 'checkpoint'), path);
}
