// Matrix product with bias: the dense layer and both of its operand gradients.
//
// Math:     out[m, n] = bias[n] (if has_bias) + sum_k a(m, k) * b(k, n), with a(m, k) = a_mat[m * a_sm
//           + k * a_sk] and b(k, n) = b_mat[k * b_sk + n * b_sn]: the strides say which operand is
//           transposed. dense: x [M, K] times w [K, N] (TensorFlow's layout); its input gradient
//           g w^T (b_sk = 1, b_sn = K); its weight gradient x^T g (a_sm = 1, a_sk = M of the
//           forward). With `accumulate`, out += the product (a parameter's gradient).
// Tiling:   a workgroup of 64 computes a TILE x TILE block of out (32 x 32), each invocation 4 x 4
//           of it (rows r0 + 8 i, columns c0 + 8 j: neighbouring lanes, neighbouring columns). K
//           is walked in chunks of TK = 16: the workgroup stages the chunk's 32 x 16 of a and 16 x 32
//           of b in workgroup memory (4 KiB), one barrier before and after use, so each staged value
//           is loaded from memory once per workgroup and read by 8 invocations. Portable: no
//           subgroups, within WebGPU's default limits.
// Dispatch: (ceil(N / 32), ceil(M / 32), 1) workgroups of 64.

struct Dense {
  m: u32, n: u32, k: u32, a_sm: u32,
  a_sk: u32, b_sk: u32, b_sn: u32, has_bias: u32,
  accumulate: u32,
}

const TILE: u32 = 32u;
const TK: u32 = 16u;
const ACC_SIDE: u32 = 4u; // rows and columns per invocation: TILE / 8

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> a_mat: array<f32>;
@group(0) @binding(2) var<storage, read> b_mat: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<uniform> p: Dense;

var<workgroup> a_tile: array<f32, TILE * TK>; // [row][k]
var<workgroup> b_tile: array<f32, TK * TILE>; // [k][column]

@compute @workgroup_size(64)
fn matmul(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row0 = wid.y * TILE;
  let col0 = wid.x * TILE;
  let lr = lid / 8u;
  let lc = lid % 8u;
  var acc: array<array<f32, ACC_SIDE>, ACC_SIDE>;
  for (var k0 = 0u; k0 < p.k; k0 += TK) {
    // 512 values of each tile, 8 per invocation; 0 past the matrices' edges.
    for (var s = lid; s < TILE * TK; s += 64u) {
      let r = row0 + s / TK;
      let ka = k0 + s % TK;
      a_tile[s] = select(0.0, a_mat[min(r, p.m - 1u) * p.a_sm + min(ka, p.k - 1u) * p.a_sk], r < p.m && ka < p.k);
      let kb = k0 + s / TILE;
      let c = col0 + s % TILE;
      b_tile[s] = select(0.0, b_mat[min(kb, p.k - 1u) * p.b_sk + min(c, p.n - 1u) * p.b_sn], kb < p.k && c < p.n);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      var bv: array<f32, ACC_SIDE>;
      for (var j = 0u; j < ACC_SIDE; j++) { bv[j] = b_tile[kk * TILE + lc + 8u * j]; }
      for (var i = 0u; i < ACC_SIDE; i++) {
        let av = a_tile[(lr + 8u * i) * TK + kk];
        for (var j = 0u; j < ACC_SIDE; j++) { acc[i][j] += av * bv[j]; }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < ACC_SIDE; i++) {
    let r = row0 + lr + 8u * i;
    if (r >= p.m) { break; }
    for (var j = 0u; j < ACC_SIDE; j++) {
      let c = col0 + lc + 8u * j;
      if (c >= p.n) { continue; }
      var v = acc[i][j];
      if (p.has_bias != 0u) { v += bias[c]; }
      if (p.accumulate != 0u) { v += out[r * p.n + c]; }
      out[r * p.n + c] = v;
    }
  }
}
