/**
 * A minimal ZIP reader (stored and deflated entries, ZIP64 sizes): enough for PyTorch checkpoints.
 * Every offset, size and count is checked against the file before it is used, and a deflated entry
 * inflates to at most its declared size, so a corrupt or hostile archive ends in a clear error.
 * CRC-32s are not checked.
 */
import { platform } from '../platform/index.js';

export interface ZipEntry {
  name: string;
  /** Uncompressed size in bytes, as declared (and enforced by `read`). */
  size: number;
  read(): Uint8Array;
}

/** Most bytes the deflated entries of one archive may declare: far above any SISN state_dict. */
export const MAX_INFLATED_BYTES = 1 << 30;

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const SATURATED = 0xffffffff;

/** A bounds-checked little-endian reader over the archive. */
function reader(bytes: Uint8Array, source: string) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (what: string): never => {
    throw new Error(`${source}: corrupt zip archive: ${what}`);
  };
  const need = (at: number, n: number, what: string) => {
    if (!(at >= 0 && at + n <= bytes.byteLength))
      fail(`${what} at byte ${at} lies past the end of the ${bytes.byteLength}-byte file`);
  };
  return {
    fail,
    need,
    u16: (at: number, what: string) => (need(at, 2, what), view.getUint16(at, true)),
    u32: (at: number, what: string) => (need(at, 4, what), view.getUint32(at, true)),
    /** A 64-bit size or offset: must fit in the file's range (a JavaScript number is exact there). */
    u64: (at: number, what: string) => {
      need(at, 8, what);
      const v = view.getBigUint64(at, true);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} is ${v}`);
      return Number(v);
    },
  };
}

function findEndOfDirectory(bytes: Uint8Array, r: ReturnType<typeof reader>, source: string): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The record is 22 bytes plus a comment of at most 65535: search that tail, last record first.
  for (let i = bytes.byteLength - 22; i >= Math.max(0, bytes.byteLength - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === EOCD) return i;
  }
  if (bytes.byteLength >= 4 && view.getUint32(0, true) === LOCAL) r.fail('no end-of-directory record (truncated?)');
  throw new Error(`${source}: not a zip archive`);
}

interface Directory {
  count: number;
  start: number;
  end: number;
}

function readDirectoryBounds(r: ReturnType<typeof reader>, eocd: number): Directory {
  if (r.u16(eocd + 4, 'disk number') !== 0 || r.u16(eocd + 6, 'directory disk') !== 0)
    r.fail('split (multi-disk) archives are not supported');
  let count = r.u16(eocd + 10, 'entry count');
  let size = r.u32(eocd + 12, 'directory size');
  let start = r.u32(eocd + 16, 'directory offset');
  if (count === 0xffff || size === SATURATED || start === SATURATED) {
    const locator = eocd - 20;
    if (locator < 0 || r.u32(locator, 'ZIP64 locator') !== ZIP64_LOCATOR) r.fail('ZIP64 sizes without a ZIP64 locator');
    const record = r.u64(locator + 8, 'ZIP64 record offset');
    if (record + 56 > locator || r.u32(record, 'ZIP64 record') !== ZIP64_EOCD)
      r.fail(`no ZIP64 end-of-directory record at byte ${record}`);
    count = r.u64(record + 32, 'ZIP64 entry count');
    size = r.u64(record + 40, 'ZIP64 directory size');
    start = r.u64(record + 48, 'ZIP64 directory offset');
  }
  const end = start + size;
  if (end > eocd) r.fail(`the directory (${size} bytes at byte ${start}) overlaps its end record at byte ${eocd}`);
  if (count * 46 > size) r.fail(`${count} entries cannot fit in a ${size}-byte directory`);
  return { count, start, end };
}

/** Reads the ZIP64 extra field: 64-bit values, in order, for whichever 32-bit fields are saturated. */
function zip64Fields(
  r: ReturnType<typeof reader>,
  at: number,
  end: number,
  fields: { size: number; compressed: number; local: number },
  name: string,
) {
  for (let e = at; e < end;) {
    if (e + 4 > end) r.fail(`entry ${name}: a truncated extra field`);
    const id = r.u16(e, 'extra field');
    const len = r.u16(e + 2, 'extra field');
    if (e + 4 + len > end) r.fail(`entry ${name}: an extra field runs past its record`);
    if (id === 0x0001) {
      let p = e + 4;
      const next = (what: string) => {
        if (p + 8 > e + 4 + len) r.fail(`entry ${name}: ZIP64 field lacks the ${what}`);
        const v = r.u64(p, `entry ${name}'s ZIP64 ${what}`);
        p += 8;
        return v;
      };
      if (fields.size === SATURATED) fields.size = next('size');
      if (fields.compressed === SATURATED) fields.compressed = next('compressed size');
      if (fields.local === SATURATED) fields.local = next('header offset');
    }
    e += 4 + len;
  }
  if (fields.size === SATURATED || fields.compressed === SATURATED || fields.local === SATURATED)
    r.fail(`entry ${name}: saturated sizes without a ZIP64 field`);
}

