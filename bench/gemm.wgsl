// Reference GEMM for the benchmark's "practical peak" column: C[M, N] = A[M, K] * B[K, N], f32,
// row-major. Each invocation computes a 4 x 8 tile of C (two vec4 columns), reading per k four
// scalars of A and two vec4s of B: the same register tiling and load mix the conv kernels use,
// without any convolution index arithmetic or padding. Not used by the engine.
// Dispatch: (N / 8, M / 4) invocations, in workgroups of 8 x 8.

struct Gemm { m: u32, n: u32, k: u32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> c: array<vec4f>;
@group(0) @binding(3) var<uniform> p: Gemm;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let col = gid.x * 2u;          // in vec4 units
  let row = gid.y * 4u;
  if (col * 4u >= p.n || row >= p.m) { return; }
  let nv = p.n / 4u;
  var acc: array<array<vec4f, 2>, 4>;
  for (var kk = 0u; kk < p.k; kk++) {
    let b0 = b[kk * nv + col];
    let b1 = b[kk * nv + col + 1u];
    for (var r = 0u; r < 4u; r++) {
      let av = a[(row + r) * p.k + kk];
      acc[r][0] += av * b0;
      acc[r][1] += av * b1;
    }
  }
  for (var r = 0u; r < 4u; r++) {
    c[(row + r) * nv + col] = acc[r][0];
    c[(row + r) * nv + col + 1u] = acc[r][1];
  }
}
