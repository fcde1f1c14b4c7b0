/** A minimal ZIP reader (stored and deflated entries, ZIP64 sizes): enough for PyTorch checkpoints. */
import { platform } from '../platform/index.js';

export interface ZipEntry {
  name: string;
  read(): Uint8Array;
}

export function readZip(bytes: Uint8Array, source: string): Map<string, ZipEntry> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.byteLength - 22; i >= Math.max(0, bytes.byteLength - 65557); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${source}: not a zip archive (truncated, or a legacy non-zip torch.save file)`);
  let count = view.getUint16(eocd + 10, true);
  let cdOffset = view.getUint32(eocd + 16, true);
  if (cdOffset === 0xffffffff || count === 0xffff) {
    const locator = eocd - 20;
    if (locator < 0 || view.getUint32(locator, true) !== 0x07064b50) throw new Error(`${source}: broken ZIP64 directory`);
    const z64 = Number(view.getBigUint64(locator + 8, true));
    count = Number(view.getBigUint64(z64 + 32, true));
    cdOffset = Number(view.getBigUint64(z64 + 48, true));
  }
  const entries = new Map<string, ZipEntry>();
  let at = cdOffset;
  for (let n = 0; n < count; n++) {
    if (at + 46 > bytes.byteLength || view.getUint32(at, true) !== 0x02014b50) throw new Error(`${source}: corrupt zip directory`);
    const method = view.getUint16(at + 10, true);
    let compressed = view.getUint32(at + 20, true);
    let size = view.getUint32(at + 24, true);
    const nameLen = view.getUint16(at + 28, true);
    const extraLen = view.getUint16(at + 30, true);
    const commentLen = view.getUint16(at + 32, true);
    let local = view.getUint32(at + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLen));
    // ZIP64 extra field: the 64-bit values, in order, for whichever 32-bit fields are saturated.
    for (let e = at + 46 + nameLen; e < at + 46 + nameLen + extraLen; ) {
      const id = view.getUint16(e, true);
      const len = view.getUint16(e + 2, true);
      if (id === 0x0001) {
        let p = e + 4;
        const next = () => {
          const v = Number(view.getBigUint64(p, true));
          p += 8;
          return v;
        };
        if (size === 0xffffffff) size = next();
        if (compressed === 0xffffffff) compressed = next();
        if (local === 0xffffffff) local = next();
      }
      e += 4 + len;
    }
    at += 46 + nameLen + extraLen + commentLen;
    const start = local;
    entries.set(name, {
      name,
      read() {
        if (view.getUint32(start, true) !== 0x04034b50) throw new Error(`${source}: corrupt zip entry ${name}`);
        const dataAt = start + 30 + view.getUint16(start + 26, true) + view.getUint16(start + 28, true);
        if (dataAt + compressed > bytes.byteLength) throw new Error(`${source}: entry ${name} is truncated`);
        const raw = bytes.subarray(dataAt, dataAt + compressed);
        if (method === 0) return raw;
        if (method === 8) return platform.inflateRaw(raw);
        throw new Error(`${source}: entry ${name} uses unsupported compression method ${method}`);
      },
    });
  }
  return entries;
}
