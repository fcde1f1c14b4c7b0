// Elementwise kernels over flat f32 arrays.
//
// Math:     fill: out = value;  affine: out = alpha * x + beta;  relu: out = max(x, 0);
//           binary (override OP): 0 a + b, 1 a - b, 2 a * b, 3 a * (b > 0) (ReLU backward, b = input);
//           accumulate: out += x.
// Tiling:   one element per invocation, 64 invocations per workgroup.
// Dispatch: ceil(n / 64) workgroups, folded into (x, y) by the host past 65,535 per dimension;
//           the flat index is (wid.x + wid.y * num_workgroups.x) * 64 + lid.x, bounds-checked by n.

struct Fill { n: u32, value: f32 }
struct Affine { n: u32, alpha: f32, beta: f32 }
struct Size { n: u32 }

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<uniform> fill_p: Fill;
@group(0) @binding(3) var<uniform> affine_p: Affine;
@group(0) @binding(3) var<uniform> size_p: Size;

override OP: u32 = 0u;

fn flat(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * 64u + lid;
}

@compute @workgroup_size(64)
fn fill(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i < fill_p.n) { out[i] = fill_p.value; }
}

@compute @workgroup_size(64)
fn affine(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i < affine_p.n) { out[i] = affine_p.alpha * x[i] + affine_p.beta; }
}

@compute @workgroup_size(64)
fn relu(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i < size_p.n) { out[i] = max(x[i], 0.0); }
}

@compute @workgroup_size(64)
fn binary(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i >= size_p.n) { return; }
  let u = a[i];
  let v = b[i];
  switch OP {
    case 0u: { out[i] = u + v; }
    case 1u: { out[i] = u - v; }
    case 2u: { out[i] = u * v; }
    default: { out[i] = select(0.0, u, v > 0.0); }
  }
}

@compute @workgroup_size(64)
fn accumulate(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i < size_p.n) { out[i] = out[i] + x[i]; }
}
