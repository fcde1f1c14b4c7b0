// Per-channel reductions over NCHW tensors viewed as [batch, channels, inner].
//
// Math:     channel_sum: out[c] (+)= scale * sum_{b < batch, i < inner} f(b, c, i), idx = (b * channels + c) * inner + i,
//           MODE 0: x[idx]                 (bias gradient, global average pooling)
//           MODE 1: x[idx] * y[idx]        (per-channel dot products)
//           MODE 2: |x[idx] - y[idx]|      (L1 loss, channels = 1)
//           (+)= : added to out when `accumulate` (a parameter's gradient), else stored.
//           moments: out[c] = mean of x over (b, i), out[C + c] = mean of (x - mean)^2 (biased
//                    variance), in one pass: each lane sums x - K and (x - K)^2 (K: the channel's
//                    first value, so the sums stay small), turns them into its own (count, mean, M2),
//                    and the workgroup tree merges those with Chan's formula
//                    M2 = M2a + M2b + (mean_b - mean_a)^2 * na * nb / (na + nb).
//                    out[2C + c] = gamma[c] / sqrt(var + eps), out[3C + c] = beta[c]: the coefficients
//                    batchnorm.wgsl's normalize applies (and its backward recomputes the ReLU's mask with).
//                    And the running statistics: running_mean = momentum * mean + (1 - momentum) * running_mean,
//                    running_var likewise with the unbiased variance (var * unbias, unbias = M / (M - 1)).
//           moments_merge: moments from the per-run (mean, M2) that a convolution's epilogue wrote
//                    (conv2d.wgsl's moments_out: `parts` runs per channel, run k holding
//                    min(columns, width - (k % x_blocks) * columns) values), summed shifted by the
//                    first run's mean as moments sums values; the same results (and running
//                    statistics) without reading x.
//           bn_backward: out[c] = sum g, out[C + c] = sum g * (x - mean[c])   (g in y; `stats` = moments'
//                    [mean, var, scale, beta]; g counts only where a fused ReLU passed it: masked = 1
//                    where mask > 0 (the ReLU's output), masked = 2 where (x - mean) * scale + beta > 0
//                    (no residual: recomputed from x, one load less)), and BatchNorm's parameter gradients
//                    dbeta[c] (+)= sum g, dgamma[c] (+)= sum g * (x - mean[c]) / sqrt(var[c] + eps).
//           Operands a kernel does not read are bound to placeholders by the host.
// Tiling:   one workgroup per channel; for each sample its 64 lanes stride over the channel's
//           plane, a vec4 at a time when inner % 4 == 0, then a tree reduction in workgroup memory
//           (barriers between levels); lane 0 writes the channel's results.
//           moments_merge: one invocation per channel merges its runs in turn (a few hundred to a
//           few thousand: too few for a workgroup's tree to pay for its barriers).
//           channel_sum_serial: channel_sum where batch * inner is small (the bias gradient of a conv
//           on pooled features: 10 values a channel): one invocation per channel sums them in turn,
//           64 channels per workgroup (a workgroup per channel would cost more than the sums).
// Dispatch: `channels` workgroups, folded into (x, y) past 65,535; channel_sum_serial and
//           moments_merge: `channels` invocations.

