/** Training reports: an SVG plot of loss and validation PSNR, and a PNG sheet of faces. */
import { platform } from '../platform/index.js';
import type { FacePair } from '../data/dataset.js';
import { writePng } from '../io/image.js';
import { bicubicUp } from './evaluate.js';

export interface Point {
  step: number;
  value: number;
}

function polyline(points: Point[], x: (s: number) => number, y: (v: number) => number, colour: string): string {
  if (!points.length) return '';
  return (
    `<polyline fill="none" stroke="${colour}" stroke-width="1.5" ` +
    `points="${points.map((p) => `${x(p.step).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ')}"/>`
  );
}

function panel(title: string, points: Point[], colour: string, top: number, maxStep: number): string {
  const left = 60;
  const width = 620;
  const height = 170;
  if (!points.length) return `<text x="${left}" y="${top + 20}" font-size="13">${title}: no data yet</text>`;
  let lo = Math.min(...points.map((p) => p.value));
  let hi = Math.max(...points.map((p) => p.value));
  if (hi === lo) [lo, hi] = [lo - 1, hi + 1];
  const x = (s: number) => left + (width * s) / Math.max(maxStep, 1);
  const y = (v: number) => top + 25 + height - (height * (v - lo)) / (hi - lo);
  const ticks = [lo, (lo + hi) / 2, hi]
    .map((v) => `<text x="${left - 6}" y="${y(v) + 4}" font-size="10" text-anchor="end">${v.toFixed(2)}</text>`)
    .join('');
  return `<text x="${left}" y="${top + 15}" font-size="13" font-weight="bold">${title}</text>
<rect x="${left}" y="${top + 25}" width="${width}" height="${height}" fill="none" stroke="#999"/>${ticks}
<text x="${left + width}" y="${top + height + 40}" font-size="10" text-anchor="end">step ${maxStep}</text>
${polyline(points, x, y, colour)}`;
}

/** Loss (averaged over windows of steps so the curve is readable) and validation PSNR vs step. */
export function writePlot(path: string, losses: Point[], psnrs: Point[], title: string): void {
  const maxStep = Math.max(1, ...losses.map((p) => p.step), ...psnrs.map((p) => p.step));
  const window = Math.max(1, Math.floor(losses.length / 300));
  const smoothed: Point[] = [];
  for (let i = 0; i < losses.length; i += window) {
    const part = losses.slice(i, i + window);
    smoothed.push({ step: part[part.length - 1].step, value: part.reduce((s, p) => s + p.value, 0) / part.length });
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="720" height="470" font-family="sans-serif">
<rect width="720" height="470" fill="white"/>
<text x="360" y="18" font-size="14" text-anchor="middle">${title}</text>
${panel(`training L1 loss${window > 1 ? ` (mean of ${window} steps)` : ''}`, smoothed, '#c0392b', 25, maxStep)}
${panel('validation PSNR (dB, RGB)', psnrs, '#2471a3', 245, maxStep)}
</svg>
`;
  platform.writeFileAtomic(path, new TextEncoder().encode(svg));
}

/** Faces on a sheet are drawn at the integer zoom that makes them about this tall, so a person can see them. */
const SHEET_FACE_HEIGHT = 300;

/**
 * A sheet with one row per face: LR (nearest), bicubic, SISN, HR, each magnified by `zoom` whole
 * pixels (nearest: the pixels as they are, only bigger; default: faces about 300 pixels tall).
 * Returns the zoom.
 */
export function writeSheet(
  path: string,
  pairs: readonly FacePair[],
  outputs: readonly Uint8Array[],
  scale: number,
  zoom?: number,
): number {
  const gap = 8;
  const hrWidth = Math.max(...pairs.map((p) => p.hrWidth));
  const hrHeight = Math.max(...pairs.map((p) => p.hrHeight));
  const z = zoom ?? Math.max(1, Math.round(SHEET_FACE_HEIGHT / hrHeight));
  if (!Number.isInteger(z) || z < 1) throw new Error(`writeSheet: zoom must be a whole number >= 1, not ${zoom}`);
  const [W, H] = [hrWidth * z, hrHeight * z];
  const width = 4 * W + 5 * gap;
  const height = pairs.length * (H + gap) + gap;
  const data = new Uint8Array(width * height * 3).fill(255);
  const put = (img: Uint8Array, w: number, h: number, col: number, row: number) => {
    for (let y = 0; y < h * z; y++)
      for (let x = 0; x < w * z; x++) {
        const from = (Math.floor(y / z) * w + Math.floor(x / z)) * 3;
        const to = ((row * (H + gap) + gap + y) * width + col * (W + gap) + gap + x) * 3;
        for (let c = 0; c < 3; c++) data[to + c] = img[from + c];
      }
  };
  pairs.forEach((p, row) => {
    const nearest = new Uint8Array(p.hrWidth * p.hrHeight * 3);
    for (let y = 0; y < p.hrHeight; y++)
      for (let x = 0; x < p.hrWidth; x++)
        for (let c = 0; c < 3; c++)
          nearest[(y * p.hrWidth + x) * 3 + c] =
            p.lr[(Math.floor(y / scale) * p.lrWidth + Math.floor(x / scale)) * 3 + c];
    put(nearest, p.hrWidth, p.hrHeight, 0, row);
    put(bicubicUp(p, scale), p.hrWidth, p.hrHeight, 1, row);
    put(outputs[row], p.hrWidth, p.hrHeight, 2, row);
    put(p.hr, p.hrWidth, p.hrHeight, 3, row);
  });
  writePng(path, { width, height, channels: 3, data });
  return z;
}
