/** Image files: PNG and JPEG in (pngjs, jpeg-js), PNG out; 8-bit RGB or RGBA in memory. */
import { readBytes } from './files.js';
import { fsProblem } from './fs-messages.js';
import jpeg from 'jpeg-js';
import { platform } from '../platform/index.js';

export interface RgbImage {
  width: number;
  height: number;
  /** 3 (RGB) or 4 (RGBA), interleaved. */
  channels: 3 | 4;
  data: Uint8Array;
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47];
const JPEG_MAGIC = [0xff, 0xd8, 0xff];

function startsWith(bytes: Uint8Array, magic: number[]): boolean {
  return magic.every((b, i) => bytes[i] === b);
}

/** Why PNG bytes cannot be whole: a chunk running past the end, or no IEND chunk (null if intact). */
function pngTruncation(bytes: Uint8Array): string | null {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 8; ;) {
    if (at + 8 > bytes.byteLength)
      return `the PNG file is truncated: it ends at byte ${bytes.byteLength}, before its IEND chunk`;
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const end = at + 12 + dv.getUint32(at);
    if (end > bytes.byteLength)
      return (
        `the PNG file is truncated: it ends at byte ${bytes.byteLength}, inside its ${type} chunk (which ends ` +
        `at byte ${end})`
      );
    if (type === 'IEND') return null;
    at = end;
  }
}

/** Why JPEG bytes cannot be whole: no end-of-image marker (null if it has one). */
function jpegTruncation(bytes: Uint8Array): string | null {
  for (let i = bytes.byteLength - 2; i >= 2; i--) if (bytes[i] === 0xff && bytes[i + 1] === 0xd9) return null;
  return `the JPEG file is truncated: it ends at byte ${bytes.byteLength} without an end-of-image marker`;
}

/** Decodes PNG or JPEG bytes. Grayscale becomes RGB; alpha is kept only when the image has it. */
export function decodeImage(bytes: Uint8Array, source = 'image'): RgbImage {
  let width: number;
  let height: number;
  let rgba: Uint8Array;
  let hasAlpha = false;
  try {
    if (startsWith(bytes, PNG_MAGIC)) {
      const truncated = pngTruncation(bytes);
      if (truncated) throw new Error(truncated);
      ({ width, height, rgba, alpha: hasAlpha } = platform.png.decode(bytes));
    } else if (startsWith(bytes, JPEG_MAGIC)) {
      const truncated = jpegTruncation(bytes);
      if (truncated) throw new Error(truncated);
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 2048 });
      ({ width, height } = img);
      rgba = img.data;
    } else {
      throw new Error('not a PNG or JPEG file');
    }
  } catch (e) {
    throw new Error(`${source}: cannot decode image: ${(e as Error).message}`, { cause: e });
  }
  if (!width || !height) throw new Error(`${source}: empty image`);
  if (hasAlpha)
    return { width, height, channels: 4, data: new Uint8Array(rgba.buffer, rgba.byteOffset, width * height * 4) };
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    rgb[3 * i] = rgba[4 * i];
    rgb[3 * i + 1] = rgba[4 * i + 1];
    rgb[3 * i + 2] = rgba[4 * i + 2];
  }
  return { width, height, channels: 3, data: rgb };
}

/** Width and height from a PNG or JPEG header, without decoding (null if neither). */
export function imageSize(bytes: Uint8Array): { width: number; height: number } | null {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (startsWith(bytes, PNG_MAGIC) && bytes.byteLength >= 24)
    return { width: dv.getUint32(16), height: dv.getUint32(20) };
  if (!startsWith(bytes, JPEG_MAGIC)) return null;
  // Walk the markers to the first start-of-frame (SOF0-SOF15 except DHT, JPG and DAC).
  for (let at = 2; at + 9 < bytes.byteLength;) {
    if (bytes[at] !== 0xff) return null;
    const marker = bytes[at + 1];
    if (marker === 0xff) {
      at++;
      continue;
    }
    const length = dv.getUint16(at + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { width: dv.getUint16(at + 7), height: dv.getUint16(at + 5) };
    }
    at += 2 + length;
  }
  return null;
}

export function readImage(path: string): RgbImage {
  return decodeImage(readBytes(path), path);
}

export function encodePng(img: RgbImage): Uint8Array {
  return platform.png.encode(img.width, img.height, img.channels, img.data);
}

/** Writes a PNG atomically: a failed write leaves no partial file. */
export function writePng(path: string, img: RgbImage): void {
  try {
    platform.writeFileAtomic(path, encodePng(img));
  } catch (e) {
    throw new Error(`cannot write ${path}: ${fsProblem(e)}`, { cause: e });
  }
}
