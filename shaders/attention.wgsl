// Split attention (ResNeSt, radix R, cardinality 1): the two passes over the splits z [B, R*C, inner]
// of each direction. Between them, a gate (fc1, bn1, relu, fc2: [B, *, 1, 1]) maps the pooled
// splits to the logits l [B, R*C]; a = softmax over k of l[b, k*C + c] (per b, c). In training the
// gate is other kernels (recorded convolutions and BatchNorm); in inference it is `gate` below.
//
// Math:     pool_splits:     gap[b, c] = scale * sum_k sum_i z[b, k*C + c, i]   (scale = 1 / inner:
//                            global average pooling of the chunks' sum, [B, R*C, inner] -> [B, C])
//           attend:          out[b, c, i] = sum_k a[b, k*C + c] * z[b, k*C + c, i]  (softmax inline)
//           attend_backward: dA_k = sum_i z[b, k*C + c, i] * g[b, c, i]; writes a, and the logits'
//                            gradient through the softmax: dl_k = a_k * (dA_k - sum_j a_j dA_j)
//           splits_backward: dz[b, k*C + c, i] = a[b, k*C + c] * g[b, c, i] + scale * dgap[b, c]
//                            (attend's and the pool's gradients, written once)
//           gate (inference): l[b, o] = b2[o] + sum_j w2[o, j] * h[j], h[j] = max(scale[j] * sum_c
//                            w1[j, c] * gap[b, c] + shift[j], 0): fc1, its eval-mode BatchNorm (and
//                            fc1's bias) folded into scale and shift, the ReLU, and fc2 in one pass.
//                            With `parts`, it pools too: gap[b, c] = scale * sum_k sum_q s[k*C + c,
//                            b * parts + q], s the partial sums the splits' convolution wrote in its
//                            epilogue (conv2d.wgsl's `sums`, [R*C, B * parts]).
//           With `normalized`, the splits are never stored: pool_splits, attend and attend_backward
//           read the BatchNorm input x in z's place and apply the BatchNorm and ReLU that make z
//           (z = max((x - mean[ch]) * scale[ch] + beta[ch], 0), bn_stats = [mean, var, scale,
//           beta] of the R*C channels, as batchnorm.wgsl's normalize computes it).
// Tiling:   pool_splits, attend_backward: PAIR_LANES lanes per (b, c), 64 / PAIR_LANES pairs per
//           workgroup; each lane strides over the R planes (attend_backward: over g's plane, read
//           once for up to 4 splits, in 4 named accumulators: a dynamically indexed matrix may live
//           in memory, as it does on lavapipe), a vec4 at a time when inner % 4 == 0, lane by lane
//           otherwise; lane 0 of the pair sums the partials from workgroup memory (a pair's planes
//           are too small for 64 lanes and a two-level sum to pay off).
//           attend: when inner % 4 == 0 an invocation computes one pair's softmax once and writes
//           up to QUADS vec4s of its plane (fewer index divisions and exps than one vec4 per
//           invocation). splits_backward: when inner % 4 == 0 an invocation takes one vec4 of g and
//           writes the R vec4s of dz it feeds (g read once instead of R times).
//           Otherwise both write one output vec4 per invocation, lane by lane (it may span planes).
//           gate: one 64-lane workgroup per sample; each lane pools channels c = lane, lane + 64, ..
//           (with `parts`) and computes hidden units j = lane, lane + 64, .. into workgroup memory (up
//           to GATE_HIDDEN_MAX each), then, after a barrier, logits o = lane, lane + 64, ... Its
//           matrices are tiny (SISN: 64x64 and 256x64): as two convolutions on 1x1 maps the gate would
//           pay two dispatches' fixed cost for little work; pooling from the partial sums saves a pass
//           over the splits and a dispatch.
// Dispatch: one invocation per unit above, 64 per workgroup; folded past 65,535. gate: B workgroups.

