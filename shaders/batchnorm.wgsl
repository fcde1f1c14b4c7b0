// Batch normalisation over NCHW tensors viewed as [batch, channels, inner] (inner = H*W; 1 for
// pooled [B, C, 1, 1] features), with the ReLU and residual add that follow it in SISN fused in.
// The per-channel statistics come as stats = [mean, var, scale, beta] (C values each; scale =
// gamma / sqrt(var + eps)): from reduce.wgsl's moments in training (which also updates the running
// statistics), from eval_stats in eval. The backward reads scale and beta from there too, so the
// ReLU's mask it recomputes from x is the forward's own arithmetic.
//
// Math:     normalize:       y = (x - mean[c]) * scale[c] + beta[c] (+ res if has_res) (then max(., 0) if relu)
//           eval_stats:      stats = [running_mean, running_var, gamma / sqrt(running_var + eps), beta]
//           backward_input:  dx = A * g + B + D * (x - mean), per channel c:
//                            training: A = scale, B = -A * sum_g / M, D = -A * r^2 * sum_gxc / M
//                                      (r = 1 / sqrt(var + eps), M = batch * inner; sums = [sum_g (C),
//                                      sum_gxc (C)] with sum_gxc = sum g * (x - mean), from reduce.wgsl's
//                                      bn_backward); eval: A = scale, B = D = 0.
//                            g is the gradient at the BN output; through the fused ReLU (`masked`) it
//                            counts only where the ReLU's output is > 0: masked = 1 reads that output
//                            (relu_out), masked = 2 recomputes it from x (no residual: (x - mean) *
//                            scale + beta > 0, one load less). With `write_masked` the masked g is
//                            also stored in g_out (the residual input's gradient).
//           fold:            eval-mode BN after a conv (with bias b, if any) as a per-channel affine map
//                            for the conv's epilogue: scale = gamma / sqrt(var + eps),
//                            shift = beta + (b - mean) * scale
// Tiling:   normalize and backward_input: a run of RUN consecutive vec4s per invocation. When
//           inner % 32 == 0 (SISN's maps) every run lies in one channel's plane: it loads that
//           channel's coefficients once and runs a plain loop (about twice as fast as the general
//           walk on a CPU adapter). Otherwise, when inner % 4 == 0,
//           every vec4 lies in one plane: the walk loads a channel's values once and again only
//           where it crosses into the next plane (a CPU adapter's cost is per load: one vec4 per
//           invocation loaded 4-6 per-channel scalars per vec4 of x); else each vec4 gathers its 4
//           elements' channels. The last vec4 writes only the lanes below n. eval_stats, fold: one
//           channel per invocation. 64 per workgroup.
// Dispatch: ceil(n / 4 / RUN) invocations (channels for eval_stats and fold), folded past 65,535
//           workgroups.

struct Norm { n: u32, channels: u32, inner: u32, eps: f32, has_res: u32, relu: u32 }
struct Backward { n: u32, channels: u32, inner: u32, eps: f32, count: f32, train: u32, masked: u32, write_masked: u32 }
struct Fold { channels: u32, eps: f32, has_bias: u32 }

@group(0) @binding(0) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read> gamma: array<f32>;
@group(0) @binding(5) var<storage, read> beta: array<f32>;
@group(0) @binding(6) var<uniform> norm_p: Norm;
@group(0) @binding(7) var<storage, read> res: array<vec4f>;

// @include flat
// @include relu_mask

const RUN: u32 = 8u;

// Runs lie in one channel's plane each (and n is a multiple of a run) when a plane holds whole runs:
// then a run's coefficients are loaded once and its loop is a plain one (a CPU adapter ran the walk
// below at half the speed of this on SISN's maps).
fn in_one_plane(inner: u32) -> bool {
  return inner % (4u * RUN) == 0u;
}

fn channel_of_run(j0: u32, inner: u32, channels: u32) -> u32 {
  return (4u * j0 / inner) % channels;
}

// An invocation's walk over its run of vec4s [j, end): the channels of vec4 j's lanes and, when
// inner % 4 == 0 (every vec4 in one plane: inner4 = inner / 4, else 0), the vec4s left in that plane.
struct Walk { j: u32, end: u32, c: vec4u, left: u32, inner4: u32, inner: u32, channels: u32 }

fn channels_of(j: u32, inner: u32, channels: u32) -> vec4u {
  return ((vec4u(0u, 1u, 2u, 3u) + 4u * j) / inner) % channels;
}

fn start_walk(i: u32, n: u32, inner: u32, channels: u32) -> Walk {
  let j = RUN * i;
  let inner4 = select(0u, inner / 4u, inner % 4u == 0u);
  return Walk(j, min(j + RUN, (n + 3u) / 4u), channels_of(j, inner, channels), inner4 - j % max(inner4, 1u), inner4, inner, channels);
}

// Steps to the next vec4; true when its channels differ from the last one's (reload them).
fn next(w: ptr<function, Walk>) -> bool {
  (*w).j += 1u;
  if ((*w).inner4 == 0u) {
    (*w).c = channels_of((*w).j, (*w).inner, (*w).channels);
    return true;
  }
  (*w).left -= 1u;
  if ((*w).left > 0u) { return false; }
  (*w).c = ((*w).c + 1u) % (*w).channels;
  (*w).left = (*w).inner4;
  return true;
}

// Per-lane coefficient rows from per-channel coefficient vectors: one load when the lanes share a channel.
fn per_lane(k0: vec4f, k1: vec4f, k2: vec4f, k3: vec4f) -> mat4x4f {
  return transpose(mat4x4f(k0, k1, k2, k3));
}

