// Split attention (ResNeSt, radix R, cardinality 1): the two passes over the splits z [B, R*C, inner]
// of each direction. Between them, a gate (fc1, bn1, relu, fc2: [B, *, 1, 1], other kernels) maps the
// pooled splits to the logits l [B, R*C]; a = softmax over k of l[b, k*C + c] (per b, c).
//
// Math:     pool_splits:     gap[b, c] = scale * sum_k sum_i z[b, k*C + c, i]   (scale = 1 / inner:
//                            global average pooling of the chunks' sum, [B, R*C, inner] -> [B, C])
//           attend:          out[b, c, i] = sum_k a[b, k*C + c] * z[b, k*C + c, i]  (softmax inline,
//                            online: one load per logit)
//           attend_backward: dA_k = sum_i z[b, k*C + c, i] * g[b, c, i]; writes a, and the logits'
//                            gradient through the softmax: dl_k = a_k * (dA_k - sum_j a_j dA_j)
//           splits_backward: dz[b, k*C + c, i] = a[b, k*C + c] * g[b, c, i] + scale * dgap[b, c]
//                            (attend's and the pool's gradients, written once)
// Tiling:   pool_splits, attend_backward: one workgroup of 64 lanes per (b, c); each lane strides
//           over the R planes (and g's plane, read once for all R), a vec4 at a time when
//           inner % 4 == 0, lane by lane otherwise; then two levels of 8 partial sums in workgroup
//           memory (a six-level tree cost more than the loads here on lavapipe), lane 0 finishes.
//           attend, splits_backward: one output vec4 per invocation, 64 per workgroup; when
//           inner % 4 == 0 its 4 elements share (b, c), otherwise lane by lane.
// Dispatch: B * C workgroups, resp. ceil(#outputs / 256) workgroups; folded past 65,535.

struct Split { n: u32, channels: u32, inner: u32, radix: u32, scale: f32 }

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(0) var<storage, read_write> dst: array<vec4f>;
@group(0) @binding(1) var<storage, read> z: array<vec4f>;
@group(0) @binding(2) var<storage, read> g: array<vec4f>;
@group(0) @binding(3) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read> att: array<f32>;
@group(0) @binding(4) var<uniform> p: Split;
@group(0) @binding(5) var<storage, read_write> att_out: array<f32>;
@group(0) @binding(5) var<storage, read> dgap: array<f32>;

// @include flat

const LANES: u32 = 64u;
var<workgroup> partial: array<vec4f, 64>;
var<workgroup> partial8: array<vec4f, 8>;

fn element(a: ptr<storage, array<vec4f>, read>, e: u32) -> f32 {
  return (*a)[e / 4u][e % 4u];
}

// The sum of v over the workgroup, valid in lane 0 (lanes 0-7 sum 8 partials each, lane 0 their 8).
fn workgroup_total(v: vec4f, lid: u32) -> vec4f {
  partial[lid] = v;
  workgroupBarrier();
  if (lid < 8u) {
    var s = vec4f(0.0);
    for (var j = 0u; j < 8u; j++) { s += partial[8u * lid + j]; }
    partial8[lid] = s;
  }
  workgroupBarrier();
  var total = vec4f(0.0);
  if (lid == 0u) {
    for (var j = 0u; j < 8u; j++) { total += partial8[j]; }
  }
  return total;
}

fn pair_of(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
}

// The z channel of split 0 for pair (b, c); split k's is that + k*C.
fn split0(pair: u32) -> u32 {
  let b = pair / p.channels;
  return b * p.radix * p.channels + (pair - b * p.channels);
}

// p.n = B * C pairs.
@compute @workgroup_size(64)
fn pool_splits(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let pair = pair_of(wid, nwg);
  if (pair >= p.n) { return; }
  let first = split0(pair);
  var acc = vec4f(0.0);
  for (var k = 0u; k < p.radix; k++) {
    let start = (first + k * p.channels) * p.inner;
    if (p.inner % 4u == 0u) {
      for (var i = 4u * lid; i < p.inner; i += 4u * LANES) { acc += z[(start + i) / 4u]; }
    } else {
      for (var i = lid; i < p.inner; i += LANES) { acc.x += element(&z, start + i); }
    }
  }
  let total = workgroup_total(acc, lid);
  if (lid == 0u) { out[pair] = p.scale * (total.x + total.y + total.z + total.w); }
}

