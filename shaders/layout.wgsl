// Data movement between layouts; every kernel is a gather (or a scatter through a permutation),
// so none needs atomics.
//
// Math:
//   space_shuffle: an image [B, C, H, W] and a packed tensor [B, C*s*s, H/s, W/s] with
//     ORDER 0 (PyTorch pixel_shuffle):  packed channel c*s*s + dy*s + dx
//     ORDER 1 (SISN head, view(n,c,h/s,s,w/s,s).permute(0,3,5,1,2,4)): packed channel (dy*s + dx)*C + c
//     holding image[b, c, y*s+dy, x*s+dx] at packed[b, channel, y, x]. to_image = 1 gathers the image
//     from the packed tensor (pixel shuffle; its gradient is the reverse), 0 packs the image.
//   upsample_nearest: out[b,c,Y,X] = x[b,c,Y/s,X/s]; its gradient sums each s*s block.
//   expand_channels: out[j] = a[j / inner] * alpha   (a: [B*C], out: [B, C, inner]; one vec4 per
//     invocation, the last one masked)
// Tiling:   one output element per invocation, 64 per workgroup; space_shuffle: one run of up to 4
//           packed columns of an image row per invocation (n = B*C*H*ceil(W/s/4) runs).
// Dispatch: ceil(n / 64) workgroups, folded past 65,535.

struct Shuffle { n: u32, channels: u32, h: u32, w: u32, s: u32, order: u32, to_image: u32 }
struct Upsample { n: u32, h: u32, w: u32, s: u32 }
struct Channels { n: u32, inner: u32, alpha: f32 }

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<uniform> shuffle_p: Shuffle;
@group(0) @binding(3) var<uniform> up_p: Upsample;
@group(0) @binding(3) var<uniform> chan_p: Channels;

// @include flat

// space_shuffle's channel orders (`order`): pixel shuffle's, and SISN's head's (its space-to-depth).
const ORDER_PIXEL_SHUFFLE: u32 = 0u;
const ORDER_SISN_HEAD: u32 = 1u;

// One invocation per run of up to 4 packed columns (xs) of one image row (b, c, Y): it moves the
// 4*s image elements X = xs*s + dx of that row, reading (or writing) 4 consecutive elements of each
// of the s packed planes dx. The index arithmetic (integer divisions, scalarised by a CPU adapter)
// is done once per run instead of once per element (on a CPU adapter it dominated the move).
@compute @workgroup_size(64)
fn space_shuffle(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  let q = shuffle_p;
  let ws = q.w / q.s;
  let runs = (ws + 3u) / 4u;
  if (i >= q.n) { return; }
  let row = i / runs;
  let xs0 = 4u * (i % runs);
  let Y = row % q.h;
  let c = (row / q.h) % q.channels;
  let b = row / (q.h * q.channels);
  let dy = Y % q.s;
  let ss = q.s * q.s;
  let hs = q.h / q.s;
  let count = min(4u, ws - xs0);
  for (var dx = 0u; dx < q.s; dx++) {
    var pc = c * ss + dy * q.s + dx;
    if (q.order == ORDER_SISN_HEAD) { pc = (dy * q.s + dx) * q.channels + c; }
    let packed = ((b * q.channels * ss + pc) * hs + Y / q.s) * ws + xs0;
    let image = row * q.w + xs0 * q.s + dx;
    for (var k = 0u; k < count; k++) {
      if (q.to_image == 1u) { out[image + k * q.s] = x[packed + k]; } else { out[packed + k] = x[image + k * q.s]; }
    }
  }
}

// up_p.h, up_p.w: the small (input) size.
@compute @workgroup_size(64)
fn upsample_nearest(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i >= up_p.n) { return; }
  let W = up_p.w * up_p.s;
  let H = up_p.h * up_p.s;
  let X = i % W;
  let Y = (i / W) % H;
  let plane = i / (W * H);
  out[i] = x[(plane * up_p.h + Y / up_p.s) * up_p.w + X / up_p.s];
}

@compute @workgroup_size(64)
fn upsample_nearest_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i >= up_p.n) { return; }
  let xs = i % up_p.w;
  let ys = (i / up_p.w) % up_p.h;
  let plane = i / (up_p.w * up_p.h);
  let W = up_p.w * up_p.s;
  var acc = 0.0;
  for (var dy = 0u; dy < up_p.s; dy++) {
    let row = (plane * up_p.h * up_p.s + ys * up_p.s + dy) * W + xs * up_p.s;
    for (var dx = 0u; dx < up_p.s; dx++) { acc += x[row + dx]; }
  }
  out[i] = acc;
}

@group(0) @binding(0) var<storage, read_write> out4: array<vec4f>;

// a's values for the 4 elements of vec4 i (one load when they share a plane: inner % 4 == 0).
fn per_plane(i: u32) -> vec4f {
  if (chan_p.inner % 4u == 0u) { return vec4f(a[4u * i / chan_p.inner]); }
  let q = (vec4u(0u, 1u, 2u, 3u) + 4u * i) / chan_p.inner;
  let last = chan_p.n / chan_p.inner - 1u;
  return vec4f(a[min(q.x, last)], a[min(q.y, last)], a[min(q.z, last)], a[min(q.w, last)]);
}

@compute @workgroup_size(64)
fn expand_channels(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (4u * i >= chan_p.n) { return; }
  store4(&out4, i, chan_p.n, per_plane(i) * chan_p.alpha);
}
