// Per-channel reductions over NCHW tensors viewed as [batch, channels, inner].
//
// Math:     out[c] = scale * sum_{b < batch, i < inner} f(b, c, i), idx = (b * channels + c) * inner + i, with
//           MODE 0: x[idx]                 (bias gradient, BN mean, global average pooling)
//           MODE 1: x[idx] * y[idx]        (per-channel dot products)
//           MODE 2: |x[idx] - y[idx]|      (L1 loss, channels = 1)
//           MODE 3: (x[idx] - m[c])^2      (BN variance around the mean)
//           MODE 4: x[idx] * (y[idx] - m[c]) (BN backward: gradient times centred input)
//           Unused operands are bound to x by the host.
// Tiling:   one workgroup per channel; for each sample its 64 lanes stride over the channel's
//           plane, a vec4 at a time when inner % 4 == 0, then a tree reduction in workgroup memory
//           (barriers between levels).
// Dispatch: `channels` workgroups, folded into (x, y) past 65,535.

struct Reduce { batch: u32, channels: u32, inner: u32, scale: f32 }

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> y: array<vec4f>;
@group(0) @binding(3) var<storage, read> m: array<f32>;
@group(0) @binding(4) var<uniform> p: Reduce;

override MODE: u32 = 0u;
const LANES: u32 = 64u;
var<workgroup> partial: array<f32, 64>;

// The term of four consecutive elements: u, v are x and y there, mc the channel's centre.
fn term(u: vec4f, v: vec4f, mc: f32) -> vec4f {
  switch MODE {
    case 0u: { return u; }
    case 1u: { return u * v; }
    case 2u: { return abs(u - v); }
    case 3u: { let d = u - mc; return d * d; }
    default: { return u * (v - mc); }
  }
}

fn scalar(a: ptr<storage, array<vec4f>, read>, e: u32) -> f32 {
  return (*a)[e / 4u][e % 4u];
}

@compute @workgroup_size(64)
fn channel_sum(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x + wid.y * nwg.x;
  if (c >= p.channels) { return; }
  // MODE 3 and 4 centre on m[c]; the other modes never read m (bound to x by the host).
  var mc = 0.0;
  if (MODE >= 3u) { mc = m[c]; }
  var acc = vec4f(0.0);
  for (var b = 0u; b < p.batch; b++) {
    let start = (b * p.channels + c) * p.inner;
    if (p.inner % 4u == 0u) {
      for (var i = 4u * lid; i < p.inner; i += 4u * LANES) {
        let e = (start + i) / 4u;
        acc += term(x[e], y[e], mc);
      }
    } else {
      for (var i = lid; i < p.inner; i += LANES) {
        let e = start + i;
        acc.x += term(vec4f(scalar(&x, e)), vec4f(scalar(&y, e)), mc).x;
      }
    }
  }
  partial[lid] = acc.x + acc.y + acc.z + acc.w;
  workgroupBarrier();
  for (var width = LANES / 2u; width > 0u; width = width / 2u) {
    if (lid < width) { partial[lid] = partial[lid] + partial[lid + width]; }
    workgroupBarrier();
  }
  if (lid == 0u) { out[c] = partial[0] * p.scale; }
}