// z element e, lane by lane or (vector) as the vec4 that starts there.
fn split_value(e: u32, vector: bool) -> vec4f {
  if (vector) { return z[e / 4u]; }
  return vec4f(element(&z, e));
}

// attend's output at position `pos` of pair `pair`'s plane (the vec4 there, or its first lane).
// Online softmax: the running max m, the sum of exp(l_k - m) and the weighted sum rescale as m grows.
fn attended(pair: u32, pos: u32, vector: bool) -> vec4f {
  let first = split0(pair);
  var m = logits[first];
  var total = 0.0;
  var acc = vec4f(0.0);
  for (var k = 0u; k < p.radix; k++) {
    let zc = first + k * p.channels;
    let logit = logits[zc];
    let grown = max(m, logit);
    let shrink = exp(m - grown);
    let w = exp(logit - grown);
    total = total * shrink + w;
    acc = acc * shrink + w * split_value(zc * p.inner + pos, vector);
    m = grown;
  }
  return acc / total;
}

// out = dst: [B, C, inner]; p.n counts its elements.
@compute @workgroup_size(64)
fn attend(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (4u * i >= p.n) { return; }
  var r = vec4f(0.0);
  if (p.inner % 4u == 0u) {
    r = attended(4u * i / p.inner, 4u * i % p.inner, true);
  } else {
    for (var l = 0u; l < 4u; l++) {
      let e = min(4u * i + l, p.n - 1u);
      r[l] = attended(e / p.inner, e % p.inner, false).x;
    }
  }
  store4(&dst, i, p.n, r);
}

// Per pair: out = dl [B, R*C], att_out = a [B, R*C]; reads z, g, logits. p.n = B * C pairs.
@compute @workgroup_size(64)
fn attend_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let pair = pair_of(wid, nwg);
  if (pair >= p.n) { return; }
  let first = split0(pair);
  let gstart = pair * p.inner;
  // Four splits per sweep over g's plane: R <= 4 (SISN's 4) reads it once.
  for (var k0 = 0u; k0 < p.radix; k0 += 4u) {
    let splits = min(4u, p.radix - k0);
    var acc = mat4x4f();
    if (p.inner % 4u == 0u) {
      for (var i = 4u * lid; i < p.inner; i += 4u * LANES) {
        let gv = g[(gstart + i) / 4u];
        for (var m = 0u; m < splits; m++) { acc[m] += gv * z[((first + (k0 + m) * p.channels) * p.inner + i) / 4u]; }
      }
    } else {
      for (var i = lid; i < p.inner; i += LANES) {
        let gv = element(&g, gstart + i);
        for (var m = 0u; m < splits; m++) { acc[m].x += gv * element(&z, (first + (k0 + m) * p.channels) * p.inner + i); }
      }
    }
    let ones = vec4f(1.0);
    let total = workgroup_total(vec4f(dot(acc[0], ones), dot(acc[1], ones), dot(acc[2], ones), dot(acc[3], ones)), lid);
    if (lid == 0u) {
      for (var m = 0u; m < splits; m++) { out[first + (k0 + m) * p.channels] = total[m]; }
    }
  }
  if (lid != 0u) { return; }
  // The softmax and its backward, serially in lane 0 (R values); out holds dA until overwritten.
  var mx = logits[first];
  for (var k = 1u; k < p.radix; k++) { mx = max(mx, logits[first + k * p.channels]); }
  var total = 0.0;
  for (var k = 0u; k < p.radix; k++) { total += exp(logits[first + k * p.channels] - mx); }
  var weighted = 0.0;
  for (var k = 0u; k < p.radix; k++) {
    let at = first + k * p.channels;
    let a = exp(logits[at] - mx) / total;
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
  if (4u * i >= p.n) { return; }
  var r = vec4f(0.0);
  if (p.inner % 4u == 0u) {
    let at = split_source(4u * i);
    r = att[at.x] * g[at.y / 4u] + p.scale * dgap[at.z];
  } else {
    for (var l = 0u; l < 4u; l++) {
      let at = split_source(min(4u * i + l, p.n - 1u));
      r[l] = att[at.x] * element(&g, at.y) + p.scale * dgap[at.z];
    }
  }
  store4(&dst, i, p.n, r);
}
