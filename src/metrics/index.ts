/**
 * PSNR and SSIM on uint8 images (HWC, RGB), in float64, as the canonical definitions in
 * `../shared/fixtures/metrics/README.md`: border crop first; MSE over all pixels and channels;
 * Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 (BT.601, not rounded unless asked); SSIM of
 * Wang et al. 2004 (11x11 Gaussian, sigma 1.5, 'valid' window, C1 = (0.01*255)^2, C2 = (0.03*255)^2),
 * RGB SSIM = mean of the per-channel values.
 */
export interface MetricImage {
  width: number;
  height: number;
  channels: number;
  data: ArrayLike<number>;
}

export interface MetricOptions {
  /** Pixels removed from every side first (the official SISN evaluation uses 6 + scale). */
  border?: number;
  /** Compare on the Y channel instead of RGB. */
  y?: boolean;
  /** Round Y to integers (MATLAB rgb2ycbcr on uint8). */
  roundY?: boolean;
}

/** The planes compared: cropped RGB channels, or one Y plane. */
function planes(img: MetricImage, o: MetricOptions): { h: number; w: number; planes: Float64Array[] } {
  const b = o.border ?? 0;
  const h = img.height - 2 * b;
  const w = img.width - 2 * b;
  if (h <= 0 || w <= 0) throw new Error(`border ${b} leaves nothing of a ${img.width}x${img.height} image`);
  const c = img.channels;
  const at = (y: number, x: number, ch: number) => img.data[((y + b) * img.width + x + b) * c + ch];
  if (o.y) {
    const p = new Float64Array(h * w);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const v = 16 + (65.481 * at(y, x, 0) + 128.553 * at(y, x, 1) + 24.966 * at(y, x, 2)) / 255;
        p[y * w + x] = o.roundY ? Math.floor(v + 0.5) : v;
      }
    return { h, w, planes: [p] };
  }
  return {
    h,
    w,
    planes: [0, 1, 2].map((ch) => {
      const p = new Float64Array(h * w);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) p[y * w + x] = at(y, x, ch);
      return p;
    }),
  };
}

function checkPair(a: MetricImage, b: MetricImage): void {
  if (a.width !== b.width || a.height !== b.height)
    throw new Error(`images differ in size: ${a.width}x${a.height} vs ${b.width}x${b.height}`);
  if (a.channels < 3 || b.channels < 3) throw new Error('metrics need RGB images');
}

export function mse(a: MetricImage, b: MetricImage, o: MetricOptions = {}): number {
  checkPair(a, b);
  const pa = planes(a, o).planes;
  const pb = planes(b, o).planes;
  let s = 0;
  let n = 0;
  pa.forEach((p, k) => {
    for (let i = 0; i < p.length; i++) s += (p[i] - pb[k][i]) ** 2;
    n += p.length;
  });
  return s / n;
}

/** PSNR in dB (Infinity for identical images). */
export function psnr(a: MetricImage, b: MetricImage, o: MetricOptions = {}): number {
  const m = mse(a, b, o);
  return m === 0 ? Infinity : 10 * Math.log10((255 * 255) / m);
}

const WINDOW = (() => {
  const g = Array.from({ length: 11 }, (_, i) => Math.exp(-((i - 5) ** 2) / (2 * 1.5 * 1.5)));
  const s = g.reduce((x, y) => x + y, 0);
  return g.map((v) => v / s); // separable: w(i, j) = g(i) g(j)
})();

/** 'valid' 11x11 Gaussian filtering, separably. */
function filterValid(p: Float64Array, h: number, w: number): Float64Array {
  const oh = h - 10;
  const ow = w - 10;
  const tmp = new Float64Array(oh * w);
  for (let y = 0; y < oh; y++)
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let k = 0; k < 11; k++) s += WINDOW[k] * p[(y + k) * w + x];
      tmp[y * w + x] = s;
    }
  const out = new Float64Array(oh * ow);
  for (let y = 0; y < oh; y++)
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let k = 0; k < 11; k++) s += WINDOW[k] * tmp[y * w + x + k];
      out[y * ow + x] = s;
    }
  return out;
}

function ssimPlane(x: Float64Array, y: Float64Array, h: number, w: number): number {
  if (h < 11 || w < 11) throw new Error(`SSIM needs at least 11x11 pixels, got ${w}x${h}`);
  const C1 = (0.01 * 255) ** 2;
  const C2 = (0.03 * 255) ** 2;
  const mx = filterValid(x, h, w);
  const my = filterValid(y, h, w);
  const sxx = filterValid(
    x.map((v) => v * v),
    h,
    w,
  );
  const syy = filterValid(
    y.map((v) => v * v),
    h,
    w,
  );
  const sxy = filterValid(
    x.map((v, i) => v * y[i]),
    h,
    w,
  );
  let total = 0;
  for (let i = 0; i < mx.length; i++) {
    const vx = sxx[i] - mx[i] ** 2;
    const vy = syy[i] - my[i] ** 2;
    const cxy = sxy[i] - mx[i] * my[i];
    total += ((2 * mx[i] * my[i] + C1) * (2 * cxy + C2)) / ((mx[i] ** 2 + my[i] ** 2 + C1) * (vx + vy + C2));
  }
  return total / mx.length;
}

/** SSIM (mean of the per-channel values for RGB). */
export function ssim(a: MetricImage, b: MetricImage, o: MetricOptions = {}): number {
  checkPair(a, b);
  const pa = planes(a, o);
  const pb = planes(b, o);
  const values = pa.planes.map((p, k) => ssimPlane(p, pb.planes[k], pa.h, pa.w));
  return values.reduce((s, v) => s + v, 0) / values.length;
}
