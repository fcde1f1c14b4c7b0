// CPU reference implementations (float64) of every op, written from the PyTorch definitions.
// Arrays are flat, row-major; shapes are [B, C, H, W] unless said otherwise.

/** @typedef {ArrayLike<number>} Numbers a flat array of values (typed or plain) */

/**
 * A convolution (stride 1) of x by w ([O, C/groups, K, K]) with an optional bias, zero-padded by `pad`.
 * @param {Numbers} x
 * @param {number[]} xShape [B, C, H, W]
 * @param {Numbers} w
 * @param {number[]} wShape [O, C/groups, K]
 * @param {Numbers | null | undefined} bias
 * @param {number} pad
 * @param {number} groups
 */
export function conv2d(x, [B, C, H, W], w, [O, Cg, K], bias, pad, groups) {
  const Ho = H + 2 * pad - K + 1;
  const Wo = W + 2 * pad - K + 1;
  const Og = O / groups;
  const out = new Float64Array(B * O * Ho * Wo);
  for (let b = 0; b < B; b++)
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / Og);
      for (let y = 0; y < Ho; y++)
        for (let xo = 0; xo < Wo; xo++) {
          let acc = bias ? bias[o] : 0;
          for (let i = 0; i < Cg; i++)
            for (let ky = 0; ky < K; ky++) {
              const iy = y + ky - pad;
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < K; kx++) {
                const ix = xo + kx - pad;
                if (ix < 0 || ix >= W) continue;
                acc += w[((o * Cg + i) * K + ky) * K + kx] * x[((b * C + g * Cg + i) * H + iy) * W + ix];
              }
            }
          out[((b * O + o) * Ho + y) * Wo + xo] = acc;
        }
    }
  return out;
}

/**
 * The weight gradient of conv2d: dw[o,i,ky,kx] = sum over b, y, x of dout[b,o,y,x] * x[b, g*Cg+i, y+ky-pad, x+kx-pad].
 * @param {Numbers} x
 * @param {number[]} xShape [B, C, H, W]
 * @param {Numbers} dout
 * @param {number[]} wShape [O, C/groups, K]
 * @param {number} pad
 * @param {number} groups
 */
export function conv2dWeightGrad(x, [B, C, H, W], dout, [O, Cg, K], pad, groups) {
  const Ho = H + 2 * pad - K + 1;
  const Wo = W + 2 * pad - K + 1;
  const Og = O / groups;
  const dw = new Float64Array(O * Cg * K * K);
  for (let o = 0; o < O; o++) {
    const g = Math.floor(o / Og);
    for (let i = 0; i < Cg; i++)
      for (let ky = 0; ky < K; ky++)
        for (let kx = 0; kx < K; kx++) {
          let acc = 0;
          for (let b = 0; b < B; b++)
            for (let y = 0; y < Ho; y++) {
              const iy = y + ky - pad;
              if (iy < 0 || iy >= H) continue;
              for (let xo = 0; xo < Wo; xo++) {
                const ix = xo + kx - pad;
                if (ix >= 0 && ix < W)
                  acc += dout[((b * O + o) * Ho + y) * Wo + xo] * x[((b * C + g * Cg + i) * H + iy) * W + ix];
              }
            }
          dw[((o * Cg + i) * K + ky) * K + kx] = acc;
        }
  }
  return dw;
}

/**
 * Returns the output, the batch mean and the biased batch variance (training) or uses running stats.
 * @param {Numbers} x
 * @param {number[]} shape [B, C, H, W]
 * @param {Numbers} gamma
 * @param {Numbers} beta
 * @param {{ training: boolean, runningMean?: Numbers, runningVar?: Numbers, eps?: number }} options
 */
