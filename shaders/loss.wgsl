// Gradient of the L1 loss (the loss itself is reduce.wgsl's channel_sum, MODE_ABS_DIFF, scale 1/n).
//
// Math:     dpred[i] = sign(pred[i] - tgt[i]) * g[0] / n   (sign(0) = 0, as PyTorch)
// Tiling:   one element per invocation, 64 per workgroup.
// Dispatch: ceil(n / 64) workgroups, folded past 65,535.

struct L1 { n: u32, inv_n: f32 }

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> tgt: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<uniform> p: L1;

// @include flat

@compute @workgroup_size(64)
fn l1_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i >= p.n) { return; }
  out[i] = sign(pred[i] - tgt[i]) * g[0] * p.inv_n;
}
