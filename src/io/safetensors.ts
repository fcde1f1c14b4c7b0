/**
 * safetensors: an 8-byte little-endian header length, a JSON header
 * {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}, then the
 * raw little-endian data. F32, I64 (BatchNorm's num_batches_tracked) and U8 (images) are read and
 * written; the header is padded with spaces so the data starts 8-byte aligned.
 */
export type SafeDtype = 'F32' | 'I64' | 'U8';

export interface SafeTensor {
  dtype: SafeDtype;
  shape: number[];
  /** F32 data, I64 values as numbers (exact below 2^53), or U8 bytes. */
  data: Float32Array | number[] | Uint8Array;
}

/** Tensors by name, in file order (PyTorch's `state_dict`). */
export type StateDict = Map<string, SafeTensor>;

export interface SafeFile {
  metadata: Record<string, string>;
  tensors: Map<string, SafeTensor>;
}

const BYTES: Record<SafeDtype, number> = { F32: 4, I64: 8, U8: 1 };

export function parseSafetensors(bytes: Uint8Array, source = 'safetensors data'): SafeFile {
  if (bytes.byteLength < 8) throw new Error(`${source}: truncated (${bytes.byteLength} bytes, no header)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > bytes.byteLength - 8) throw new Error(`${source}: truncated or not safetensors (header of ${headerLen} bytes in a ${bytes.byteLength}-byte file)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
  } catch {
    throw new Error(`${source}: the header is not valid JSON (not a safetensors file?)`);
  }
  const dataStart = 8 + headerLen;
  const dataLen = bytes.byteLength - dataStart;
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  const tensors = new Map<string, SafeTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: offsets } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (dtype !== 'F32' && dtype !== 'I64' && dtype !== 'U8') throw new Error(`${source}: tensor ${name} has dtype ${dtype}; only F32, I64 and U8 are supported`);
    const count = shape.reduce((a, b) => a * b, 1);
    const [begin, end] = offsets;
    if (end - begin !== count * BYTES[dtype]) throw new Error(`${source}: tensor ${name} ${JSON.stringify(shape)} ${dtype} spans ${end - begin} bytes, expected ${count * BYTES[dtype]}`);
    if (begin < 0 || end > dataLen) throw new Error(`${source}: tensor ${name} lies past the end of the file (truncated?)`);
    const at = dataStart + begin;
    let data: SafeTensor['data'];
    if (dtype === 'F32') {
      data = new Float32Array(count);
      new Uint8Array(data.buffer).set(bytes.subarray(at, at + count * 4));
    } else if (dtype === 'U8') {
      data = bytes.slice(at, at + count);
    } else {
      data = Array.from({ length: count }, (_, i) => Number(view.getBigInt64(at + 8 * i, true)));
    }
    tensors.set(name, { dtype, shape, data });
  }
  return { metadata, tensors };
}

export function serializeSafetensors(tensors: Iterable<[string, SafeTensor]>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    let raw: Uint8Array;
    if (t.dtype === 'F32' || t.dtype === 'U8') {
      const f = t.data as Float32Array | Uint8Array;
      raw = new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
    } else {
      const big = new BigInt64Array((t.data as number[]).map((v) => BigInt(v)));
      raw = new Uint8Array(big.buffer);
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + raw.byteLength] };
    parts.push(raw);
    offset += raw.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + new TextEncoder().encode(json).byteLength) % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.byteLength), true);
  out.set(head, 8);
  let at = 8 + head.byteLength;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
