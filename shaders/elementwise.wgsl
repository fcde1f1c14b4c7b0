// Elementwise kernels over flat f32 arrays, RUN vec4s (4 * RUN elements) per invocation.
//
// Math:     fill: out = value;  affine: out = alpha * x + beta;  relu: out = max(x, 0);
//           binary (override OP, one of the OP_ codes below): OP_ADD a + b, OP_SUB a - b, OP_MUL a * b,
//           OP_RELU_BACKWARD a * (b > 0) (ReLU's gradient a at input b);
//           accumulate: out += x;  leaky_relu: out = x > 0 ? x : slope * x;
//           leaky_relu_backward: out = b > 0 ? a : slope * a (a = g, b = the input).
// Tiling:   RUN vec4s per invocation (vec4 loads: a CPU adapter's cost is per load, not per
//           float; and per workgroup, so one vec4 per invocation costs a workgroup per 64 of them),
//           64 invocations per workgroup: workgroup w covers vec4s
//           [512 w, 512 (w + 1)), lane l the vec4s 512 w + 64 k + l (neighbouring lanes, neighbouring
//           vec4s). Bindings are rounded up to 16 bytes (the engine's allocations always have that
//           slack); the last vec4 writes only its first n % 4 lanes.
// Dispatch: ceil(n / 4 / RUN) invocations, folded into (x, y) by the host past 65,535 workgroups.

struct Fill { n: u32, value: f32 }
struct Affine { n: u32, alpha: f32, beta: f32 }
struct Size { n: u32 }
struct Leaky { n: u32, slope: f32 }

@group(0) @binding(0) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(1) var<storage, read> a: array<vec4f>;
@group(0) @binding(2) var<storage, read> b: array<vec4f>;
@group(0) @binding(3) var<uniform> fill_p: Fill;
@group(0) @binding(3) var<uniform> affine_p: Affine;
@group(0) @binding(3) var<uniform> size_p: Size;
@group(0) @binding(3) var<uniform> leaky_p: Leaky;

override OP: u32 = 0u;
// binary's operations; the host passes OP by these names (src/ops/elementwise.ts).
const OP_ADD: u32 = 0u;
const OP_SUB: u32 = 1u;
const OP_MUL: u32 = 2u;
const OP_RELU_BACKWARD: u32 = 3u;

// @include flat

const RUN: u32 = 8u;

// The k-th vec4 of this invocation.
fn vec4_index(wid: vec3u, nwg: vec3u, lid: u32, k: u32) -> u32 {
  return ((wid.x + wid.y * nwg.x) * RUN + k) * 64u + lid;
}

@compute @workgroup_size(64)
fn fill(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  for (var k = 0u; k < RUN; k++) { store4(&out, vec4_index(wid, nwg, lid, k), fill_p.n, vec4f(fill_p.value)); }
}

@compute @workgroup_size(64)
fn affine(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  for (var k = 0u; k < RUN; k++) {
    let i = vec4_index(wid, nwg, lid, k);
    if (4u * i < affine_p.n) { store4(&out, i, affine_p.n, affine_p.alpha * x[i] + affine_p.beta); }
  }
}

@compute @workgroup_size(64)
fn relu(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  for (var k = 0u; k < RUN; k++) {
    let i = vec4_index(wid, nwg, lid, k);
    if (4u * i < size_p.n) { store4(&out, i, size_p.n, max(x[i], vec4f(0.0))); }
  }
}

@compute @workgroup_size(64)
fn binary(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  for (var k = 0u; k < RUN; k++) {
    let i = vec4_index(wid, nwg, lid, k);
    if (4u * i >= size_p.n) { return; }
    let u = a[i];
    let v = b[i];
    var r: vec4f;
    switch OP {
      case OP_ADD: { r = u + v; }
      case OP_SUB: { r = u - v; }
      case OP_MUL: { r = u * v; }
      // WGSL wants a default; OP takes only the codes above.
      case OP_RELU_BACKWARD, default: { r = select(vec4f(0.0), u, v > vec4f(0.0)); }
    }
    store4(&out, i, size_p.n, r);
  }
}

@compute @workgroup_size(64)
fn accumulate(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  for (var k = 0u; k < RUN; k++) {
    let i = vec4_index(wid, nwg, lid, k);
    if (4u * i < size_p.n) { store4(&out, i, size_p.n, out[i] + x[i]); }
  }
}

@compute @workgroup_size(64)
fn leaky_relu(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  for (var k = 0u; k < RUN; k++) {
    let i = vec4_index(wid, nwg, lid, k);
    if (4u * i < leaky_p.n) { store4(&out, i, leaky_p.n, select(leaky_p.slope * x[i], x[i], x[i] > vec4f(0.0))); }
  }
}

@compute @workgroup_size(64)
fn leaky_relu_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  for (var k = 0u; k < RUN; k++) {
    let i = vec4_index(wid, nwg, lid, k);
    if (4u * i < leaky_p.n) { store4(&out, i, leaky_p.n, select(leaky_p.slope * a[i], a[i], b[i] > vec4f(0.0))); }
  }
}