struct Split { n: u32, channels: u32, inner: u32, radix: u32, scale: f32, normalized: u32 }

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(0) var<storage, read_write> dst: array<vec4f>;
@group(0) @binding(1) var<storage, read> z: array<vec4f>;
@group(0) @binding(2) var<storage, read> g: array<vec4f>;
@group(0) @binding(3) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read> att: array<f32>;
@group(0) @binding(4) var<uniform> p: Split;
@group(0) @binding(5) var<storage, read_write> att_out: array<f32>;
@group(0) @binding(5) var<storage, read> dgap: array<f32>;
@group(0) @binding(6) var<storage, read> bn_stats: array<f32>;

// The gate's own: gap [B, C] (or with `parts` the partial sums), fc1's weight [hidden, C], fc2's
// [R*C, hidden] and bias, the folded BatchNorm; `out` is the logits [B, R*C].
struct Gate { batch: u32, channels: u32, hidden: u32, outputs: u32, parts: u32, radix: u32, scale: f32 }
@group(0) @binding(1) var<storage, read> gap: array<f32>;
@group(0) @binding(2) var<storage, read> w1: array<f32>;
@group(0) @binding(3) var<storage, read> w2: array<f32>;
@group(0) @binding(4) var<uniform> gate_p: Gate;
@group(0) @binding(5) var<storage, read> hidden_scale: array<f32>;
@group(0) @binding(6) var<storage, read> hidden_shift: array<f32>;
@group(0) @binding(7) var<storage, read> b2: array<f32>;

// @include flat

const PAIR_LANES: u32 = 8u;
var<workgroup> partial: array<vec4f, 64>;

fn element(a: ptr<storage, array<vec4f>, read>, e: u32) -> f32 {
  return (*a)[e / 4u][e % 4u];
}

// The BatchNorm coefficients (mean, scale, beta) of z channel zc (b * R*C + its channel; zeros
// when not `normalized`).
fn split_coef(zc: u32) -> vec3f {
  if (p.normalized == 0u) { return vec3f(0.0); }
  let n = p.radix * p.channels;
  let c = zc % n;
  return vec3f(bn_stats[c], bn_stats[2u * n + c], bn_stats[3u * n + c]);
}

// A vec4 of z from the value v read at its place: as stored, or made from the BatchNorm input with
// its channel's coefficients k (split_coef).
fn split4(v: vec4f, k: vec3f) -> vec4f {
  if (p.normalized == 0u) { return v; }
  return max((v - k.x) * k.y + k.z, vec4f(0.0));
}

fn split1(v: f32, k: vec3f) -> f32 {
  return split4(vec4f(v), k).x;
}

// The sum of v over the pair's lanes, valid in its lane 0 (all lanes of the workgroup call it).
fn pair_total(v: vec4f, lid: u32) -> vec4f {
  partial[lid] = v;
  workgroupBarrier();
  var total = vec4f(0.0);
  if (lid % PAIR_LANES == 0u) {
    for (var j = 0u; j < PAIR_LANES; j++) { total += partial[lid + j]; }
  }
  workgroupBarrier();
  return total;
}

// The z channel of split 0 for pair (b, c); split k's is that + k*C.
fn split0(pair: u32) -> u32 {
  let b = pair / p.channels;
  return b * p.radix * p.channels + (pair - b * p.channels);
}

// p.n = B * C pairs.
@compute @workgroup_size(64)
fn pool_splits(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let pair = flat(wid, nwg, lid) / PAIR_LANES;
  let lane = lid % PAIR_LANES;
  var acc = vec4f(0.0);
  if (pair < p.n) {
    let first = split0(pair);
    for (var k = 0u; k < p.radix; k++) {
      let zc = first + k * p.channels;
      let kz = split_coef(zc);
      let start = zc * p.inner;
      if (p.inner % 4u == 0u) {
        for (var i = 4u * lane; i < p.inner; i += 4u * PAIR_LANES) { acc += split4(z[(start + i) / 4u], kz); }
      } else {
        for (var i = lane; i < p.inner; i += PAIR_LANES) { acc.x += split1(element(&z, start + i), kz); }
      }
    }
  }
  let total = pair_total(acc, lid);
  if (lane == 0u && pair < p.n) { out[pair] = p.scale * (total.x + total.y + total.z + total.w); }
}