struct Reduce {
  batch: u32, channels: u32, inner: u32, scale: f32, masked: u32,
  accumulate: u32, eps: f32, momentum: f32, unbias: f32,
  parts: u32, x_blocks: u32, columns: u32, width: u32,
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> y: array<vec4f>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<uniform> p: Reduce;
@group(0) @binding(5) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(6) var<storage, read> mask: array<vec4f>;
@group(0) @binding(7) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(7) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(3) var<storage, read> bn_gamma: array<f32>;
@group(0) @binding(8) var<storage, read> bn_beta: array<f32>;
@group(0) @binding(1) var<storage, read> partial_moments: array<f32>;

// @include flat

override MODE: u32 = 0u;
// channel_sum's terms (MODE); the host passes them by name (src/ops/reduce.ts, ReduceMode).
const MODE_SUM: u32 = 0u;
const MODE_DOT: u32 = 1u;
const MODE_ABS_DIFF: u32 = 2u;
// @include relu_mask
const LANES: u32 = 64u;
var<workgroup> partial: array<vec3f, 64>;

fn scalar(a: ptr<storage, array<vec4f>, read>, e: u32) -> f32 {
  return (*a)[e / 4u][e % 4u];
}

// Sums v over the workgroup; lane 0 gets the total.
fn workgroup_sum(v: vec2f, lid: u32) -> vec2f {
  partial[lid] = vec3f(v, 0.0);
  workgroupBarrier();
  for (var width = LANES / 2u; width > 0u; width = width / 2u) {
    if (lid < width) { partial[lid] = partial[lid] + partial[lid + width]; }
    workgroupBarrier();
  }
  return partial[0].xy;
}

// Chan's merge of two (count, mean, M2) summaries of disjoint parts.
fn merge_moments(a: vec3f, b: vec3f) -> vec3f {
  let n = a.x + b.x;
  if (n == 0.0) { return a; }
  let delta = b.y - a.y;
  return vec3f(n, a.y + delta * b.x / n, a.z + b.z + delta * delta * a.x * b.x / n);
}

// Merges every lane's (count, mean, M2) over the workgroup; lane 0 gets the channel's.
fn workgroup_moments(v: vec3f, lid: u32) -> vec3f {
  partial[lid] = v;
  workgroupBarrier();
  for (var width = LANES / 2u; width > 0u; width = width / 2u) {
    if (lid < width) { partial[lid] = merge_moments(partial[lid], partial[lid + width]); }
    workgroupBarrier();
  }
  return partial[0];
}

fn channel_of(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
}

// f(b, c, i) at element e of x (and y).
fn term(e: u32) -> f32 {
  let u = scalar(&x, e);
  switch MODE {
    case MODE_SUM: { return u; }
    case MODE_DOT: { return u * scalar(&y, e); }
    case MODE_ABS_DIFF, default: { return abs(u - scalar(&y, e)); }
  }
}

fn add_result(c: u32, total: f32) {
  out[c] = select(total, out[c] + total, p.accumulate != 0u);
}

@compute @workgroup_size(64)
fn channel_sum(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = channel_of(wid, nwg);
  if (c >= p.channels) { return; }
  var acc = vec4f(0.0);
  for (var b = 0u; b < p.batch; b++) {
    let start = (b * p.channels + c) * p.inner;
    if (p.inner % 4u == 0u) {
      for (var i = 4u * lid; i < p.inner; i += 4u * LANES) {
        let u = x[(start + i) / 4u];
        switch MODE {
          case MODE_SUM: { acc += u; }
          case MODE_DOT: { acc += u * y[(start + i) / 4u]; }
          case MODE_ABS_DIFF, default: { acc += abs(u - y[(start + i) / 4u]); }
        }
      }
    } else {
      for (var i = lid; i < p.inner; i += LANES) { acc.x += term(start + i); }
    }
  }
  let total = workgroup_sum(vec2f(acc.x + acc.y + acc.z + acc.w, 0.0), lid).x * p.scale;
  if (lid == 0u) { add_result(c, total); }
}

@compute @workgroup_size(64)
fn channel_sum_serial(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = flat(wid, nwg, lid);
  if (c >= p.channels) { return; }
  var acc = 0.0;
  for (var b = 0u; b < p.batch; b++) {
    let start = (b * p.channels + c) * p.inner;
    for (var i = 0u; i < p.inner; i++) { acc += term(start + i); }
  }
  add_result(c, acc * p.scale);
}

// Sum over the channel of f(x) (and g = y when `with_g`), centred on `centre`, and the count:
// returns (sum of x - centre or of g, sum of (x - centre)^2 or of g * (x - centre), count).
// With masked = 2, g counts where (x - centre) * scale + beta > 0 (centre = the mean).
fn centred_sums(c: u32, lid: u32, centre: f32, with_g: bool, scale: f32, beta: f32) -> vec3f {
  var s = vec4f(0.0);
  var t = vec4f(0.0);
  var n = 0u;
  for (var b = 0u; b < p.batch; b++) {
    let start = (b * p.channels + c) * p.inner;
    if (p.inner % 4u == 0u) {
      for (var i = 4u * lid; i < p.inner; i += 4u * LANES) {
        let d = x[(start + i) / 4u] - centre;
        n += 4u;
        if (with_g) {
          var g = y[(start + i) / 4u];
          switch p.masked {
            case MASK_OUTPUT: { g = select(vec4f(0.0), g, mask[(start + i) / 4u] > vec4f(0.0)); }
            case MASK_FROM_INPUT: { g = select(vec4f(0.0), g, d * scale + beta > vec4f(0.0)); }
            case MASK_NONE, default: {}
          }
          s += g;
          t += g * d;
        } else {
          s += d;
          t += d * d;
        }
      }
    } else {
      for (var i = lid; i < p.inner; i += LANES) {
        let d = scalar(&x, start + i) - centre;
        n += 1u;
        if (with_g) {
          var g = scalar(&y, start + i);
          switch p.masked {
            case MASK_OUTPUT: { g = select(0.0, g, scalar(&mask, start + i) > 0.0); }
            case MASK_FROM_INPUT: { g = select(0.0, g, d * scale + beta > 0.0); }
            case MASK_NONE, default: {}
          }
          s.x += g;
          t.x += g * d;
        } else {
          s.x += d;
          t.x += d * d;
        }
      }
    }
  }
  return vec3f(s.x + s.y + s.z + s.w, t.x + t.y + t.z + t.w, f32(n));
}

@compute @workgroup_size(64)
fn moments(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = channel_of(wid, nwg);
  if (c >= p.channels) { return; }
  let shift = scalar(&x, c * p.inner);
  let total = workgroup_moments(shifted_moments(shift, centred_sums(c, lid, shift, false, 0.0, 0.0)), lid);
  if (lid == 0u) { store_moments(c, total); }
}

// (count, mean, M2) from sums shifted by K: (sum of v - K, sum of (v - K)^2, count); no values:
// count 0.
fn shifted_moments(shift: f32, sums: vec3f) -> vec3f {
  let count = max(sums.z, 1.0);
  return vec3f(sums.z, shift + sums.x / count, max(sums.y - sums.x * sums.x / count, 0.0));
}

// The channel's statistics from its merged (count, mean, M2), and the running statistics.
fn store_moments(c: u32, total: vec3f) {
  let variance = total.z / total.x;
  out[c] = total.y;
  out[p.channels + c] = variance;
  out[2u * p.channels + c] = bn_gamma[c] / sqrt(variance + p.eps);
  out[3u * p.channels + c] = bn_beta[c];
  running_mean[c] = p.momentum * total.y + (1.0 - p.momentum) * running_mean[c];
  running_var[c] = p.momentum * variance * p.unbias + (1.0 - p.momentum) * running_var[c];
}

// One invocation per channel sums the channel's runs in turn, shifted by the first run's mean K:
// s1 = sum n (mean - K), s2 = sum M2 + n (mean - K)^2, then (count, K + s1 / count,
// s2 - s1^2 / count) as in moments.
@compute @workgroup_size(64)
fn moments_merge(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = flat(wid, nwg, lid);
  if (c >= p.channels) { return; }
  let rows = p.parts / p.x_blocks;
  let shift = partial_moments[c * p.parts * 2u];
  var sums = vec3f(0.0);
  for (var r = 0u; r < rows; r++) {
    let at = (c * p.parts + r * p.x_blocks) * 2u;
    for (var xb = 0u; xb < p.x_blocks; xb++) {
      let n = f32(min(p.columns, p.width - xb * p.columns));
      let d = partial_moments[at + 2u * xb] - shift;
      sums += vec3f(n * d, partial_moments[at + 2u * xb + 1u] + n * d * d, n);
    }
  }
  store_moments(c, shifted_moments(shift, sums));
}

@compute @workgroup_size(64)
fn bn_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = channel_of(wid, nwg);
  if (c >= p.channels) { return; }
  let n = p.channels;
  let sums = workgroup_sum(centred_sums(c, lid, stats[c], true, stats[2u * n + c], stats[3u * n + c]).xy, lid);
  if (lid == 0u) {
    out[c] = sums.x;
    out[p.channels + c] = sums.y;
    let dg = sums.y / sqrt(stats[p.channels + c] + p.eps);
    dgamma[c] = select(dg, dgamma[c] + dg, p.accumulate != 0u);
    dbeta[c] = select(sums.x, dbeta[c] + sums.x, p.accumulate != 0u);
  }
}
