// 2-D convolution, NCHW, stride 1, zero padding, groups, optional bias.
//
// Math:     out[b,o,y,x] = bias[o] + sum_{i<Cin/G, ky, kx} w[o,i,ky,kx] * in[b, g*Cin/G + i, y+ky-pad, x+kx-pad],
//           g = o / (Cout/G). Weights are [Cout, Cin/G, K, K] (PyTorch).
//           Input gradient = this same forward on the output gradient with `transpose_weight`'s
//           flipped, transposed weights ([Cin, Cout/G, K, K]) and padding K-1-pad.
//           weight_grad: dw[o,i,ky,kx] = sum_{b,y,x} dout[b,o,y,x] * in[b, g*Cin/G+i, y+ky-pad, x+kx-pad].
// Tiling:   forward: each invocation computes 4 output channels x 4 adjacent output columns (16 sums,
//           8 loads per 16 multiply-adds); weight_grad: one weight per invocation.
// Dispatch: forward: ceil(B * ocBlocks * Hout * ceil(Wout/4) / 64) workgroups, ocBlocks = G * ceil((Cout/G)/4);
//           weight_grad and transpose_weight: ceil(#weights / 64). All folded past 65,535.

struct Conv {
  batch: u32, cin: u32, h: u32, w: u32,
  cout: u32, hout: u32, wout: u32, groups: u32,
  k: u32, pad: u32, has_bias: u32, oc_blocks: u32,
  x_blocks: u32,
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<uniform> p: Conv;
@group(0) @binding(2) var<storage, read> dout: array<f32>;

fn flat(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * 64u + lid;
}

fn input_row(b: u32, ci: u32, iy: i32, x0: i32) -> vec4f {
  let base = i32((b * p.cin + ci) * p.h) + iy;
  let row = u32(base) * p.w;
  var v = vec4f(0.0);
  for (var j = 0; j < 4; j++) {
    let ix = x0 + j;
    if (ix >= 0 && ix < i32(p.w)) { v[j] = inp[row + u32(ix)]; }
  }
  return v;
}

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let id = flat(wid, nwg, lid);
  if (id >= p.batch * p.oc_blocks * p.hout * p.x_blocks) { return; }
  let xb = id % p.x_blocks;
  var t = id / p.x_blocks;
  let y = t % p.hout;
  t = t / p.hout;
  let ob = t % p.oc_blocks;
  let b = t / p.oc_blocks;
  let cin_g = p.cin / p.groups;
  let cout_g = p.cout / p.groups;
  let blocks_per_group = (cout_g + 3u) / 4u;
  let g = ob / blocks_per_group;
  let oc0 = g * cout_g + (ob % blocks_per_group) * 4u;
  let oc_end = (g + 1u) * cout_g;
  let x0 = xb * 4u;
  let kk = p.k * p.k;
  var acc: array<vec4f, 4>;
  for (var i = 0u; i < cin_g; i++) {
    let ci = g * cin_g + i;
    for (var ky = 0u; ky < p.k; ky++) {
      let iy = i32(y + ky) - i32(p.pad);
      if (iy < 0 || iy >= i32(p.h)) { continue; }
      for (var kx = 0u; kx < p.k; kx++) {
        let v = input_row(b, ci, iy, i32(x0 + kx) - i32(p.pad));
        let tap = i * kk + ky * p.k + kx;
        for (var j = 0u; j < 4u; j++) {
          let o = oc0 + j;
          if (o < oc_end) { acc[j] += weight[o * cin_g * kk + tap] * v; }
        }
      }
    }
  }
  for (var j = 0u; j < 4u; j++) {
    let o = oc0 + j;
    if (o >= oc_end) { break; }
    var bv = 0.0;
    if (p.has_bias != 0u) { bv = bias[o]; }
    let row = ((b * p.cout + o) * p.hout + y) * p.wout;
    for (var c = 0u; c < 4u; c++) {
      if (x0 + c < p.wout) { out[row + x0 + c] = acc[j][c] + bv; }
    }
  }
}

// Flipped, transposed weights for the input gradient: wt[ci, ol, ky, kx] = w[g*Cout/G + ol, ci - g*Cin/G, K-1-ky, K-1-kx].
// Uses Conv with cin/cout of the forward convolution.
@group(0) @binding(1) var<storage, read> w_src: array<f32>;

@compute @workgroup_size(64)
fn transpose_weight(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let id = flat(wid, nwg, lid);
  let kk = p.k * p.k;
  let cin_g = p.cin / p.groups;
  let cout_g = p.cout / p.groups;
  if (id >= p.cin * cout_g * kk) { return; }
  let tap = id % kk;
  let ol = (id / kk) % cout_g;
  let ci = id / (kk * cout_g);
  let g = ci / cin_g;
  let ky = tap / p.k;
  let kx = tap % p.k;
  let src_tap = (p.k - 1u - ky) * p.k + (p.k - 1u - kx);
  out[id] = w_src[((g * cout_g + ol) * cin_g + (ci - g * cin_g)) * kk + src_tap];
}

@compute @workgroup_size(64)
fn weight_grad(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let id = flat(wid, nwg, lid);
  let kk = p.k * p.k;
  let cin_g = p.cin / p.groups;
  let cout_g = p.cout / p.groups;
  if (id >= p.cout * cin_g * kk) { return; }
  let tap = id % kk;
  let i = (id / kk) % cin_g;
  let o = id / (kk * cin_g);
  let ci = (o / cout_g) * cin_g + i;
  let dy = i32(tap / p.k) - i32(p.pad);
  let dx = i32(tap % p.k) - i32(p.pad);
  let y_lo = u32(max(0, -dy));
  let y_hi = u32(clamp(i32(p.h) - dy, 0, i32(p.hout)));
  let x_lo = u32(max(0, -dx));
  let x_hi = u32(clamp(i32(p.w) - dx, 0, i32(p.wout)));
  var acc = 0.0;
  for (var b = 0u; b < p.batch; b++) {
    for (var y = y_lo; y < y_hi; y++) {
      let grow = ((b * p.cout + o) * p.hout + y) * p.wout;
      let irow = ((b * p.cin + ci) * p.h + u32(i32(y) + dy)) * p.w;
      for (var x = x_lo; x < x_hi; x++) {
        acc += dout[grow + x] * inp[irow + u32(i32(x) + dx)];
      }
    }
  }
  out[id] = acc;
}