// (max, sum of exp(l_k - max)) of pair `first`'s R logits, k's at first + k*C.
fn softmax_stats(first: u32) -> vec2f {
  var mx = logits[first];
  for (var k = 1u; k < p.radix; k++) { mx = max(mx, logits[first + k * p.channels]); }
  var total = 0.0;
  for (var k = 0u; k < p.radix; k++) { total += exp(logits[first + k * p.channels] - mx); }
  return vec2f(mx, total);
}

fn softmax_at(at: u32, stats: vec2f) -> f32 {
  return exp(logits[at] - stats.x) / stats.y;
}

// out = dst: [B, C, inner]; p.n counts its elements.
const QUADS: u32 = 4u;
@compute @workgroup_size(64)
fn attend(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (p.inner % 4u == 0u) {
    let quads = p.inner / 4u;
    let per_plane = (quads + QUADS - 1u) / QUADS;
    let pair = i / per_plane;
    if (pair * p.inner >= p.n) { return; }
    let q0 = (i - pair * per_plane) * QUADS;
    let count = min(QUADS, quads - q0);
    let first = split0(pair);
    let stats = softmax_stats(first);
    var acc: array<vec4f, QUADS>;
    for (var k = 0u; k < p.radix; k++) {
      let zc = first + k * p.channels;
      let w = softmax_at(zc, stats);
      let kz = split_coef(zc);
      for (var v = 0u; v < count; v++) { acc[v] += w * split4(z[zc * quads + q0 + v], kz); }
    }
    for (var v = 0u; v < count; v++) { dst[pair * quads + q0 + v] = acc[v]; }
    return;
  }
  if (4u * i >= p.n) { return; }
  var r = vec4f(0.0);
  for (var l = 0u; l < 4u; l++) {
    let e = min(4u * i + l, p.n - 1u);
    let first = split0(e / p.inner);
    let stats = softmax_stats(first);
    for (var k = 0u; k < p.radix; k++) {
      let zc = first + k * p.channels;
      r[l] += softmax_at(zc, stats) * split1(element(&z, zc * p.inner + e % p.inner), split_coef(zc));
    }
  }
  store4(&dst, i, p.n, r);
}

// Per pair: out = dl [B, R*C], att_out = a [B, R*C]; reads z, g, logits. p.n = B * C pairs.
@compute @workgroup_size(64)
fn attend_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let pair = flat(wid, nwg, lid) / PAIR_LANES;
  let lane = lid % PAIR_LANES;
  let live = pair < p.n;
  let first = split0(pair);
  let gstart = pair * p.inner;
  // Four splits per sweep over g's plane: R <= 4 (SISN's 4) reads it once.
  for (var k0 = 0u; k0 < p.radix; k0 += 4u) {
    let splits = select(0u, min(4u, p.radix - k0), live);
    // Four named accumulators: a dynamically indexed matrix would live in memory on lavapipe.
    var acc0 = vec4f(0.0);
    var acc1 = vec4f(0.0);
    var acc2 = vec4f(0.0);
    var acc3 = vec4f(0.0);
    let zc = first + k0 * p.channels;
    let base = zc * p.inner;
    let step = p.channels * p.inner;
    // The splits' BatchNorm coefficients (those past the last split are unused).
    let c = p.channels;
    let k0z = split_coef(zc);
    let k1z = split_coef(zc + c);
    let k2z = split_coef(zc + 2u * c);
    let k3z = split_coef(zc + 3u * c);
    if (p.inner % 4u == 0u) {
      for (var i = 4u * lane; i < p.inner && live; i += 4u * PAIR_LANES) {
        let gv = g[(gstart + i) / 4u];
        let at = (base + i) / 4u;
        acc0 += gv * split4(z[at], k0z);
        if (splits > 1u) { acc1 += gv * split4(z[at + step / 4u], k1z); }
        if (splits > 2u) { acc2 += gv * split4(z[at + 2u * step / 4u], k2z); }
        if (splits > 3u) { acc3 += gv * split4(z[at + 3u * step / 4u], k3z); }
      }
    } else {
      for (var i = lane; i < p.inner && live; i += PAIR_LANES) {
        let gv = element(&g, gstart + i);
        let at = base + i;
        acc0.x += gv * split1(element(&z, at), k0z);
        if (splits > 1u) { acc1.x += gv * split1(element(&z, at + step), k1z); }
        if (splits > 2u) { acc2.x += gv * split1(element(&z, at + 2u * step), k2z); }
        if (splits > 3u) { acc3.x += gv * split1(element(&z, at + 3u * step), k3z); }
      }
    }
    let ones = vec4f(1.0);
    let total = pair_total(vec4f(dot(acc0, ones), dot(acc1, ones), dot(acc2, ones), dot(acc3, ones)), lid);
    if (lane == 0u) {
      for (var m = 0u; m < splits; m++) { out[first + (k0 + m) * p.channels] = total[m]; }
    }
  }
  if (lane != 0u || !live) { return; }
  // The softmax and its backward, serially in the pair's lane 0 (R values); out holds dA until overwritten.
  let stats = softmax_stats(first);
  var weighted = 0.0;
  for (var k = 0u; k < p.radix; k++) {
    let at = first + k * p.channels;
    let a = softmax_at(at, stats);
    att_out[at] = a;
    weighted += a * out[at];
  }
  for (var k = 0u; k < p.radix; k++) {
    let at = first + k * p.channels;
    out[at] = att_out[at] * (out[at] - weighted);
  }
}