// (mean, scale, beta, 0) of channel c.
fn norm_coef(c: u32) -> vec4f {
  let n = norm_p.channels;
  return vec4f(stats[c], stats[2u * n + c], stats[3u * n + c], 0.0);
}

// The coefficients of a vec4 whose lanes are all in channel c.
fn channel_norm_coefs(c: u32) -> mat4x4f {
  let k = norm_coef(c);
  return per_lane(k, k, k, k);
}

fn norm_coefs(c: vec4u) -> mat4x4f {
  if (all(c == vec4u(c.x))) { return channel_norm_coefs(c.x); }
  return per_lane(norm_coef(c.x), norm_coef(c.y), norm_coef(c.z), norm_coef(c.w));
}

fn normalized(j: u32, k: mat4x4f) -> vec4f {
  var y = (x[j] - k[0]) * k[1] + k[2];
  if (norm_p.has_res != 0u) { y += res[j]; }
  if (norm_p.relu != 0u) { y = max(y, vec4f(0.0)); }
  return y;
}

@compute @workgroup_size(64)
fn normalize(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (in_one_plane(norm_p.inner)) {
    let j0 = RUN * i;
    if (4u * j0 >= norm_p.n) { return; }
    let q = channel_norm_coefs(channel_of_run(j0, norm_p.inner, norm_p.channels));
    for (var j = j0; j < j0 + RUN; j++) { out[j] = normalized(j, q); }
    return;
  }
  var w = start_walk(i, norm_p.n, norm_p.inner, norm_p.channels);
  for (var k = norm_coefs(w.c); w.j < w.end; ) {
    store4(&out, w.j, norm_p.n, normalized(w.j, k));
    if (next(&w)) { k = norm_coefs(w.c); }
  }
}

@group(0) @binding(0) var<storage, read_write> stats_out: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> variance: array<f32>;

@compute @workgroup_size(64)
fn eval_stats(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = flat(wid, nwg, lid);
  let n = norm_p.channels;
  if (c >= n) { return; }
  stats_out[c] = mean[c];
  stats_out[n + c] = variance[c];
  stats_out[2u * n + c] = gamma[c] / sqrt(variance[c] + norm_p.eps);
  stats_out[3u * n + c] = beta[c];
}

@group(0) @binding(5) var<storage, read> grad: array<vec4f>;
@group(0) @binding(6) var<uniform> back_p: Backward;
@group(0) @binding(3) var<storage, read> relu_out: array<vec4f>;
@group(0) @binding(7) var<storage, read> sums: array<f32>;
@group(0) @binding(4) var<storage, read_write> g_out: array<vec4f>;

// Per-lane rows of a vec4's coefficients: mean, A, B, D (back_coef), then the forward's scale and
// beta (to recompute the ReLU's mask).
struct BackCoefs { k: mat4x4f, scale: vec4f, beta: vec4f }

// (mean, A, B, D) of channel c.
fn back_coef(c: u32) -> vec4f {
  let q = back_p;
  let n = q.channels;
  let r = 1.0 / sqrt(stats[n + c] + q.eps);
  let a = stats[2u * n + c];
  if (q.train == 0u) { return vec4f(stats[c], a, 0.0, 0.0); }
  return vec4f(stats[c], a, -a * sums[c] / q.count, -a * r * r * sums[n + c] / q.count);
}

// The coefficients of a vec4 whose lanes are all in channel c.
fn channel_back_coefs(c: u32) -> BackCoefs {
  let n = back_p.channels;
  let k = back_coef(c);
  return BackCoefs(per_lane(k, k, k, k), vec4f(stats[2u * n + c]), vec4f(stats[3u * n + c]));
}

fn back_coefs(c: vec4u) -> BackCoefs {
  let n = back_p.channels;
  if (all(c == vec4u(c.x))) { return channel_back_coefs(c.x); }
  return BackCoefs(
    per_lane(back_coef(c.x), back_coef(c.y), back_coef(c.z), back_coef(c.w)),
    vec4f(stats[2u * n + c.x], stats[2u * n + c.y], stats[2u * n + c.z], stats[2u * n + c.w]),
    vec4f(stats[3u * n + c.x], stats[3u * n + c.y], stats[3u * n + c.z], stats[3u * n + c.w]),
  );
}

fn input_grad(j: u32, q: BackCoefs) -> vec4f {
  var g = grad[j];
  let d = x[j] - q.k[0];
  switch back_p.masked {
    case MASK_OUTPUT: { g = select(vec4f(0.0), g, relu_out[j] > vec4f(0.0)); }
    case MASK_FROM_INPUT: { g = select(vec4f(0.0), g, d * q.scale + q.beta > vec4f(0.0)); }
    case MASK_NONE, default: {}
  }
  if (back_p.write_masked != 0u) { store4(&g_out, j, back_p.n, g); }
  return q.k[1] * g + q.k[2] + q.k[3] * d;
}

@compute @workgroup_size(64)
fn backward_input(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (in_one_plane(back_p.inner)) {
    let j0 = RUN * i;
    if (4u * j0 >= back_p.n) { return; }
    let q = channel_back_coefs(channel_of_run(j0, back_p.inner, back_p.channels));
    for (var j = j0; j < j0 + RUN; j++) { out[j] = input_grad(j, q); }
    return;
  }
  var w = start_walk(i, back_p.n, back_p.inner, back_p.channels);
  for (var q = back_coefs(w.c); w.j < w.end; ) {
    store4(&out, w.j, back_p.n, input_grad(w.j, q));
    if (next(&w)) { q = back_coefs(w.c); }
  }
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
