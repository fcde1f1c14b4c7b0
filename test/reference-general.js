// CPU references (float64) of the general ops that recognition networks need: strided and padded
// convolution, pooling, channel padding and concatenation, dense, leaky ReLU, L2 normalisation.
// Written from the TensorFlow / PyTorch definitions. Arrays are flat, row-major; images [B, C, H, W].

/** @typedef {ArrayLike<number>} Numbers a flat array of values (typed or plain) */
/** @typedef {number | readonly number[]} Padding one number for every side, or [top, bottom, left, right] */
/** @typedef {{ stride?: number, padding?: Padding, groups?: number }} ConvOptions */
/** @typedef {{ kernel: number, stride?: number, padding?: Padding }} PoolOptions */

/**
 * [top, bottom, left, right] from a number or a list.
 * @param {Padding} [padding]
 * @returns {number[]}
 */
export function sides(padding = 0) {
  return typeof padding === 'number' ? [padding, padding, padding, padding] : [...padding];
}

/**
 * Output size of a window: floor((n + before + after - k) / stride) + 1.
 * @param {number} n
 * @param {number} k
 * @param {number} stride
 * @param {number} before
 * @param {number} after
 */
export function windowOut(n, k, stride, before, after) {
  return Math.floor((n + before + after - k) / stride) + 1;
}

/**
 * Calls visit(xi, wi, oi) for every product of a convolution with stride, padding per side and
 * groups (input, weight and output flat indices): out[b,o,y,x] += w * x[y*s+ky-top, x*s+kx-left].
 * @param {number[]} xShape [B, C, H, W]
 * @param {number[]} wShape [O, C/groups, K, K]
 * @param {ConvOptions} options
 * @param {(xi: number, wi: number, oi: number) => void} visit
 */
function convTaps([B, C, H, W], [O, Cg, K], { stride = 1, padding = 0, groups = 1 }, visit) {
  const [top, bottom, left, right] = sides(padding);
  const Ho = windowOut(H, K, stride, top, bottom);
  const Wo = windowOut(W, K, stride, left, right);
  const Og = O / groups;
  for (let b = 0; b < B; b++)
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / Og);
      for (let y = 0; y < Ho; y++)
        for (let xo = 0; xo < Wo; xo++)
          for (let i = 0; i < Cg; i++)
            for (let ky = 0; ky < K; ky++) {
              const iy = y * stride + ky - top;
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < K; kx++) {
                const ix = xo * stride + kx - left;
                if (ix < 0 || ix >= W) continue;
                const xi = ((b * C + g * Cg + i) * H + iy) * W + ix;
                visit(xi, ((o * Cg + i) * K + ky) * K + kx, ((b * O + o) * Ho + y) * Wo + xo);
              }
            }
    }
}

/**
 * conv2d with stride, padding per side and groups: out[b,o,y,x] = bias + sum w * x[y*s+ky-top, x*s+kx-left].
 * @param {Numbers} x
 * @param {number[]} xShape
 * @param {Numbers} w
 * @param {number[]} wShape
 * @param {Numbers | null | undefined} bias
 * @param {ConvOptions} [options]
 */
export function conv2d(x, xShape, w, wShape, bias, options = {}) {
  const [O, , K] = wShape;
  const [, , H, W] = xShape;
  const [top, bottom, left, right] = sides(options.padding);
  const plane = windowOut(H, K, options.stride ?? 1, top, bottom) * windowOut(W, K, options.stride ?? 1, left, right);
  const out = new Float64Array(xShape[0] * O * plane);
  if (bias) out.forEach((_, i) => (out[i] = bias[Math.floor(i / plane) % O]));
  convTaps(xShape, wShape, options, (xi, wi, oi) => (out[oi] += w[wi] * x[xi]));
  return out;
}

/**
 * Max or average pooling, per channel; padded cells never win a max and are not counted by the
 * average (TensorFlow's padded average pooling).
 * @param {Numbers} x
 * @param {number[]} shape [B, C, H, W]
 * @param {'max' | 'avg'} mode
 * @param {PoolOptions} options
 */
