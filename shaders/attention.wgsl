// Split attention (ResNeSt, cardinality 1): the radix softmax and the attention-weighted sum of splits.
//
// Math:     radix_softmax: for each sample b and channel c of C, the R logits x[b, k*C + c], k < R,
//             become their softmax over k (max-subtracted). Backward: dx_k = s_k * (g_k - sum_j g_j s_j),
//             with s the saved softmax output.
//           attend: out[b, c, i] = sum_k att[b, k*C + c] * z[b, k*C + c, i]  (z: [B, R*C, inner]);
//             this replaces a per-channel multiply and a chunk sum, and the [B, R*C, inner] product.
//           attend_backward: dz[b, k*C + c, i] = att[b, k*C + c] * g[b, c, i]
//             (the attention gradient is a per-channel dot product, reduce.wgsl).
// Tiling:   radix kernels: one (b, c) pair per invocation. attend kernels: one output vec4 per
//           invocation; when inner % 4 == 0 its 4 elements share (b, c) and z, g are read as vec4s,
//           otherwise lane by lane. 64 invocations per workgroup.
// Dispatch: ceil(B * C / 64), resp. ceil(#outputs / 256) workgroups, folded past 65,535.

struct Radix { pairs: u32, channels: u32, radix: u32 }
struct Attend { n: u32, channels: u32, inner: u32, radix: u32 }

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> s: array<f32>;
@group(0) @binding(3) var<uniform> p: Radix;

// @include flat

fn base_of(pair: u32) -> u32 {
  let b = pair / p.channels;
  return b * p.radix * p.channels + (pair - b * p.channels);
}

@compute @workgroup_size(64)
fn radix_softmax(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let pair = flat(wid, nwg, lid);
  if (pair >= p.pairs) { return; }
  let base = base_of(pair);
  var mx = x[base];
  for (var k = 1u; k < p.radix; k++) { mx = max(mx, x[base + k * p.channels]); }
  var total = 0.0;
  for (var k = 0u; k < p.radix; k++) { total += exp(x[base + k * p.channels] - mx); }
  for (var k = 0u; k < p.radix; k++) {
    let at = base + k * p.channels;
    out[at] = exp(x[at] - mx) / total;
  }
}

// x: the output gradient, s: the softmax output.
@compute @workgroup_size(64)
fn radix_softmax_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let pair = flat(wid, nwg, lid);
  if (pair >= p.pairs) { return; }
  let base = base_of(pair);
  var dot = 0.0;
  for (var k = 0u; k < p.radix; k++) {
    let at = base + k * p.channels;
    dot += x[at] * s[at];
  }
  for (var k = 0u; k < p.radix; k++) {
    let at = base + k * p.channels;
    out[at] = s[at] * (x[at] - dot);
  }
}

@group(0) @binding(0) var<storage, read_write> dst: array<vec4f>;
@group(0) @binding(1) var<storage, read> src: array<vec4f>;
@group(0) @binding(2) var<storage, read> att: array<f32>;
@group(0) @binding(3) var<uniform> q: Attend;

fn scalar(e: u32) -> f32 {
  return src[e / 4u][e % 4u];
}

// For output element e of attend ([B, C, inner]): (z channel of split 0, position in the plane);
// split k's channel is that + k*C.
fn attend_source(e: u32) -> vec2u {
  let j = e % q.inner;
  let c = (e / q.inner) % q.channels;
  let b = e / (q.inner * q.channels);
  return vec2u(b * q.radix * q.channels + c, j);
}

// For dz element e ([B, R*C, inner]): (its z channel, the start of the matching g element).
fn split_source(e: u32) -> vec2u {
  let zc = e / q.inner;
  let b = zc / (q.channels * q.radix);
  return vec2u(zc, (b * q.channels + zc % q.channels) * q.inner + e % q.inner);
}

// out: [B, C, inner], src = z: [B, R*C, inner].
@compute @workgroup_size(64)
fn attend(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (4u * i >= q.n) { return; }
  var r = vec4f(0.0);
  if (q.inner % 4u == 0u) {
    let at = attend_source(4u * i);
    for (var k = 0u; k < q.radix; k++) {
      let zc = at.x + k * q.channels;
      r += att[zc] * src[(zc * q.inner + at.y) / 4u];
    }
  } else {
    for (var l = 0u; l < 4u; l++) {
      let at = attend_source(min(4u * i + l, q.n - 1u));
      for (var k = 0u; k < q.radix; k++) {
        let zc = at.x + k * q.channels;
        r[l] += att[zc] * scalar(zc * q.inner + at.y);
      }
    }
  }
  store4(&dst, i, q.n, r);
}

// dst = dz: [B, R*C, inner], src = g: [B, C, inner]; q.n counts dz's elements.
@compute @workgroup_size(64)
fn attend_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (4u * i >= q.n) { return; }
  var r = vec4f(0.0);
  if (q.inner % 4u == 0u) {
    let at = split_source(4u * i);
    r = att[at.x] * src[at.y / 4u];
  } else {
    for (var l = 0u; l < 4u; l++) {
      let at = split_source(min(4u * i + l, q.n - 1u));
      r[l] = att[at.x] * scalar(at.y);
    }
  }
  store4(&dst, i, q.n, r);
}
