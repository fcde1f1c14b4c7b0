// Per-channel reductions over NCHW tensors viewed as [batch, channels, inner].
//
// Math:     out[c] = scale * sum_{b < batch, i < inner} f(b, c, i), idx = (b * channels + c) * inner + i, with
//           MODE 0: x[idx]                 (bias gradient, BN mean, global average pooling)
//           MODE 1: x[idx] * y[idx]        (per-channel dot products)
//           MODE 2: |x[idx] - y[idx]|      (L1 loss, channels = 1)
//           MODE 3: (x[idx] - m[c])^2      (BN variance around the mean)
//           MODE 4: x[idx] * (y[idx] - m[c]) (BN backward: gradient times centred input)
//           Unused operands are bound to x by the host.
// Tiling:   one workgroup per channel; 64 lanes stride over the batch*inner terms, then a tree
//           reduction in workgroup memory (barriers between levels).
// Dispatch: `channels` workgroups, folded into (x, y) past 65,535.

struct Reduce { batch: u32, channels: u32, inner: u32, scale: f32 }

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> m: array<f32>;
@group(0) @binding(4) var<uniform> p: Reduce;

override MODE: u32 = 0u;
const LANES: u32 = 64u;
var<workgroup> partial: array<f32, 64>;

fn term(idx: u32, c: u32) -> f32 {
  switch MODE {
    case 0u: { return x[idx]; }
    case 1u: { return x[idx] * y[idx]; }
    case 2u: { return abs(x[idx] - y[idx]); }
    case 3u: { let d = x[idx] - m[c]; return d * d; }
    default: { return x[idx] * (y[idx] - m[c]); }
  }
}

@compute @workgroup_size(64)
fn channel_sum(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x + wid.y * nwg.x;
  if (c >= p.channels) { return; }
  let total = p.batch * p.inner;
  var acc = 0.0;
  for (var k = lid; k < total; k += LANES) {
    let b = k / p.inner;
    let i = k - b * p.inner;
    acc += term((b * p.channels + c) * p.inner + i, c);
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var width = LANES / 2u; width > 0u; width = width / 2u) {
    if (lid < width) { partial[lid] = partial[lid] + partial[lid + width]; }
    workgroupBarrier();
  }
  if (lid == 0u) { out[c] = partial[0] * p.scale; }
}
