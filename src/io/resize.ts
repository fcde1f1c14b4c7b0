/**
 * MATLAB `imresize(A, scale, 'bicubic')`, in float64 on the CPU: Keys cubic (a = -0.5), the kernel
 * widened by 1/scale when shrinking (antialiasing), symmetric mirroring that repeats the edge
 * pixel, rows first, then columns. `rounding: 'matlab'` rounds and saturates to uint8 after each
 * pass, as MATLAB does for uint8 images (how MATLAB-made LR sets such as Set5 X2-X4 were made);
 * `'once'` keeps float64 through both passes and rounds at the end (`uint8(imresize(double(A)))`,
 * BasicSR); `'none'` returns the float64 result. (MATLAB resizes the dimension with the stronger
 * reduction first; for equal factors, and in every use here, that is rows first.)
 */

export type Rounding = 'matlab' | 'once' | 'none';

function cubic(t: number): number {
  const a = Math.abs(t);
  if (a <= 1) return 1.5 * a ** 3 - 2.5 * a ** 2 + 1;
  if (a <= 2) return -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2;
  return 0;
}

function mirror(j: number, n: number): number {
  // 0-based symmetric reflection with period 2n that repeats the edge pixel.
  const r = ((j % (2 * n)) + 2 * n) % (2 * n);
  return r < n ? r : 2 * n - 1 - r;
}

/** Taps and normalised weights of one 1-D pass: `num/den` is the scale (2 = enlarge, 1/4 = shrink). */
export function resampleWeights(
  nIn: number,
  num: number,
  den: number,
): { nOut: number; taps: Int32Array[]; weights: Float64Array[] } {
  const scale = num / den;
  const nOut = Math.ceil((nIn * num) / den - 1e-9);
  const width = scale < 1 ? 4 / scale : 4;
  const kernel = scale < 1 ? (t: number) => scale * cubic(scale * t) : cubic;
  const count = Math.ceil(width) + 2;
  const taps: Int32Array[] = [];
  const weights: Float64Array[] = [];
  for (let x = 1; x <= nOut; x++) {
    const u = (x * den) / num + 0.5 * (1 - den / num);
    const left = Math.floor(u - width / 2);
    const t = new Int32Array(count);
    const w = new Float64Array(count);
    let sum = 0;
    for (let k = 0; k < count; k++) {
      const j = left + k;
      w[k] = kernel(u - j);
      sum += w[k];
      t[k] = mirror(j - 1, nIn);
    }
    for (let k = 0; k < count; k++) w[k] /= sum;
    taps.push(t);
    weights.push(w);
  }
  return { nOut, taps, weights };
}

const toU8 = (v: number) => Math.floor(Math.min(Math.max(v, 0), 255) + 0.5);

/**
 * Resizes an interleaved HWC image by `num/den` in both directions. Returns float64 values
 * (already integral unless `rounding` is 'none').
 */
export function imresize(
  src: ArrayLike<number>,
  h: number,
  w: number,
  c: number,
  num: number,
  den: number,
  rounding: Rounding,
): { data: Float64Array; height: number; width: number } {
  return resizeWith(src, w, c, resampleWeights(h, num, den), resampleWeights(w, num, den), rounding);
}

/** MATLAB `imresize(A, [outH outW], 'bicubic')`: each dimension scaled by its own factor out/in. */
export function imresizeTo(
  src: ArrayLike<number>,
  h: number,
  w: number,
  c: number,
  outH: number,
  outW: number,
  rounding: Rounding,
): { data: Float64Array; height: number; width: number } {
  return resizeWith(src, w, c, resampleWeights(h, outH, h), resampleWeights(w, outW, w), rounding);
}

type Pass = ReturnType<typeof resampleWeights>;

function resizeWith(
  src: ArrayLike<number>,
  w: number,
  c: number,
  rows: Pass,
  cols: Pass,
  rounding: Rounding,
): { data: Float64Array; height: number; width: number } {
  const oh = rows.nOut;
  const ow = cols.nOut;
  const passRound = rounding === 'matlab' ? toU8 : (v: number) => v;
  // Rows (H) first.
  const mid = new Float64Array(oh * w * c);
  for (let y = 0; y < oh; y++) {
    const t = rows.taps[y];
    const wt = rows.weights[y];
    for (let x = 0; x < w; x++)
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let k = 0; k < t.length; k++) acc += wt[k] * src[(t[k] * w + x) * c + ch];
        mid[(y * w + x) * c + ch] = passRound(acc);
      }
  }
  const out = new Float64Array(oh * ow * c);
  const finalRound = rounding === 'none' ? (v: number) => v : toU8;
  for (let y = 0; y < oh; y++)
    for (let x = 0; x < ow; x++) {
      const t = cols.taps[x];
      const wt = cols.weights[x];
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let k = 0; k < t.length; k++) acc += wt[k] * mid[(y * w + t[k]) * c + ch];
        out[(y * ow + x) * c + ch] = finalRound(acc);
      }
    }
  return { data: out, height: oh, width: ow };
}

/** Crops an HWC image to its top-left block whose sides are multiples of s (SR datasets' mod-crop). */
export function modCrop(
  src: ArrayLike<number>,
  h: number,
  w: number,
  c: number,
  s: number,
): { data: Uint8Array; height: number; width: number } {
  const oh = Math.floor(h / s) * s;
  const ow = Math.floor(w / s) * s;
  const out = new Uint8Array(oh * ow * c);
  for (let y = 0; y < oh; y++) for (let i = 0; i < ow * c; i++) out[y * ow * c + i] = src[y * w * c + i];
  return { data: out, height: oh, width: ow };
}