export function batchNorm(x, [B, C, H, W], gamma, beta, { training, runningMean, runningVar, eps = 1e-5 }) {
  const M = B * H * W;
  const mean = new Float64Array(C);
  const variance = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    if (training) {
      let s = 0;
      for (let b = 0; b < B; b++) for (let i = 0; i < H * W; i++) s += x[(b * C + c) * H * W + i];
      mean[c] = s / M;
      let v = 0;
      for (let b = 0; b < B; b++) for (let i = 0; i < H * W; i++) v += (x[(b * C + c) * H * W + i] - mean[c]) ** 2;
      variance[c] = v / M;
    } else {
      if (!runningMean || !runningVar) throw new Error('batchNorm: evaluation needs runningMean and runningVar');
      mean[c] = runningMean[c];
      variance[c] = runningVar[c];
    }
  }
  const out = new Float64Array(x.length);
  for (let j = 0; j < x.length; j++) {
    const c = Math.floor(j / (H * W)) % C;
    out[j] = ((x[j] - mean[c]) / Math.sqrt(variance[c] + eps)) * gamma[c] + beta[c];
  }
  return { out, mean, variance };
}

/** @param {Float64Array} x */
export const relu = (x) => x.map((v) => Math.max(v, 0));

/**
 * @param {Numbers} x
 * @param {number[]} shape [B, C*r*r, H, W]
 * @param {number} r
 */
export function pixelShuffle(x, [B, Cr, H, W], r) {
  const C = Cr / (r * r);
  const out = new Float64Array(x.length);
  for (let b = 0; b < B; b++)
    for (let c = 0; c < C; c++)
      for (let y = 0; y < H * r; y++)
        for (let xx = 0; xx < W * r; xx++) {
          const src = ((b * Cr + c * r * r + (y % r) * r + (xx % r)) * H + Math.floor(y / r)) * W + Math.floor(xx / r);
          out[((b * C + c) * H * r + y) * W * r + xx] = x[src];
        }
  return out;
}

/**
 * PyTorch: x.view(n, c, h/s, s, w/s, s).permute(0, 3, 5, 1, 2, 4).reshape(n, s*s*c, h/s, w/s).
 * @param {Numbers} x
 * @param {number[]} shape [B, C, H, W]
 * @param {number} s
 */
export function spaceToDepth(x, [B, C, H, W], s) {
  const h = H / s;
  const w = W / s;
  const out = new Float64Array(x.length);
  let k = 0;
  for (let b = 0; b < B; b++)
    for (let dy = 0; dy < s; dy++)
      for (let dx = 0; dx < s; dx++)
        for (let c = 0; c < C; c++)
          for (let y = 0; y < h; y++)
            for (let xx = 0; xx < w; xx++) out[k++] = x[((b * C + c) * H + y * s + dy) * W + xx * s + dx];
  return out;
}

/**
 * @param {Numbers} x
 * @param {number[]} shape [B, C, H, W]
 * @param {number} s
 */
export function upsampleNearest(x, [B, C, H, W], s) {
  const out = new Float64Array(x.length * s * s);
  for (let p = 0; p < B * C; p++)
    for (let y = 0; y < H * s; y++)
      for (let xx = 0; xx < W * s; xx++)
        out[(p * H * s + y) * W * s + xx] = x[(p * H + Math.floor(y / s)) * W + Math.floor(xx / s)];
  return out;
}

/**
 * Sums the R chunks of the channels: out[b, c] = sum over k of x[b, k*C + c].
 * @param {Numbers} x
 * @param {number[]} shape [B, R*C, H, W]
 * @param {number} R
 */
export function chunkSum(x, [B, RC, H, W], R) {
  const C = RC / R;
  const out = new Float64Array(B * C * H * W);
  for (let b = 0; b < B; b++)
    for (let k = 0; k < R; k++)
      for (let c = 0; c < C; c++)
        for (let i = 0; i < H * W; i++) out[(b * C + c) * H * W + i] += x[((b * R + k) * C + c) * H * W + i];
  return out;
}

/**
 * Scales each (batch, channel) plane of x by its entry of a ([B*C]).
 * @param {Numbers} a
 * @param {Float64Array} x
 * @param {number[]} shape [B, C, H, W]
 */
export function scaleChannels(a, x, [, , H, W]) {
  return x.map((v, j) => v * a[Math.floor(j / (H * W))]);
}

/**
 * @param {Numbers} x
 * @param {number[]} shape [B, C, H, W]
 */
