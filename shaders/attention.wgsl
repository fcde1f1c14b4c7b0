// Radix softmax of split attention (ResNeSt rSoftMax with cardinality 1).
//
// Math:     for each sample b and channel c of C: the R logits x[b, k*C + c], k < R, are replaced by
//           their softmax over k (max-subtracted). Backward: dx_k = s_k * (g_k - sum_j g_j s_j),
//           with s the saved softmax output.
// Tiling:   one (b, c) pair per invocation, 64 per workgroup.
// Dispatch: ceil(B * C / 64) workgroups, folded past 65,535.

struct Radix { pairs: u32, channels: u32, radix: u32 }

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
