// Channel windows of [B, C, inner] tensors (inner = H * W, or 1): the copies behind channel
// zero-padding and concatenation and their gradients.
//
// Math:     for channels c in [lo, hi) of out [B, out_c, inner]:
//           out[b, c, s] = src[b, c - offset, s] where 0 <= c - offset < src_c, else 0.
//           padChannels: all of out, offset = before; its gradient (and concat's, per input): out
//           is the input's gradient, src the output's, offset = -(the input's first channel);
//           concat: each input into its own channels [first, first + C) with offset = first.
// Tiling:   one invocation per output value of the window.
// Dispatch: ceil(B * (hi - lo) * inner / 64) workgroups of 64, folded past the per-dimension limit.

struct Window { n: u32, inner: u32, out_c: u32, src_c: u32, lo: u32, hi: u32, offset: i32 }

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<uniform> p: Window;

// @include flat

@compute @workgroup_size(64)
fn copy_window(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i >= p.n) { return; }
  let span = p.hi - p.lo;
  let s = i % p.inner;
  let c = p.lo + (i / p.inner) % span;
  let b = i / (p.inner * span);
  let sc = i32(c) - p.offset;
  let inside = sc >= 0 && sc < i32(p.src_c);
  out[(b * p.out_c + c) * p.inner + s] = select(0.0, src[(b * p.src_c + u32(clamp(sc, 0, i32(p.src_c) - 1))) * p.inner + s], inside);
}