export function globalAvgPool(x, [B, C, H, W]) {
  const out = new Float64Array(B * C);
  for (let p = 0; p < B * C; p++) {
    let s = 0;
    for (let i = 0; i < H * W; i++) s += x[p * H * W + i];
    out[p] = s / (H * W);
  }
  return out;
}

/**
 * The softmax over the R chunks of each channel.
 * @param {Numbers} x
 * @param {number[]} shape [B, R*C]
 * @param {number} R
 */
export function radixSoftmax(x, [B, RC], R) {
  const C = RC / R;
  const out = new Float64Array(x.length);
  for (let b = 0; b < B; b++)
    for (let c = 0; c < C; c++) {
      const idx = Array.from({ length: R }, (_, k) => b * RC + k * C + c);
      const mx = Math.max(...idx.map((i) => x[i]));
      const e = idx.map((i) => Math.exp(x[i] - mx));
      const total = e.reduce((s, v) => s + v, 0);
      idx.forEach((i, k) => (out[i] = e[k] / total));
    }
  return out;
}

/**
 * The mean absolute difference.
 * @param {Numbers} pred
 * @param {Numbers} target
 */
export function l1(pred, target) {
  let s = 0;
  for (let i = 0; i < pred.length; i++) s += Math.abs(pred[i] - target[i]);
  return s / pred.length;
}

/**
 * torch.optim.Adam's update, in float32 arithmetic as PyTorch does it on float tensors; updates p, m and v in place.
 * @param {number[] | Float32Array | Float64Array} p
 * @param {Numbers} g
 * @param {number[] | Float32Array | Float64Array} m
 * @param {number[] | Float32Array | Float64Array} v
 * @param {number} step
 * @param {{ lr: number, beta1?: number, beta2?: number, eps?: number }} options
 */
export function adamStep(p, g, m, v, step, { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8 }) {
  const f = Math.fround;
  const stepSize = lr / (1 - beta1 ** step);
  const bc2 = Math.sqrt(1 - beta2 ** step);
  for (let i = 0; i < p.length; i++) {
    m[i] = f(f(m[i] * f(beta1)) + f(g[i] * f(1 - beta1)));
    v[i] = f(f(v[i] * f(beta2)) + f(f(f(1 - beta2) * g[i]) * g[i]));
    const denom = f(f(f(Math.sqrt(v[i])) / f(bc2)) + f(eps));
    p[i] = f(p[i] - f(f(stepSize) * f(m[i] / denom)));
  }
}

/**
 * The input gradient of conv2d: dx[b,c,iy,ix] = sum over o of c's group, ky, kx of dout[b,o,iy-ky+pad,ix-kx+pad] *
 * w[o,i,ky,kx].
 * @param {Numbers} dout
 * @param {number[]} xShape [B, C, H, W]
 * @param {Numbers} w
 * @param {number[]} wShape [O, C/groups, K]
 * @param {number} pad
 * @param {number} groups
 */
export function conv2dInputGrad(dout, [B, C, H, W], w, [O, Cg, K], pad, groups) {
  const Ho = H + 2 * pad - K + 1;
  const Wo = W + 2 * pad - K + 1;
  const Og = O / groups;
  const dx = new Float64Array(B * C * H * W);
  for (let b = 0; b < B; b++)
    for (let c = 0; c < C; c++) {
      const g = Math.floor(c / Cg);
      const i = c % Cg;
      for (let iy = 0; iy < H; iy++)
        for (let ix = 0; ix < W; ix++) {
          let acc = 0;
          for (let o = g * Og; o < (g + 1) * Og; o++)
            for (let ky = 0; ky < K; ky++) {
              const y = iy - ky + pad;
              if (y < 0 || y >= Ho) continue;
              for (let kx = 0; kx < K; kx++) {
                const xo = ix - kx + pad;
                if (xo >= 0 && xo < Wo)
                  acc += dout[((b * O + o) * Ho + y) * Wo + xo] * w[((o * Cg + i) * K + ky) * K + kx];
              }
            }
          dx[((b * C + c) * H + iy) * W + ix] = acc;
        }
    }
  return dx;
}
