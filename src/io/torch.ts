/**
 * Loads a PyTorch checkpoint written by `torch.save(state_dict)` (the zip format of PyTorch >= 1.6):
 * `<name>/data.pkl` is a pickle whose tensors point at raw storages `<name>/data/<key>`. A small
 * pickle interpreter rebuilds the (Ordered)dict; only the objects a state_dict holds are accepted
 * (tensors via `torch._utils._rebuild_tensor_v2` / `_rebuild_parameter`, dicts, tuples, scalars),
 * so nothing in the file is ever executed.
 */
import { platform } from '../platform/index.js';
import { readZip } from './zip.js';
import type { SafeTensor, StateDict } from './safetensors.js';

interface Global {
  global: string;
}
interface StorageRef {
  storage: string;
  dtype: 'F32' | 'F64' | 'F16' | 'I64' | 'I32';
  key: string;
}
const MARK = Symbol('mark');

const STORAGE_DTYPES: Record<string, StorageRef['dtype']> = {
  'torch.FloatStorage': 'F32',
  'torch.DoubleStorage': 'F64',
  'torch.HalfStorage': 'F16',
  'torch.LongStorage': 'I64',
  'torch.IntStorage': 'I32',
};

function half(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

function unpickle(data: Uint8Array, source: string, loadStorage: (ref: StorageRef) => Uint8Array): unknown {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const text = new TextDecoder();
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  const popMark = (): unknown[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) throw new Error(`${source}: malformed pickle (no mark)`);
    const items = stack.splice(i);
    return items.slice(1);
  };
  const u8 = () => data[pos++];
  const u32 = () => {
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const str = (n: number) => {
    const s = text.decode(data.subarray(pos, pos + n));
    pos += n;
    return s;
  };
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    const s = text.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const setItems = (target: unknown, items: unknown[]) => {
    if (!(target instanceof Map)) throw new Error(`${source}: SETITEMS on a non-dict`);
    for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
  };
  const reduce = (fn: unknown, args: unknown[]): unknown => {
    const name = (fn as Global).global;
    if (name === 'collections.OrderedDict' || name === 'builtins.dict') return new Map();
    if (name === 'torch._utils._rebuild_tensor_v2' || name === 'torch._utils._rebuild_tensor') {
      const [storage, offset, size, stride] = args as [StorageRef, number, number[], number[]];
      return rebuild(storage, offset, size, stride);
    }
    if (name === 'torch._utils._rebuild_parameter') return args[0];
    throw new Error(`${source}: unsupported object ${name} in the checkpoint (expected a plain state_dict)`);
  };
  const rebuild = (storage: StorageRef, offset: number, size: number[], stride: number[]): SafeTensor => {
    const raw = loadStorage(storage);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const count = size.reduce((a, b) => a * b, 1);
    const read = (i: number): number => {
      switch (storage.dtype) {
        case 'F32': return dv.getFloat32(i * 4, true);
        case 'F64': return dv.getFloat64(i * 8, true);
        case 'F16': return half(dv.getUint16(i * 2, true));
        case 'I64': return Number(dv.getBigInt64(i * 8, true));
        default: return dv.getInt32(i * 4, true);
      }
    };
    // Gather through the strides (state_dict tensors are contiguous, but views need not be).
    const values = new Array<number>(count);
    const index = new Array<number>(size.length).fill(0);
    for (let n = 0; n < count; n++) {
      let at = offset;
      for (let d = 0; d < size.length; d++) at += index[d] * stride[d];
      values[n] = read(at);
      for (let d = size.length - 1; d >= 0; d--) {
        if (++index[d] < size[d]) break;
        index[d] = 0;
      }
    }
    const integer = storage.dtype === 'I64' || storage.dtype === 'I32';
    return { dtype: integer ? 'I64' : 'F32', shape: [...size], data: integer ? values : Float32Array.from(values) };
  };
  for (;;) {
    if (pos >= data.byteLength) throw new Error(`${source}: truncated pickle`);
    const op = u8();
    switch (op) {
      case 0x80: pos++; break; // PROTO
      case 0x95: pos += 8; break; // FRAME
      case 0x2e: return stack.pop(); // STOP
      case 0x28: stack.push(MARK); break;
      case 0x63: { const mod = line(); const name = line(); stack.push({ global: `${mod}.${name}` }); break; } // GLOBAL
      case 0x93: { const name = stack.pop() as string; const mod = stack.pop() as string; stack.push({ global: `${mod}.${name}` }); break; } // STACK_GLOBAL
      case 0x71: memo.set(u8(), stack[stack.length - 1]); break; // BINPUT
      case 0x72: memo.set(u32(), stack[stack.length - 1]); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, stack[stack.length - 1]); break; // MEMOIZE
      case 0x68: stack.push(memo.get(u8())); break; // BINGET
      case 0x6a: stack.push(memo.get(u32())); break; // LONG_BINGET
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x85: stack.push([stack.pop()]); break; // TUPLE1
      case 0x86: { const b = stack.pop(); stack.push([stack.pop(), b]); break; } // TUPLE2
      case 0x87: { const c = stack.pop(); const b = stack.pop(); stack.push([stack.pop(), b, c]); break; } // TUPLE3
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(view.getUint16((pos += 2) - 2, true)); break; // BININT2
      case 0x4a: stack.push(view.getInt32((pos += 4) - 4, true)); break; // BININT
      case 0x8a: { const n = u8(); let v = 0n; for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[pos + i]); if (n && data[pos + n - 1] & 0x80) v -= 1n << BigInt(8 * n); pos += n; stack.push(Number(v)); break; } // LONG1
      case 0x47: stack.push(view.getFloat64((pos += 8) - 8, false)); break; // BINFLOAT
      case 0x58: stack.push(str(u32())); break; // BINUNICODE
      case 0x8c: stack.push(str(u8())); break; // SHORT_BINUNICODE
      case 0x55: stack.push(str(u8())); break; // SHORT_BINSTRING
      case 0x54: stack.push(str(u32())); break; // BINSTRING
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x51: { // BINPERSID
        const pid = stack.pop() as unknown[];
        if (!Array.isArray(pid) || pid[0] !== 'storage') throw new Error(`${source}: unsupported persistent id`);
        const type = (pid[1] as Global).global;
        const dtype = STORAGE_DTYPES[type];
        if (!dtype) throw new Error(`${source}: unsupported storage type ${type}`);
        stack.push({ storage: type, dtype, key: String(pid[2]) } satisfies StorageRef);
        break;
      }
      case 0x52: { const args = stack.pop() as unknown[]; const fn = stack.pop(); stack.push(reduce(fn, args)); break; } // REDUCE
      case 0x62: stack.pop(); break; // BUILD: state of an OrderedDict (e.g. _metadata): not needed
      case 0x73: { const v = stack.pop(); const k = stack.pop(); setItems(stack[stack.length - 1], [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(stack[stack.length - 1], items); break; } // SETITEMS
      case 0x61: { const v = stack.pop(); (stack[stack.length - 1] as unknown[]).push(v); break; } // APPEND
      case 0x65: { const items = popMark(); (stack[stack.length - 1] as unknown[]).push(...items); break; } // APPENDS
      default:
        throw new Error(`${source}: unsupported pickle opcode 0x${op.toString(16)} at byte ${pos - 1}`);
    }
  }
}

/** Reads a `torch.save(state_dict)` file (keys as saved; see stripModulePrefix). */
export function readTorchCheckpoint(path: string): StateDict {
  let bytes: Uint8Array;
  try {
    bytes = platform.readFile(path);
  } catch (e) {
    throw new Error(`cannot read checkpoint ${path}: ${(e as Error).message}`);
  }
  const zip = readZip(bytes, path);
  const pkl = [...zip.keys()].find((k) => k.endsWith('/data.pkl') || k === 'data.pkl');
  if (!pkl) throw new Error(`${path}: no data.pkl inside: not a torch.save checkpoint`);
  const prefix = pkl.slice(0, -'data.pkl'.length);
  const result = unpickle(zip.get(pkl)!.read(), path, (ref) => {
    const entry = zip.get(`${prefix}data/${ref.key}`);
    if (!entry) throw new Error(`${path}: storage ${ref.key} is missing`);
    return entry.read();
  });
  let dict = result;
  // Training checkpoints sometimes wrap the weights: {'state_dict': ...} or {'model': ...}.
  if (dict instanceof Map && !([...dict.values()].some((v) => v && typeof v === 'object' && 'dtype' in v))) {
    dict = dict.get('state_dict') ?? dict.get('model') ?? dict;
  }
  if (!(dict instanceof Map)) throw new Error(`${path}: the checkpoint does not hold a state_dict`);
  const out: StateDict = new Map();
  for (const [k, v] of dict) {
    if (typeof k === 'string' && v && typeof v === 'object' && 'dtype' in v) out.set(k, v as SafeTensor);
  }
  if (!out.size) throw new Error(`${path}: no tensors found in the checkpoint`);
  return out;
}
