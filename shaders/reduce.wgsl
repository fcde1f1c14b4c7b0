// Per-channel reductions over NCHW tensors viewed as [batch, channels, inner].
//
// Math:     channel_sum: out[c] = scale * sum_{b < batch, i < inner} f(b, c, i), idx = (b * channels + c) * inner + i,
//           MODE 0: x[idx]                 (bias gradient, global average pooling)
//           MODE 1: x[idx] * y[idx]        (per-channel dot products)
//           MODE 2: |x[idx] - y[idx]|      (L1 loss, channels = 1)
//           moments: out[c] = mean of x over (b, i), out2[c] = mean of (x - out[c])^2  (biased
//                    variance, two passes over the channel inside one workgroup: exact centring)
//           bn_backward: out[c] = sum g, out2[c] = sum g * (x - m[c])   (g in y; one pass; with
//                    `masked`, g counts only where mask > 0: the gradient through a fused ReLU)
//           Operands a kernel does not read are bound to x by the host.
// Tiling:   one workgroup per channel; for each sample its 64 lanes stride over the channel's
//           plane, a vec4 at a time when inner % 4 == 0, then a tree reduction in workgroup memory
//           (barriers between levels).
// Dispatch: `channels` workgroups, folded into (x, y) past 65,535.

struct Reduce { batch: u32, channels: u32, inner: u32, scale: f32, masked: u32 }

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> y: array<vec4f>;
@group(0) @binding(3) var<storage, read> m: array<f32>;
@group(0) @binding(4) var<uniform> p: Reduce;
@group(0) @binding(5) var<storage, read_write> out2: array<f32>;
@group(0) @binding(6) var<storage, read> mask: array<vec4f>;

override MODE: u32 = 0u;
const LANES: u32 = 64u;
var<workgroup> partial: array<vec2f, 64>;

fn scalar(a: ptr<storage, array<vec4f>, read>, e: u32) -> f32 {
  return (*a)[e / 4u][e % 4u];
}

// Sums v over the workgroup; every lane gets the total.
fn workgroup_sum(v: vec2f, lid: u32) -> vec2f {
  partial[lid] = v;
  workgroupBarrier();
  for (var width = LANES / 2u; width > 0u; width = width / 2u) {
    if (lid < width) { partial[lid] = partial[lid] + partial[lid + width]; }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier();
  return total;
}

fn channel_of(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
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
          case 0u: { acc += u; }
          case 1u: { acc += u * y[(start + i) / 4u]; }
          default: { acc += abs(u - y[(start + i) / 4u]); }
        }
      }
    } else {
      for (var i = lid; i < p.inner; i += LANES) {
        let u = scalar(&x, start + i);
        switch MODE {
          case 0u: { acc.x += u; }
          case 1u: { acc.x += u * scalar(&y, start + i); }
          default: { acc.x += abs(u - scalar(&y, start + i)); }
        }
      }
    }
  }
  let total = workgroup_sum(vec2f(acc.x + acc.y + acc.z + acc.w, 0.0), lid);
  if (lid == 0u) { out[c] = total.x * p.scale; }
}

// Sum over the channel of f(x) (and g = y when `with_g`), centred on `centre`:
// returns (sum of x - centre or of g, sum of (x - centre)^2 or of g * (x - centre)).
fn centred_sums(c: u32, lid: u32, centre: f32, with_g: bool) -> vec2f {
  var s = vec4f(0.0);
  var t = vec4f(0.0);
  for (var b = 0u; b < p.batch; b++) {
    let start = (b * p.channels + c) * p.inner;
    if (p.inner % 4u == 0u) {
      for (var i = 4u * lid; i < p.inner; i += 4u * LANES) {
        let d = x[(start + i) / 4u] - centre;
        if (with_g) {
          var g = y[(start + i) / 4u];
          if (p.masked != 0u) { g = select(vec4f(0.0), g, mask[(start + i) / 4u] > vec4f(0.0)); }
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
        if (with_g) {
          var g = scalar(&y, start + i);
          if (p.masked != 0u && scalar(&mask, start + i) <= 0.0) { g = 0.0; }
          s.x += g;
          t.x += g * d;
        } else {
          s.x += d;
          t.x += d * d;
        }
      }
    }
  }
  return vec2f(s.x + s.y + s.z + s.w, t.x + t.y + t.z + t.w);
}

@compute @workgroup_size(64)
fn moments(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = channel_of(wid, nwg);
  if (c >= p.channels) { return; }
  let count = f32(p.batch * p.inner);
  let mean = workgroup_sum(centred_sums(c, lid, 0.0, false), lid).x / count;
  let variance = workgroup_sum(centred_sums(c, lid, mean, false), lid).y / count;
  if (lid == 0u) {
    out[c] = mean;
    out2[c] = variance;
  }
}

@compute @workgroup_size(64)
fn bn_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = channel_of(wid, nwg);
  if (c >= p.channels) { return; }
  let sums = workgroup_sum(centred_sums(c, lid, m[c], true), lid);
  if (lid == 0u) {
    out[c] = sums.x;
    out2[c] = sums.y;
  }
}
