/**
 * Face datasets: a folder of HR images (PNG/JPEG, searched recursively, sorted by path), LR made by
 * MATLAB bicubic downsampling (or read from a parallel LR folder), decoded once and kept in memory
 * when that fits, decoded on use otherwise.
 */
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative, extname } from 'node:path';
import { readImage, imageSize } from '../io/image.js';
import { readBytes } from '../io/files.js';
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

/** 'WxH' (e.g. '88x104') as [width, height]. */
export function parseSize(text: string | undefined, option = '--hr_crop'): [number, number] | undefined {
  if (!text) return undefined;
  const m = /^(\d+)x(\d+)$/.exec(text);
  if (!m || !Number(m[1]) || !Number(m[2]))
    throw new Error(`${option} '${text}' must look like 88x104 (width x height)`);
  return [Number(m[1]), Number(m[2])];
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
  if (!existsSync(root)) throw new Error(`dataset folder ${root} does not exist`);
  if (!statSync(root).isDirectory()) throw new Error(`dataset folder ${root} is a file, not a folder`);
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

function centreCrop(
  data: Uint8Array,
  w: number,
  h: number,
  c: number,
  cw: number,
  ch: number,
  file: string,
): Uint8Array {
  if (cw > w || ch > h) throw new Error(`${file}: ${w}x${h} is smaller than the HR crop ${cw}x${ch}`);
  const x0 = Math.floor((w - cw) / 2);
  const y0 = Math.floor((h - ch) / 2);
  const out = new Uint8Array(cw * ch * c);
  for (let y = 0; y < ch; y++)
    out.set(data.subarray(((y0 + y) * w + x0) * c, ((y0 + y) * w + x0 + cw) * c), y * cw * c);
  return out;
}

function rgbOf(path: string): { data: Uint8Array; width: number; height: number } {
  const img = readImage(path);
  if (img.channels === 3) return img;
  const rgb = new Uint8Array(img.width * img.height * 3);
  for (let i = 0; i < img.width * img.height; i++) rgb.set(img.data.subarray(4 * i, 4 * i + 3), 3 * i);
  return { data: rgb, width: img.width, height: img.height };
}

/** The HR size after the centre crop, the resize and the crop to multiples of the scale. */
function hrGeometry(width: number, height: number, o: DatasetOptions, file: string): { w: number; h: number } {
  if (o.hrCrop) {
    if (o.hrCrop[0] > width || o.hrCrop[1] > height)
      throw new Error(`${file}: ${width}x${height} is smaller than the HR crop ${o.hrCrop[0]}x${o.hrCrop[1]}`);
    [width, height] = o.hrCrop;
  }
  if (o.hrSize) [width, height] = o.hrSize;
  const w = Math.floor(width / o.scale) * o.scale;
  const h = Math.floor(height / o.scale) * o.scale;
  if (!w || !h) throw new Error(`${file}: ${width}x${height} is smaller than the scale ${o.scale}`);
  return { w, h };
}

function decodePair(root: string, file: string, o: DatasetOptions, noteCrop: (m: string) => void): FacePair {
  const s = o.scale;
  let { data, width, height } = rgbOf(file);
  if (o.hrCrop) {
    data = centreCrop(data, width, height, 3, o.hrCrop[0], o.hrCrop[1], file);
    [width, height] = o.hrCrop;
  }
  if (o.hrSize && (width !== o.hrSize[0] || height !== o.hrSize[1])) {
    data = Uint8Array.from(imresizeTo(data, height, width, 3, o.hrSize[1], o.hrSize[0], o.rounding ?? 'matlab').data);
    [width, height] = o.hrSize;
  }
  const { w, h } = hrGeometry(width, height, { ...o, hrCrop: undefined, hrSize: undefined }, file);
  if (w !== width || h !== height) {
    noteCrop(
      `HR images whose sides are not multiples of ${s} are cropped to the top-left block (e.g. ${file}: ` +
        `${width}x${height} -> ${w}x${h})`,
    );
    data = topLeft(data, width, w, h);
  }
  const name = relative(root, file);
  let lr: Uint8Array;
  if (o.lrRoot) {
    const lrFile = join(o.lrRoot, name);
    const img = rgbOf(lrFile);
    if (img.width * s !== w || img.height * s !== h)
      throw new Error(`${lrFile}: LR ${img.width}x${img.height} does not match HR ${w}x${h} at x${s}`);
    lr = img.data;
  } else {
    lr = Uint8Array.from(imresize(data, h, w, 3, 1, s, o.rounding ?? 'matlab').data);
  }
  return { name, hr: data, hrWidth: w, hrHeight: h, lr, lrWidth: w / s, lrHeight: h / s };
}

/** Decoded datasets up to this many bytes stay in memory; larger ones are decoded as used. */
export const DEFAULT_MEMORY_BUDGET = 2 ** 31;

/**
 * Decodes, crops and downsamples every file once and keeps the pixels in memory; when the
 * decoded set would pass `memoryBudget` bytes (sizes come from the file headers), the pairs are
 * decoded when used instead, with the most recent ones cached. Errors name the file.
 */
export function loadPairs(
  root: string,
  files: readonly string[],
  o: DatasetOptions,
  memoryBudget = DEFAULT_MEMORY_BUDGET,
): FacePair[] {
  let cropNoted = false;
  const noteCrop = (m: string) => {
    if (!cropNoted) o.log?.(m);
    cropNoted = true;
  };
  const geometry = files.map((file) => {
    const size = imageSize(readBytes(file));
    if (!size) throw new Error(`${file}: cannot decode image: not a PNG or JPEG file`);
    return hrGeometry(size.width, size.height, o, file);
  });
  const bytes = geometry.reduce((n, g) => n + g.w * g.h * 3 * (1 + 1 / (o.scale * o.scale)), 0);
  if (bytes <= memoryBudget) return files.map((file) => decodePair(root, file, o, noteCrop));
  const cacheSize = Math.max(64, Math.floor((memoryBudget / bytes) * files.length));
  o.log?.(
    `the decoded dataset would take ${(bytes / 2 ** 30).toFixed(1)} GiB: decoding images as they are used (cache of ` +
      `${cacheSize})`,
  );
  const cache = new Map<string, FacePair>();
  const decoded = (file: string): FacePair => {
    let pair = cache.get(file);
    if (pair) cache.delete(file);
    else pair = decodePair(root, file, o, noteCrop);
    cache.set(file, pair);
    if (cache.size > cacheSize) cache.delete(cache.keys().next().value as string);
    return pair;
  };
  return files.map((file, i) => {
    const { w, h } = geometry[i];
    return {
      name: relative(root, file),
      hrWidth: w,
      hrHeight: h,
      lrWidth: w / o.scale,
      lrHeight: h / o.scale,
      get hr() {
        return decoded(file).hr;
      },
      get lr() {
        return decoded(file).lr;
      },
    };
  });
}

function topLeft(data: Uint8Array, width: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) out.set(data.subarray(y * width * 3, (y * width + w) * 3), y * w * 3);
  return out;
}
