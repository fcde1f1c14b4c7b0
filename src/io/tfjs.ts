/**
 * tfjs weight manifests (`*-weights_manifest.json` + `.bin` shards), as face-api ships its networks:
 * a JSON list of groups `{paths: [shard, ...], weights: [{name, shape, dtype, quantization?}, ...]}`.
 * A group's tensors lie back to back, in manifest order, in the concatenation of its shards.
 * Tensors are float32 or int32, stored raw (4 bytes an element) or quantized to uint8/uint16 with
 * `quantization: {dtype, min, scale}` (value = q * scale + min; int32 rounds it).
 *
 * Everything is checked against the manifest before a tensor is built: dimensions are non-negative
 * integers, names are unique, each group's tensors fill its shards exactly (no byte short, none
 * left over), the whole stays under MAX_WEIGHT_BYTES before a shard is read, shard paths stay in
 * the manifest's folder, and float values are finite. Errors name the manifest (and the shard).
 */
import { readBytes } from './files.js';

export interface TfjsTensor {
  shape: number[];
  dtype: 'float32' | 'int32';
  data: Float32Array | Int32Array;
}

/** Tensors by name, in manifest order. */
export type TfjsWeights = Map<string, TfjsTensor>;

/** Far above face-api's largest network (6.2 MB): a manifest claiming more is refused before reading. */
export const MAX_WEIGHT_BYTES = 256 * 1024 * 1024;
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

const STORED_BYTES = { float32: 4, int32: 4, uint8: 1, uint16: 2 } as const;

interface Entry {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  quantization: { dtype: 'uint8' | 'uint16'; min: number; scale: number } | null;
  count: number;
  bytes: number;
}