// For dz element e ([B, R*C, inner]): (its z channel, the start of the matching g element, its pair).
fn split_source(e: u32) -> vec3u {
  let zc = e / p.inner;
  let b = zc / (p.channels * p.radix);
  let pair = b * p.channels + zc % p.channels;
  return vec3u(zc, pair * p.inner + e % p.inner, pair);
}

// dst = dz: [B, R*C, inner]; reads g, att (a), dgap; p.n counts dz's elements.
@compute @workgroup_size(64)
fn splits_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (p.inner % 4u == 0u) {
    if (4u * i * p.radix >= p.n) { return; }
    let pair = 4u * i / p.inner;
    let first = split0(pair);
    let gv = g[i];
    let pooled = p.scale * dgap[pair];
    let pos = 4u * i - pair * p.inner;
    for (var k = 0u; k < p.radix; k++) {
      let zc = first + k * p.channels;
      dst[(zc * p.inner + pos) / 4u] = att[zc] * gv + pooled;
    }
    return;
  }
  if (4u * i >= p.n) { return; }
  var r = vec4f(0.0);
  for (var l = 0u; l < 4u; l++) {
    let at = split_source(min(4u * i + l, p.n - 1u));
    r[l] = att[at.x] * element(&g, at.y) + p.scale * dgap[at.z];
  }
  store4(&dst, i, p.n, r);
}

// out = logits [B, R*C]; one workgroup per sample b (folded past 65,535 like `flat`).
const GATE_HIDDEN_MAX: u32 = 1024u;
var<workgroup> hidden: array<f32, GATE_HIDDEN_MAX>;
// The pooled input [C].
var<workgroup> pooled: array<f32, GATE_HIDDEN_MAX>;
@compute @workgroup_size(64)
fn gate(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let q = gate_p;
  let b = wid.x + wid.y * nwg.x;
  if (b >= q.batch) { return; }
  for (var c = lid; c < q.channels; c += 64u) {
    if (q.parts == 0u) {
      pooled[c] = gap[b * q.channels + c];
      continue;
    }
    var acc = 0.0;
    for (var k = 0u; k < q.radix; k++) {
      let start = (k * q.channels + c) * q.batch * q.parts + b * q.parts;
      for (var i = 0u; i < q.parts; i++) { acc += gap[start + i]; }
    }
    pooled[c] = q.scale * acc;
  }
  workgroupBarrier();
  for (var j = lid; j < q.hidden; j += 64u) {
    var acc = 0.0;
    for (var c = 0u; c < q.channels; c++) { acc += w1[j * q.channels + c] * pooled[c]; }
    hidden[j] = max(acc * hidden_scale[j] + hidden_shift[j], 0.0);
  }
  workgroupBarrier();
  for (var o = lid; o < q.outputs; o += 64u) {
    var acc = b2[o];
    for (var j = 0u; j < q.hidden; j++) { acc += w2[o * q.hidden + j] * hidden[j]; }
    out[b * q.outputs + o] = acc;
  }
}
