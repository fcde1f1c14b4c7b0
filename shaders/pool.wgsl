// Max and average pooling over K x K windows, NCHW, any stride, zero padding per side: forward
// and backward.
//
// Math:     window (y, x) covers input rows y*stride - pad_y .. + K-1 and columns x*stride - pad_x .. + K-1.
//           max: out = the largest in-bounds value (padded cells never win); with `save_argmax`,
//                argmax = iy * W + ix of the first largest in row-major window order (ties: the
//                first), an exact integer in f32 (the host keeps H * W <= 2^24).
//           avg: out = the mean of the in-bounds cells (padded cells are not counted: TensorFlow's
//                padded average pooling); every window holds one, as each padding is below K.
//           backward, per input cell (iy, ix): dx = sum over the windows that cover it of
//                max: g where argmax is this cell; avg: g / (the window's in-bounds count).
// Tiling:   one invocation per output value (forward) or input value (backward, a gather over the
//           at most ceil(K / stride)^2 covering windows: no atomics, each dx written once).
// Dispatch: ceil(n / 64) workgroups of 64, folded past the per-dimension limit (n: B*C*Hout*Wout
//           forward, B*C*H*W backward).

struct Pool {
  n: u32, h: u32, w: u32, hout: u32,
  wout: u32, k: u32, stride: u32, pad_y: u32,
  pad_x: u32, mode: u32, save_argmax: u32,
}

// `mode`'s codes.
const MODE_MAX: u32 = 0u;
const MODE_AVG: u32 = 1u;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read_write> argmax: array<f32>;
@group(0) @binding(2) var<storage, read> argmax_in: array<f32>;
@group(0) @binding(3) var<uniform> p: Pool;

// @include flat

// The in-bounds span [first, last] of window position o along an axis of n cells.
fn span(o: u32, n: u32, pad: u32) -> vec2i {
  let start = i32(o * p.stride) - i32(pad);
  return vec2i(max(start, 0), min(start + i32(p.k), i32(n)) - 1);
}

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i >= p.n) { return; }
  let ox = i % p.wout;
  let oy = (i / p.wout) % p.hout;
  let plane = i / (p.wout * p.hout) * p.h * p.w;
  let ys = span(oy, p.h, p.pad_y);
  let xs = span(ox, p.w, p.pad_x);
  var best = inp[plane + u32(ys.x) * p.w + u32(xs.x)];
  var at = ys.x * i32(p.w) + xs.x;
  var sum = 0.0;
  for (var iy = ys.x; iy <= ys.y; iy++) {
    for (var ix = xs.x; ix <= xs.y; ix++) {
      let v = inp[plane + u32(iy) * p.w + u32(ix)];
      sum += v;
      if (v > best) {
        best = v;
        at = iy * i32(p.w) + ix;
      }
    }
  }
  if (p.mode == MODE_MAX) {
    out[i] = best;
    if (p.save_argmax != 0u) { argmax[i] = f32(at); }
  } else {
    out[i] = sum / f32((ys.y - ys.x + 1) * (xs.y - xs.x + 1));
  }
}

// The window positions along an axis that cover input cell c: [first, last] (empty if first > last).
fn covering(c: u32, nout: u32, pad: u32) -> vec2i {
  let v = i32(c + pad);
  let first = max(v - i32(p.k) + i32(p.stride), 0) / i32(p.stride);
  return vec2i(first, min(v / i32(p.stride), i32(nout) - 1));
}

// out is dx [B, C, H, W]; inp is g [B, C, Hout, Wout].
@compute @workgroup_size(64)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i >= p.n) { return; }
  let ix = i % p.w;
  let iy = (i / p.w) % p.h;
  let plane = i / (p.w * p.h) * p.hout * p.wout;
  let ys = covering(iy, p.hout, p.pad_y);
  let xs = covering(ix, p.wout, p.pad_x);
  let me = f32(iy * p.w + ix);
  var s = 0.0;
  for (var oy = ys.x; oy <= ys.y; oy++) {
    for (var ox = xs.x; ox <= xs.y; ox++) {
      let o = plane + u32(oy) * p.wout + u32(ox);
      if (p.mode == MODE_MAX) {
        if (argmax_in[o] == me) { s += inp[o]; }
      } else {
        let ry = span(u32(oy), p.h, p.pad_y);
        let rx = span(u32(ox), p.w, p.pad_x);
        s += inp[o] / f32((ry.y - ry.x + 1) * (rx.y - rx.x + 1));
      }
    }
  }
  out[i] = s;
}
