/**
 * Face datasets: a folder of HR images (PNG/JPEG, searched recursively, sorted by path), LR made by
 * MATLAB bicubic downsampling (or read from a parallel LR folder), decoded once and kept in memory.
 */
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative, extname } from 'node:path';
import { readImage } from '../io/image.js';
import { imresize, imresizeTo, type Rounding } from '../io/resize.js';

export interface FacePair {
  /** Path relative to the dataset root. */
  name: string;
  /** HR pixels, HWC RGB, sides multiples of the scale. */
  hr: Uint8Array;
  hrWidth: number;
  hrHeight: number;
  /** LR pixels, HWC RGB. */
  lr: Uint8Array;
  lrWidth: number;
  lrHeight: number;
}

export interface DatasetOptions {
  scale: number;
  /** Centre crop of every HR image before anything else, [width, height]. */
  hrCrop?: [number, number];
  /** Then resize every HR image to [width, height] (MATLAB bicubic; e.g. 1024 px faces to 128). */
  hrSize?: [number, number];
  /** A folder with LR images at the same relative paths (instead of bicubic downsampling). */
  lrRoot?: string;
  /** uint8 semantics of the bicubic downsampling (default 'matlab', as MATLAB-made LR sets). */
  rounding?: Rounding;
  /** Told once about things worth knowing (crops). */
  log?: (message: string) => void;
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);

/** Every PNG/JPEG below `root`, sorted by relative path. */
export function listImages(root: string): string[] {
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new Error(`dataset folder ${root} does not exist`);
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (IMAGE_EXT.has(extname(entry.name).toLowerCase())) out.push(p);
    }
  };
  walk(root);
  out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (!out.length) throw new Error(`no PNG or JPEG images found in ${root}`);
  return out;
}

/** `"1-850"` -> the 1st to 850th files (1-based, inclusive), as the official --train_val_range. */
export function selectRange<T>(items: readonly T[], range: string, what = 'range'): T[] {
  const m = /^(\d+)-(\d+)$/.exec(range.trim());
  if (!m) throw new Error(`${what} '${range}' must look like 1-850`);
  const [lo, hi] = [Number(m[1]), Number(m[2])];
  if (lo < 1 || hi < lo) throw new Error(`${what} '${range}' is empty or starts before 1`);
  if (hi > items.length) throw new Error(`${what} '${range}' ends past the ${items.length} images found`);
  return items.slice(lo - 1, hi);
}

function centreCrop(data: Uint8Array, w: number, h: number, c: number, cw: number, ch: number, file: string): Uint8Array {
  if (cw > w || ch > h) throw new Error(`${file}: ${w}x${h} is smaller than the HR crop ${cw}x${ch}`);
  const x0 = Math.floor((w - cw) / 2);
  const y0 = Math.floor((h - ch) / 2);
  const out = new Uint8Array(cw * ch * c);
  for (let y = 0; y < ch; y++) out.set(data.subarray(((y0 + y) * w + x0) * c, ((y0 + y) * w + x0 + cw) * c), y * cw * c);
  return out;
}

function rgbOf(path: string): { data: Uint8Array; width: number; height: number } {
  const img = readImage(path);
  if (img.channels === 3) return img;
  const rgb = new Uint8Array(img.width * img.height * 3);
  for (let i = 0; i < img.width * img.height; i++) rgb.set(img.data.subarray(4 * i, 4 * i + 3), 3 * i);
  return { data: rgb, width: img.width, height: img.height };
}

/** Decodes, crops and downsamples every file. Errors name the file. */
export function loadPairs(root: string, files: readonly string[], o: DatasetOptions): FacePair[] {
  const s = o.scale;
  let cropNoted = false;
  return files.map((file) => {
    let { data, width, height } = rgbOf(file);
    if (o.hrCrop) {
      data = centreCrop(data, width, height, 3, o.hrCrop[0], o.hrCrop[1], file);
      [width, height] = o.hrCrop;
    }
    if (o.hrSize && (width !== o.hrSize[0] || height !== o.hrSize[1])) {
      data = Uint8Array.from(imresizeTo(data, height, width, 3, o.hrSize[1], o.hrSize[0], o.rounding ?? 'matlab').data);
      [width, height] = o.hrSize;
    }
    const w = Math.floor(width / s) * s;
    const h = Math.floor(height / s) * s;
    if (!w || !h) throw new Error(`${file}: ${width}x${height} is smaller than the scale ${s}`);
    if (w !== width || h !== height) {
      if (!cropNoted) o.log?.(`HR images whose sides are not multiples of ${s} are cropped to the top-left block (e.g. ${file}: ${width}x${height} -> ${w}x${h})`);
      cropNoted = true;
      data = topLeft(data, width, w, h);
    }
    const name = relative(root, file);
    let lr: Uint8Array;
    if (o.lrRoot) {
      const lrFile = join(o.lrRoot, name);
      const img = rgbOf(lrFile);
      if (img.width * s !== w || img.height * s !== h) throw new Error(`${lrFile}: LR ${img.width}x${img.height} does not match HR ${w}x${h} at x${s}`);
      lr = img.data;
    } else {
      lr = Uint8Array.from(imresize(data, h, w, 3, 1, s, o.rounding ?? 'matlab').data);
    }
    return { name, hr: data, hrWidth: w, hrHeight: h, lr, lrWidth: w / s, lrHeight: h / s };
  });
}

function topLeft(data: Uint8Array, width: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) out.set(data.subarray(y * width * 3, (y * width + w) * 3), y * w * 3);
  return out;
}