export function readZip(bytes: Uint8Array, source: string): Map<string, ZipEntry> {
  const r = reader(bytes, source);
  const dir = readDirectoryBounds(r, findEndOfDirectory(bytes, r, source));
  const entries = new Map<string, ZipEntry>();
  const text = new TextDecoder();
  let inflated = 0;
  let at = dir.start;
  for (let n = 0; n < dir.count; n++) {
    if (at + 46 > dir.end || r.u32(at, 'directory record') !== CENTRAL)
      r.fail(`directory record ${n} of ${dir.count} is missing or damaged`);
    const flags = r.u16(at + 8, 'flags');
    const method = r.u16(at + 10, 'method');
    const nameLen = r.u16(at + 28, 'name length');
    const extraLen = r.u16(at + 30, 'extra length');
    const commentLen = r.u16(at + 32, 'comment length');
    const next = at + 46 + nameLen + extraLen + commentLen;
    if (next > dir.end) r.fail(`directory record ${n} runs past the directory`);
    const name = text.decode(bytes.subarray(at + 46, at + 46 + nameLen));
    const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}...` : name);
    const fields = {
      compressed: r.u32(at + 20, 'size'),
      size: r.u32(at + 24, 'size'),
      local: r.u32(at + 42, 'offset'),
    };
    zip64Fields(r, at + 46 + nameLen, at + 46 + nameLen + extraLen, fields, shown);
    at = next;
    if (entries.has(name)) r.fail(`entry ${shown} appears twice`);
    if (flags & 1) throw new Error(`${source}: entry ${shown} is encrypted: not supported`);
    if (method !== 0 && method !== 8)
      throw new Error(
        `${source}: entry ${shown} uses compression method ${method}; only stored (0) and deflate (8) are supported`,
      );
    if (method === 0 && fields.size !== fields.compressed)
      r.fail(`stored entry ${shown} declares ${fields.size} bytes but holds ${fields.compressed}`);
    if (r.u32(fields.local, `entry ${shown}'s header`) !== LOCAL)
      r.fail(`entry ${shown} has no local header at byte ${fields.local}`);
    const dataAt =
      fields.local + 30 + r.u16(fields.local + 26, 'name length') + r.u16(fields.local + 28, 'extra length');
    r.need(dataAt, fields.compressed, `entry ${shown}'s ${fields.compressed} bytes`);
    if (method === 8) {
      inflated += fields.size;
      if (inflated > MAX_INFLATED_BYTES)
        throw new Error(
          `${source}: the deflated entries declare more than ${MAX_INFLATED_BYTES} bytes: not a state_dict this ` +
            `reader accepts`,
        );
    }
    const raw = bytes.subarray(dataAt, dataAt + fields.compressed);
    const size = fields.size;
    entries.set(name, {
      name,
      size,
      read: method === 0 ? () => raw : () => inflate(raw, size, `${source}: entry ${shown}`),
    });
  }
  return entries;
}

/** Inflates to at most `size` bytes (the declared size), and insists on exactly that many. */
function inflate(raw: Uint8Array, size: number, what: string): Uint8Array {
  let out: Uint8Array;
  try {
    // One spare byte tells "too long" apart from "exactly right" without inflating the rest.
    out = platform.inflateRaw(raw, size + 1);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE')
      throw new Error(`${what} inflates to more than its declared ${size} bytes`, { cause: e });
    throw new Error(`${what} does not inflate: ${(e as Error).message}`, { cause: e });
  }
  if (out.byteLength !== size) throw new Error(`${what} inflates to ${out.byteLength} bytes, not its declared ${size}`);
  return out;
}
