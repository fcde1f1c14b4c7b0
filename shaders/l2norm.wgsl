// Row-wise L2 normalisation of x [N, D] and its gradient.
//
// Math:     s = sum_d x[d]^2, r = 1 / sqrt(max(s, eps)); forward: y = x * r.
//           backward (g = dL/dy): dx = r * g - (s > eps ? r^3 * (x . g) * x : 0) (where the floor
//           holds, r is a constant).
// Tiling:   one workgroup of 64 per row: lanes stride over D, then a tree sum in workgroup memory
//           (portable: no subgroups); the backward sums s and x . g in the same pass.
// Dispatch: N workgroups, folded past the per-dimension limit.

struct Norm { rows: u32, d: u32, eps: f32 }

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<uniform> p: Norm;

var<workgroup> partial: array<vec2f, 64>;

// The workgroup's sum of every lane's v (a tree in workgroup memory; every lane gets it).
fn workgroup_sum(v: vec2f, lid: u32) -> vec2f {
  partial[lid] = v;
  workgroupBarrier();
  for (var width = 32u; width > 0u; width = width / 2u) {
    if (lid < width) { partial[lid] = partial[lid] + partial[lid + width]; }
    workgroupBarrier();
  }
  return partial[0];
}

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  // Uniform across the workgroup (row is), so the barriers below stay in uniform control flow.
  let live = row < p.rows;
  let base = min(row, max(p.rows, 1u) - 1u) * p.d;
  var s = 0.0;
  for (var i = lid; i < p.d; i += 64u) { s += x[base + i] * x[base + i]; }
  let r = inverseSqrt(max(workgroup_sum(vec2f(s, 0.0), lid).x, p.eps));
  if (!live) { return; }
  for (var i = lid; i < p.d; i += 64u) { out[base + i] = x[base + i] * r; }
}

// out is dx; g the output gradient.
@compute @workgroup_size(64)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  let live = row < p.rows;
  let base = min(row, max(p.rows, 1u) - 1u) * p.d;
  var sums = vec2f(0.0);
  for (var i = lid; i < p.d; i += 64u) { sums += vec2f(x[base + i] * x[base + i], x[base + i] * g[base + i]); }
  let total = workgroup_sum(sums, lid);
  let r = inverseSqrt(max(total.x, p.eps));
  let c = select(0.0, r * r * r * total.y, total.x > p.eps);
  if (!live) { return; }
  for (var i = lid; i < p.d; i += 64u) { out[base + i] = r * g[base + i] - c * x[base + i]; }
}
