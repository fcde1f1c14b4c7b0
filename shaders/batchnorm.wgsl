// Batch normalisation over NCHW tensors viewed as [batch, channels, inner] (inner = H*W; 1 for
// pooled [B, C, 1, 1] features), with the ReLU and residual add that follow it in SISN fused in.
//
// Math:     normalize:       y = (x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c]
//                            (+ res if has_res) (then max(., 0) if relu)
//                            (batch statistics in training, running statistics in eval)
//           update_running:  rm = momentum * mean + (1 - momentum) * rm
//                            rv = momentum * var * M / (M - 1) + (1 - momentum) * rv   (unbiased, M = batch*inner)
//           backward_input:  dx = A[c] * g + B[c] + D[c] * (x - mean[c]), from backward_coefficients:
//                            training: A = gamma * r, B = -A * sum_g / M, D = -A * r^2 * sum_gxc / M
//                                      (r = 1 / sqrt(var + eps); sum_g = sum g, sum_gxc = sum g * (x - mean),
//                                      from reduce.wgsl); eval: A = gamma * r, B = D = 0.
//                            g is the gradient at the BN output; with `masked` it counts only where
//                            the fused ReLU's output is > 0.
//           gamma_grad:      dgamma[c] = sum_gxc[c] / sqrt(var[c] + eps)
//           fold:            eval-mode BN after a conv (with bias b, if any) as a per-channel affine map
//                            for the conv's epilogue: scale = gamma / sqrt(var + eps),
//                            shift = beta + (b - mean) * scale
// Tiling:   normalize and backward_input: one vec4 per invocation (its 4 elements' channels are
//           computed once when inner % 4 == 0, else per lane); the last vec4 writes only the lanes
//           below n. update_running, gamma_grad: one channel per invocation. 64 per workgroup.
// Dispatch: ceil(n / 256) workgroups (ceil(channels / 64) per channel), folded past 65,535.

struct Norm { n: u32, channels: u32, inner: u32, eps: f32, has_res: u32, relu: u32 }
struct Running { channels: u32, momentum: f32, unbias: f32 }
struct Backward { n: u32, channels: u32, inner: u32, eps: f32, count: f32, train: u32, masked: u32 }
struct Fold { channels: u32, eps: f32, has_bias: u32 }

@group(0) @binding(0) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> variance: array<f32>;
@group(0) @binding(4) var<storage, read> gamma: array<f32>;
@group(0) @binding(5) var<storage, read> beta: array<f32>;
@group(0) @binding(6) var<uniform> norm_p: Norm;
@group(0) @binding(7) var<storage, read> res: array<vec4f>;

// @include flat

// Channels of the 4 elements of vec4 i (one channel for all four when inner % 4 == 0).
fn channels_of(i: u32, inner: u32, channels: u32) -> vec4u {
  if (inner % 4u == 0u) { return vec4u((4u * i / inner) % channels); }
  let e = vec4u(0u, 1u, 2u, 3u) + 4u * i;
  return (e / inner) % channels;
}

// Per-channel values of the 4 elements: one load when they share a channel.
fn gather(values: ptr<storage, array<f32>, read>, c: vec4u) -> vec4f {
  if (all(c == vec4u(c.x))) { return vec4f((*values)[c.x]); }
  return vec4f((*values)[c.x], (*values)[c.y], (*values)[c.z], (*values)[c.w]);
}

@compute @workgroup_size(64)
fn normalize(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  let q = norm_p;
  if (4u * i >= q.n) { return; }
  let c = channels_of(i, q.inner, q.channels);
  var y = (x[i] - gather(&mean, c)) / sqrt(gather(&variance, c) + q.eps) * gather(&gamma, c) + gather(&beta, c);
  if (q.has_res != 0u) { y += res[i]; }
  if (q.relu != 0u) { y = max(y, vec4f(0.0)); }
  store4(&out, i, q.n, y);
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

@group(0) @binding(5) var<storage, read> grad: array<vec4f>;
@group(0) @binding(7) var<storage, read> sum_g: array<f32>;
@group(0) @binding(8) var<storage, read> sum_gxc: array<f32>;
@group(0) @binding(6) var<uniform> back_p: Backward;
@group(0) @binding(0) var<storage, read_write> coef_out: array<f32>;
@group(0) @binding(2) var<storage, read> coef: array<f32>;
@group(0) @binding(3) var<storage, read> relu_out: array<vec4f>;

// coef = [A (C values), B (C), D (C), mean (C)] for backward_input.
@compute @workgroup_size(64)
fn backward_coefficients(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = flat(wid, nwg, lid);
  let q = back_p;
  if (c >= q.channels) { return; }
  let r = 1.0 / sqrt(variance[c] + q.eps);
  let a = gamma[c] * r;
  var b = 0.0;
  var d = 0.0;
  if (q.train != 0u) {
    b = -a * sum_g[c] / q.count;
    d = -a * r * r * sum_gxc[c] / q.count;
  }
  coef_out[c] = a;
  coef_out[q.channels + c] = b;
  coef_out[2u * q.channels + c] = d;
  coef_out[3u * q.channels + c] = mean[c];
}

fn coef4(k: u32, c: vec4u) -> vec4f {
  let o = k * back_p.channels;
  if (all(c == vec4u(c.x))) { return vec4f(coef[o + c.x]); }
  return vec4f(coef[o + c.x], coef[o + c.y], coef[o + c.z], coef[o + c.w]);
}

@compute @workgroup_size(64)
fn backward_input(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  let q = back_p;
  if (4u * i >= q.n) { return; }
  let c = channels_of(i, q.inner, q.channels);
  var g = grad[i];
  if (q.masked != 0u) { g = select(vec4f(0.0), g, relu_out[i] > vec4f(0.0)); }
  store4(&out, i, q.n, coef4(0u, c) * g + coef4(1u, c) + coef4(2u, c) * (x[i] - coef4(3u, c)));
}

@group(0) @binding(0) var<storage, read_write> dgamma: array<f32>;

@compute @workgroup_size(64)
fn gamma_grad(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = flat(wid, nwg, lid);
  if (c >= norm_p.channels) { return; }
  dgamma[c] = sum_gxc[c] / sqrt(variance[c] + norm_p.eps);
}

@group(0) @binding(0) var<storage, read_write> fold_scale: array<f32>;
@group(0) @binding(1) var<storage, read_write> fold_shift: array<f32>;
@group(0) @binding(6) var<uniform> fold_p: Fold;
@group(0) @binding(7) var<storage, read> conv_bias: array<f32>;

@compute @workgroup_size(64)
fn fold(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = flat(wid, nwg, lid);
  if (c >= fold_p.channels) { return; }
  let sc = gamma[c] / sqrt(variance[c] + fold_p.eps);
  var b = 0.0;
  if (fold_p.has_bias != 0u) { b = conv_bias[c]; }
  fold_scale[c] = sc;
  fold_shift[c] = beta[c] + (b - mean[c]) * sc;
}
