// Batch normalisation over NCHW tensors viewed as [batch, channels, inner] (inner = H*W; 1 for
// pooled [B, C, 1, 1] features).
//
// Math:     normalize:       out = (x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c]
//                            (batch statistics in training, running statistics in eval)
//           update_running:  rm = momentum * mean + (1 - momentum) * rm
//                            rv = momentum * var * M / (M - 1) + (1 - momentum) * rv   (unbiased, M = batch*inner)
//           backward_input:  training: dx = gamma * r / M * (M * g - sum_g[c] - xhat * r * sum_gxc[c]),
//                                      r = 1 / sqrt(var + eps), xhat = (x - mean) * r,
//                                      sum_g = sum g, sum_gxc = sum g * (x - mean)   (from reduce.wgsl)
//                            eval:     dx = g * gamma * r
// Tiling:   one element (or one channel, update_running) per invocation, 64 per workgroup.
// Dispatch: ceil(n / 64) workgroups (ceil(channels / 64) for update_running), folded past 65,535.

struct Norm { n: u32, channels: u32, inner: u32, eps: f32 }
struct Running { channels: u32, momentum: f32, unbias: f32 }
struct Backward { n: u32, channels: u32, inner: u32, eps: f32, count: f32, train: u32 }

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> variance: array<f32>;
@group(0) @binding(4) var<storage, read> gamma: array<f32>;
@group(0) @binding(5) var<storage, read> beta: array<f32>;
@group(0) @binding(6) var<uniform> norm_p: Norm;

fn flat(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * 64u + lid;
}

@compute @workgroup_size(64)
fn normalize(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i >= norm_p.n) { return; }
  let c = (i / norm_p.inner) % norm_p.channels;
  out[i] = (x[i] - mean[c]) / sqrt(variance[c] + norm_p.eps) * gamma[c] + beta[c];
}

@group(0) @binding(0) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(1) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(6) var<uniform> run_p: Running;

@compute @workgroup_size(64)
fn update_running(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = flat(wid, nwg, lid);
  if (c >= run_p.channels) { return; }
  running_mean[c] = run_p.momentum * mean[c] + (1.0 - run_p.momentum) * running_mean[c];
  running_var[c] = run_p.momentum * variance[c] * run_p.unbias + (1.0 - run_p.momentum) * running_var[c];
}

@group(0) @binding(5) var<storage, read> grad: array<f32>;
@group(0) @binding(7) var<storage, read> sum_g: array<f32>;
@group(0) @binding(8) var<storage, read> sum_gxc: array<f32>;
@group(0) @binding(6) var<uniform> back_p: Backward;

@compute @workgroup_size(64)
fn backward_input(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i >= back_p.n) { return; }
  let c = (i / back_p.inner) % back_p.channels;
  let r = 1.0 / sqrt(variance[c] + back_p.eps);
  if (back_p.train == 0u) {
    out[i] = grad[i] * gamma[c] * r;
    return;
  }
  let xhat = (x[i] - mean[c]) * r;
  out[i] = gamma[c] * r / back_p.count * (back_p.count * grad[i] - sum_g[c] - xhat * r * sum_gxc[c]);
}

// gamma_grad: out[c] = sum_gxc[c] / sqrt(var[c] + eps)  (= sum of g * xhat). Uses Norm with n = channels.
@compute @workgroup_size(64)
fn gamma_grad(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = flat(wid, nwg, lid);
  if (c >= norm_p.n) { return; }
  out[c] = sum_gxc[c] / sqrt(variance[c] + norm_p.eps);
}