export function pool2d(x, [B, C, H, W], mode, { kernel: K, stride = 1, padding = 0 }) {
  const [top, bottom, left, right] = sides(padding);
  const Ho = windowOut(H, K, stride, top, bottom);
  const Wo = windowOut(W, K, stride, left, right);
  const out = new Float64Array(B * C * Ho * Wo);
  for (let p = 0; p < B * C; p++)
    for (let y = 0; y < Ho; y++)
      for (let xo = 0; xo < Wo; xo++) {
        let best = -Infinity;
        let sum = 0;
        let count = 0;
        for (let ky = 0; ky < K; ky++)
          for (let kx = 0; kx < K; kx++) {
            const iy = y * stride + ky - top;
            const ix = xo * stride + kx - left;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            const v = x[(p * H + iy) * W + ix];
            best = Math.max(best, v);
            sum += v;
            count++;
          }
        out[(p * Ho + y) * Wo + xo] = mode === 'max' ? best : sum / count;
      }
  return out;
}

/**
 * Zero channels on axis 1: [B, C, ...] -> [B, before + C + after, ...].
 * @param {Numbers} x
 * @param {number[]} shape
 * @param {number} before
 * @param {number} after
 */
export function padChannels(x, [B, C, ...rest], before, after) {
  const inner = rest.reduce((a, b) => a * b, 1);
  const Cout = before + C + after;
  const out = new Float64Array(B * Cout * inner);
  for (let b = 0; b < B; b++)
    for (let c = 0; c < C; c++)
      for (let s = 0; s < inner; s++) out[(b * Cout + before + c) * inner + s] = x[(b * C + c) * inner + s];
  return out;
}

/**
 * Concatenation on axis 1 of [B, C_i, ...] tensors (same B and trailing dims).
 * @param {Numbers[]} xs
 * @param {number[][]} shapes
 */
export function concat(xs, shapes) {
  const [B, , ...rest] = shapes[0];
  const inner = rest.reduce((a, b) => a * b, 1);
  const Cout = shapes.reduce((a, s) => a + s[1], 0);
  const out = new Float64Array(B * Cout * inner);
  let offset = 0;
  xs.forEach((x, k) => {
    const C = shapes[k][1];
    for (let b = 0; b < B; b++)
      for (let c = 0; c < C; c++)
        for (let s = 0; s < inner; s++) out[(b * Cout + offset + c) * inner + s] = x[(b * C + c) * inner + s];
    offset += C;
  });
  return out;
}

/**
 * x [N, In] times w [In, Out] plus bias [Out].
 * @param {Numbers} x
 * @param {Numbers} w
 * @param {Numbers | null | undefined} bias
 * @param {number[]} dims [N, In, Out]
 */
export function dense(x, w, bias, [N, In, Out]) {
  const out = new Float64Array(N * Out);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < Out; o++) {
      let acc = bias ? bias[o] : 0;
      for (let i = 0; i < In; i++) acc += x[n * In + i] * w[i * Out + o];
      out[n * Out + o] = acc;
    }
  return out;
}

/**
 * @param {Numbers} x
 * @param {number} slope
 */
export function leakyRelu(x, slope) {
  return Float64Array.from(x, (v) => (v > 0 ? v : slope * v));
}

/**
 * Each row of x [N, D] divided by sqrt(max(sum of squares, eps)).
 * @param {Numbers} x
 * @param {number[]} shape [N, D]
 * @param {number} [eps]
 */
export function l2Normalize(x, [N, D], eps = 1e-12) {
  const out = new Float64Array(N * D);
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let d = 0; d < D; d++) s += x[n * D + d] ** 2;
    const r = 1 / Math.sqrt(Math.max(s, eps));
    for (let d = 0; d < D; d++) out[n * D + d] = x[n * D + d] * r;
  }
  return out;
}

/**
 * conv2d's input and weight gradients for the output gradient g (the forward's adjoint, scattered).
 * @param {Numbers} x
 * @param {number[]} xShape
 * @param {Numbers} w
 * @param {number[]} wShape
 * @param {Numbers} g
 * @param {ConvOptions} [options]
 */
export function conv2dGrads(x, xShape, w, wShape, g, options = {}) {
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  convTaps(xShape, wShape, options, (xi, wi, oi) => {
    dx[xi] += g[oi] * w[wi];
    dw[wi] += g[oi] * x[xi];
  });
  return { dx, dw };
}