interface Group {
  paths: string[];
  entries: Entry[];
  bytes: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

function parseEntry(value: unknown, where: string): Entry {
  if (!isObject(value)) throw new Error(`${where}: not an object`);
  const { name, shape, dtype, quantization } = value;
  if (typeof name !== 'string' || !name) throw new Error(`${where}: its name is not a non-empty string`);
  const what = `${where} (${name})`;
  if (!Array.isArray(shape) || !shape.every(isCount))
    throw new Error(`${what}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  if (dtype !== 'float32' && dtype !== 'int32')
    throw new Error(`${what}: dtype ${JSON.stringify(dtype)}; only float32 and int32 are supported`);
  const count = shape.reduce((a: number, b: number) => a * b, 1);
  if (!Number.isSafeInteger(count) || count > MAX_WEIGHT_BYTES)
    throw new Error(`${what}: shape ${JSON.stringify(shape)} has too many elements`);
  if (quantization === undefined)
    return { name, shape: [...shape], dtype, quantization: null, count, bytes: count * 4 };
  if (!isObject(quantization)) throw new Error(`${what}: quantization is not an object`);
  const { dtype: q, min, scale } = quantization;
  if (q !== 'uint8' && q !== 'uint16')
    throw new Error(`${what}: quantization dtype ${JSON.stringify(q)}; only uint8 and uint16 are supported`);
  if (typeof min !== 'number' || typeof scale !== 'number' || !Number.isFinite(min) || !Number.isFinite(scale))
    throw new Error(
      `${what}: quantization min ${JSON.stringify(min)} / scale ${JSON.stringify(scale)} not finite numbers`,
    );
  return {
    name,
    shape: [...shape],
    dtype,
    quantization: { dtype: q, min, scale },
    count,
    bytes: count * STORED_BYTES[q],
  };
}

function parseGroup(value: unknown, g: number, source: string): Group {
  const where = `${source}: group ${g}`;
  if (!isObject(value)) throw new Error(`${where} is not an object`);
  const { paths, weights } = value;
  if (!Array.isArray(paths) || !paths.length || !paths.every((p) => typeof p === 'string' && p.length > 0))
    throw new Error(`${where}: paths is not a non-empty list of file names`);
  for (const p of paths as string[]) {
    if (p.startsWith('/') || p.split(/[\\/]/).includes('..'))
      throw new Error(`${where}: shard path ${JSON.stringify(p)} leaves the manifest's folder`);
  }
  if (!Array.isArray(weights)) throw new Error(`${where}: weights is not a list`);
  const entries = weights.map((w, i) => parseEntry(w, `${where} weight ${i}`));
  return { paths: paths as string[], entries, bytes: entries.reduce((a, e) => a + e.bytes, 0) };
}

/** Parses and checks a manifest's JSON: its groups, in order, with each group's size in bytes. */
export function parseTfjsManifest(bytes: Uint8Array, source: string): Group[] {
  if (bytes.byteLength > MAX_MANIFEST_BYTES)
    throw new Error(`${source}: a ${bytes.byteLength}-byte manifest (the limit is ${MAX_MANIFEST_BYTES})`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new Error(`${source}: not valid JSON (not a tfjs weights manifest?)`);
  }
  if (!Array.isArray(json)) throw new Error(`${source}: not a list of weight groups (not a tfjs weights manifest?)`);
  const groups = json.map((g, i) => parseGroup(g, i, source));
  const names = new Set<string>();
  let total = 0;
  for (const e of groups.flatMap((g) => g.entries)) {
    if (names.has(e.name)) throw new Error(`${source}: tensor ${e.name} appears twice`);
    names.add(e.name);
    total += e.bytes;
  }
  if (total > MAX_WEIGHT_BYTES)
    throw new Error(`${source}: the tensors take ${total} bytes (the limit is ${MAX_WEIGHT_BYTES})`);
  return groups;
}

function decodeEntry(e: Entry, bytes: Uint8Array, source: string): TfjsTensor {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const data = e.dtype === 'float32' ? new Float32Array(e.count) : new Int32Array(e.count);
  const q = e.quantization;
  for (let i = 0; i < e.count; i++) {
    let v: number;
    if (!q) v = e.dtype === 'float32' ? view.getFloat32(4 * i, true) : view.getInt32(4 * i, true);
    else {
      const stored = q.dtype === 'uint8' ? bytes[i] : view.getUint16(2 * i, true);
      v = stored * q.scale + q.min;
      if (e.dtype === 'int32') v = Math.round(v);
    }
    data[i] = v;
    if (!Number.isFinite(data[i]))
      throw new Error(`${source}: tensor ${e.name} holds ${data[i]} at element ${i}: the weights are corrupt`);
  }
  return { shape: e.shape, dtype: e.dtype, data };
}

/**
 * The tensors of a manifest, its shards read by `readShard(path)` in order; `source` names the
 * manifest in errors.
 */
export function parseTfjsWeights(
  manifest: Uint8Array,
  readShard: (path: string) => Uint8Array,
  source: string,
): TfjsWeights {
  const out: TfjsWeights = new Map();
  for (const [g, group] of parseTfjsManifest(manifest, source).entries()) {
    const shards = group.paths.map((p) => {
      try {
        return readShard(p);
      } catch (e) {
        throw new Error(`${source}: ${(e as Error).message}`, { cause: e });
      }
    });
    const size = shards.reduce((a, s) => a + s.byteLength, 0);
    const what = `${source}: group ${g} (${group.paths.join(', ')})`;
    if (size < group.bytes)
      throw new Error(
        `${what}: its ${group.entries.length} tensors need ${group.bytes} bytes, the shards hold ${size} (truncated?)`,
      );
    if (size > group.bytes)
      throw new Error(`${what}: ${size - group.bytes} bytes after its last tensor belong to no tensor`);
    const data = shards.length === 1 ? shards[0] : new Uint8Array(size);
    if (shards.length > 1) shards.reduce((at, s) => (data.set(s, at), at + s.byteLength), 0);
    let at = 0;
    for (const e of group.entries) {
      out.set(e.name, decodeEntry(e, data.subarray(at, at + e.bytes), source));
      at += e.bytes;
    }
  }
  return out;
}

/** Reads a manifest and its shards (paths relative to the manifest's folder). */
export function readTfjsWeights(manifestPath: string): TfjsWeights {
  const folder = manifestPath.includes('/') ? manifestPath.slice(0, manifestPath.lastIndexOf('/') + 1) : '';
  return parseTfjsWeights(
    readBytes(manifestPath, 'the tfjs weights manifest'),
    (p) => readBytes(folder + p, 'the weights shard'),
    manifestPath,
  );
}

/**
 * The tensor `name` of `weights` with exactly `shape`, as float32; `source` names the weights in
 * the error that a missing or misshapen tensor gives.
 */
export function requireTensor(weights: TfjsWeights, name: string, shape: number[], source: string): Float32Array {
  const t = weights.get(name);
  if (!t)
    throw new Error(`${source}: tensor ${name} ${JSON.stringify(shape)} is missing (not this network's weights?)`);
  if (t.dtype !== 'float32' || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
    throw new Error(
      `${source}: tensor ${name} is ${t.dtype} ${JSON.stringify(t.shape)}, expected float32 ${JSON.stringify(shape)}`,
    );
  return t.data as Float32Array;
}
