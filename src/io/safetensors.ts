/**
 * safetensors: an 8-byte little-endian header length, a JSON header
 * {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}, then the
 * raw little-endian data. F32, I64 (BatchNorm's num_batches_tracked) and U8 (images) are read and
 * written; the header is padded with spaces so the data starts 8-byte aligned. Parsing checks the
 * header against the file before allocating: dimensions are non-negative integers, each tensor's
 * byte span matches its dtype and shape, the data ranges tile the data section with no overlap or
 * hole (as the format requires), and metadata values are strings.
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

/** The reference implementation's bound on the JSON header. */
const MAX_HEADER_BYTES = 100_000_000;

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

interface Entry {
  name: string;
  dtype: SafeDtype;
  shape: number[];
  begin: number;
  end: number;
}

function parseHeader(bytes: Uint8Array, source: string): { header: Record<string, unknown>; dataStart: number } {
  if (bytes.byteLength < 8) throw new Error(`${source}: truncated (${bytes.byteLength} bytes, no header)`);
  const declared = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (declared > BigInt(bytes.byteLength - 8) && bytes[0] === 0x50 && bytes[1] === 0x4b)
    throw new Error(`${source}: a zip archive (a PyTorch checkpoint?), not safetensors`);
  if (declared > BigInt(bytes.byteLength - 8))
    throw new Error(
      `${source}: truncated or not safetensors (header of ${declared} bytes in a ${bytes.byteLength}-byte file)`,
    );
  const headerLen = Number(declared);
  if (headerLen > MAX_HEADER_BYTES)
    throw new Error(`${source}: a header of ${headerLen} bytes (the limit is ${MAX_HEADER_BYTES})`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen)));
  } catch {
    throw new Error(`${source}: the header is not valid JSON (not a safetensors file?)`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header))
    throw new Error(`${source}: the header is not a JSON object`);
  return { header: header as Record<string, unknown>, dataStart: 8 + headerLen };
}

function parseMetadata(value: unknown, source: string): Record<string, string> {
  if (value === undefined) return {};
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new Error(`${source}: __metadata__ is not an object`);
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new Error(`${source}: __metadata__.${k} is not a string`);
  }
  return value as Record<string, string>;
}

function parseEntry(name: string, value: unknown, source: string): Entry {
  const what = `${source}: tensor ${name}`;
  if (!value || typeof value !== 'object') throw new Error(`${what}: its header entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (dtype !== 'F32' && dtype !== 'I64' && dtype !== 'U8')
    throw new Error(`${what} has dtype ${JSON.stringify(dtype)}; only F32, I64 and U8 are supported`);
  if (!Array.isArray(shape) || !shape.every(isCount))
    throw new Error(`${what} has shape ${JSON.stringify(shape)}: not a list of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    throw new Error(`${what} has data_offsets ${JSON.stringify(offsets)}: not [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = offsets as [number, number];
  const count = shape.reduce((a, b) => a * b, 1);
  if (end - begin !== count * BYTES[dtype])
    throw new Error(
      `${what} ${JSON.stringify(shape)} ${dtype} spans ${end - begin} bytes, expected ${count * BYTES[dtype]}`,
    );
  return { name, dtype, shape: [...shape], begin, end };
}

/** The data ranges must tile the data section exactly, as the format requires: no overlap, no hole. */
function checkLayout(entries: Entry[], dataLen: number, source: string): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of sorted) {
    if (e.begin < at)
      throw new Error(`${source}: tensor ${e.name}'s data [${e.begin}, ${e.end}) overlaps another tensor's`);
    if (e.begin > at)
      throw new Error(`${source}: ${e.begin - at} bytes before tensor ${e.name}'s data belong to no tensor`);
    at = e.end;
  }
  if (at > dataLen)
    throw new Error(`${source}: the tensors' data ends at byte ${at} of a ${dataLen}-byte data section (truncated?)`);
  if (at < dataLen) throw new Error(`${source}: ${dataLen - at} bytes after the last tensor belong to no tensor`);
}

export function parseSafetensors(bytes: Uint8Array, source = 'safetensors data'): SafeFile {
  const { header, dataStart } = parseHeader(bytes, source);
  const metadata = parseMetadata(header.__metadata__, source);
  const entries = Object.entries(header)
    .filter(([name]) => name !== '__metadata__')
    .map(([name, value]) => parseEntry(name, value, source));
  checkLayout(entries, bytes.byteLength - dataStart, source);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tensors = new Map<string, SafeTensor>();
  for (const { name, dtype, shape, begin, end } of entries) {
    const at = dataStart + begin;
    let data: SafeTensor['data'];
    if (dtype === 'F32') {
      data = new Float32Array((end - begin) / 4);
      new Uint8Array(data.buffer).set(bytes.subarray(at, dataStart + end));
    } else if (dtype === 'U8') {
      data = bytes.slice(at, dataStart + end);
    } else {
      data = Array.from({ length: (end - begin) / 8 }, (_, i) => Number(view.getBigInt64(at + 8 * i, true)));
    }
    tensors.set(name, { dtype, shape, data });
  }
  return { metadata, tensors };
}

export function serializeSafetensors(
  tensors: Iterable<[string, SafeTensor]>,
  metadata: Record<string, string> = {},
): Uint8Array {
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
