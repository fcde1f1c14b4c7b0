// 2-D convolution, NCHW, stride 1, zero padding, groups, optional bias.
//
// Math:     out[b,o,y,x] = bias[o] + sum_{i<Cin/G, ky, kx} w[o,i,ky,kx] * in[b, g*Cin/G + i, y+ky-pad, x+kx-pad],
//           g = o / (Cout/G). Weights are [Cout, Cin/G, K, K] (PyTorch); `pack_weight` first lays them out
//           as packed[g][i][ky*K+kx][o padded to a multiple of 16] so one vec4 load gives 4 output channels.
//           The input gradient is this same forward on the output gradient with weights packed
//           transposed and flipped (`transposed` = 1) and padding K-1-pad.
//           weight_grad: dw[o,i,ky,kx] = sum_{b,y,x} dout[b,o,y,x] * in[b, g*Cin/G+i, y+ky-pad, x+kx-pad].
// Tiling:   forward: each invocation computes a tile of 16 output channels x 8 adjacent output columns
//           (128 sums). Per input channel and kernel row it loads 8+K-1 input values once and 4 vec4
//           weights per tap (the loads, not the arithmetic, bound a CPU adapter; measured on
//           lavapipe: 16x8 beat 8x4, 16x4 and 16x16). An epilogue can fold an eval-mode BatchNorm,
//           a residual add and a ReLU into the store.
//           K is an override constant, so the tap loops unroll. With the `subgroups` feature the four
//           weight vectors of a tap are loaded by lanes 0-3 of the subgroup (subgroup_invocation_id)
//           and broadcast. Every lane of a workgroup shares the output-channel tile and the loops are
//           branch-free, so this holds for any lane layout; lanes 0-3 are active because the engine
//           enables subgroups only where they have 4 to 64 lanes, whole subgroups of a 64-invocation
//           workgroup (Gpu.open).
//           weight_grad: each invocation computes 8 output channels x K*K taps of one input channel,
//           walking the batch and the image in runs of 4 columns (dout 8x4, shared through the
//           subgroup where its lanes share a block, see weight_grad; input K rows of 4+K-1).
// Dispatch: 64-invocation workgroups. forward: (ceil(Hout * ceil(Wout/8) / 64), tiles, B), tiles =
//           G * ceil((Cout/G)/16). weight_grad, with L = lanes_per_block: L >= 64: (ceil((Cin/G)/64),
//           blocks, 1); L < 64: (1, ceil(blocks / (64/L)), 1), blocks = G * ceil((Cout/G)/8).
//           pack_weight: ceil(#packed / 64), folded past the per-dimension limit.

// Epilogue flags: out = relu?(acc * scale[o] (if has_scale) + bias[o] (if has_bias) + res (if has_res)).
// scale/bias fold an eval-mode BatchNorm into the convolution (inference only).
struct Conv {
  batch: u32, cin: u32, h: u32, w: u32,
  cout: u32, hout: u32, wout: u32, groups: u32,
  pad: u32, has_bias: u32, oc_blocks: u32, x_blocks: u32,
  out_pad: u32, has_scale: u32, has_res: u32, relu: u32,
  lanes_per_block: u32,
}

struct Pack { groups: u32, in_g: u32, out_g: u32, out_pad: u32, transposed: u32 }

override K: u32 = 3u;
const KMAX: u32 = 7u;
const TX: u32 = 8u;   // forward: output columns per invocation
const TW: u32 = 4u;   // weight_grad: columns per run

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> packed: array<vec4f>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<uniform> p: Conv;
@group(0) @binding(5) var<storage, read> scale: array<f32>;
@group(0) @binding(6) var<storage, read> res: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read> w_src: array<f32>;
@group(0) @binding(4) var<uniform> pack_p: Pack;

// @include flat

// The 16 packed weights of one tap for an output-channel block, as 4 columns of 4 channels.
fn tap_weights(wi: u32) -> mat4x4f {
  return mat4x4f(packed[wi], packed[wi + 1u], packed[wi + 2u], packed[wi + 3u]);
}

@compute @workgroup_size(64)
fn forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_index) lid: u32,
// @if subgroups
  @builtin(subgroup_invocation_id) sid: u32,
// @endif
) {
  // The output-channel block and the sample come from the workgroup id alone, so every weight
  // address is uniform across the workgroup (a compiler can load it once for all lanes), and every
  // subgroup, whatever its size and lanes, shares the block.
  let pos = wid.x * 64u + lid;
  let ob = wid.y;
  let b = wid.z;
  let in_range = pos < p.hout * p.x_blocks;
  let xb = pos % p.x_blocks;
  let y = min(pos / p.x_blocks, p.hout - 1u);
  let cin_g = p.cin / p.groups;
  let cout_g = p.cout / p.groups;
  let blocks_per_group = p.out_pad / 16u;
  let g = ob / blocks_per_group;
  let ol0 = (ob % blocks_per_group) * 16u;
  let x0 = i32(xb * TX) - i32(p.pad);
  let wv = p.out_pad / 4u;
  var acc: array<array<vec4f, 4>, TX>;
  var seg: array<f32, TX + KMAX - 1u>;
  for (var i = 0u; i < cin_g; i++) {
    let plane = (b * p.cin + g * cin_g + i) * p.h;
    let wrow = (g * cin_g + i) * K * K;
    for (var ky = 0u; ky < K; ky++) {
      let iy = i32(y + ky) - i32(p.pad);
      let yok = iy >= 0 && iy < i32(p.h);
      let row = (plane + u32(clamp(iy, 0, i32(p.h) - 1))) * p.w;
      for (var j = 0u; j < TX + K - 1u; j++) {
        let ix = x0 + i32(j);
        let inside = yok && ix >= 0 && ix < i32(p.w);
        seg[j] = select(0.0, inp[row + u32(clamp(ix, 0, i32(p.w) - 1))], inside);
      }
      for (var kx = 0u; kx < K; kx++) {
        let wi = (wrow + ky * K + kx) * wv + ol0 / 4u;
// @if subgroups
        let wl = packed[wi + (sid & 3u)];
        let w = mat4x4f(subgroupBroadcast(wl, 0u), subgroupBroadcast(wl, 1u), subgroupBroadcast(wl, 2u), subgroupBroadcast(wl, 3u));
// @else
        let w = tap_weights(wi);
// @endif
        for (var c = 0u; c < TX; c++) {
          let v = seg[c + kx];
          acc[c][0] += v * w[0];
          acc[c][1] += v * w[1];
          acc[c][2] += v * w[2];
          acc[c][3] += v * w[3];
        }
      }
    }
  }
  if (!in_range) { return; }
  let xo = xb * TX;
  for (var j = 0u; j < 16u; j++) {
    let ol = ol0 + j;
    if (ol >= cout_g) { break; }
    let o = g * cout_g + ol;
    var sv = 1.0;
    if (p.has_scale != 0u) { sv = scale[o]; }
    var bv = 0.0;
    if (p.has_bias != 0u) { bv = bias[o]; }
    let base = ((b * p.cout + o) * p.hout + y) * p.wout;
    for (var c = 0u; c < TX; c++) {
      if (xo + c >= p.wout) { break; }
      var v = acc[c][j / 4u][j % 4u] * sv + bv;
      if (p.has_res != 0u) { v += res[base + xo + c]; }
      if (p.relu != 0u) { v = max(v, 0.0); }
      out[base + xo + c] = v;
    }
  }
}

// packed[((g*in_g + i)*K*K + tap)*out_pad + ol] = w[g*out_g + ol, i, tap] (forward), or, for the
// input gradient (w is the forward weight [G*in_g, out_g, K, K]), w[g*in_g + i, ol, K*K-1-tap]; 0 past out_g.
@compute @workgroup_size(64)
fn pack_weight(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let id = flat(wid, nwg, lid);
  let q = pack_p;
  let kk = K * K;
  if (id >= q.groups * q.in_g * kk * q.out_pad) { return; }
  let ol = id % q.out_pad;
  let tap = (id / q.out_pad) % kk;
  let gi = id / (q.out_pad * kk);
  let i = gi % q.in_g;
  let g = gi / q.in_g;
  if (ol >= q.out_g) {
    out[id] = 0.0;
  } else if (q.transposed == 0u) {
    out[id] = w_src[((g * q.out_g + ol) * q.in_g + i) * kk + tap];
  } else {
    out[id] = w_src[((g * q.in_g + i) * q.out_g + ol) * kk + (kk - 1u - tap)];
  }
}

// The output gradient of channels ol0 .. ol0+7 (of cout_g in group g) at columns x0 .. x0+TW-1 of
// row y, loaded by this invocation alone: d[c][0] holds channels ol0 .. ol0+3 at column x0 + c,
// d[c][1] the next 4; 0 past the group's channels and the row's end.
fn dout_run(b: u32, g: u32, cout_g: u32, ol0: u32, y: u32, x0: u32) -> array<array<vec4f, 2>, TW> {
  var d: array<array<vec4f, 2>, TW>;
  for (var c = 0u; c < TW; c++) {
    for (var j = 0u; j < 8u; j++) {
      let at = ((b * p.cout + g * cout_g + min(ol0 + j, cout_g - 1u)) * p.hout + y) * p.wout + min(x0 + c, p.wout - 1u);
      d[c][j / 4u][j % 4u] = select(0.0, dout[at], ol0 + j < cout_g && x0 + c < p.wout);
    }
  }
  return d;
}

// Uses Conv with the forward convolution's shapes; out is dw [Cout, Cin/G, K, K]. Lanes are input
// channels, `lanes_per_block` of them (Cin/G rounded up to the adapter's largest subgroup size, or
// 64 and more) per block of 8 output channels. With lanes_per_block >= 64 a workgroup is one block
// (x ids walk the input channels); below, a workgroup holds 64 / lanes_per_block blocks.
// With subgroups, a subgroup whose lanes all work on one block shares the block's output-gradient
// values: lanes 0-3 load two channels each and broadcast them. Whether a subgroup covers one block
// depends on how the adapter groups invocations into subgroups (WebGPU promises no layout), so the
// kernel checks it and a subgroup that spans blocks loads per lane.
@compute @workgroup_size(64)
fn weight_grad(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_index) lid: u32,
// @if subgroups
  @builtin(subgroup_invocation_id) sid: u32,
// @endif
) {
  let cin_g = p.cin / p.groups;
  let cout_g = p.cout / p.groups;
  let oblocks = (cout_g + 7u) / 8u;
  let span = min(p.lanes_per_block, 64u);
  let i = wid.x * 64u + lid % span;
  let blk = min(wid.y * (64u / span) + lid / span, p.groups * oblocks - 1u);
  let g = blk / oblocks;
  let ol0 = (blk % oblocks) * 8u;
  let ci = g * cin_g + min(i, cin_g - 1u);
// @if subgroups
  // Sharing needs lanes 0-3 active and one block across the subgroup.
  let share = (subgroupBallot(true).x & 15u) == 15u && subgroupAll(blk == subgroupBroadcastFirst(blk));
// @endif
  var acc: array<array<vec4f, 2>, KMAX * KMAX>;
  var seg: array<f32, TW + KMAX - 1u>;
  for (var b = 0u; b < p.batch; b++) {
    let plane = (b * p.cin + ci) * p.h;
    for (var y = 0u; y < p.hout; y++) {
      for (var x0 = 0u; x0 < p.wout; x0 += TW) {
        // d[c]: the output gradient of the 8 channels at column x0 + c (see dout_run).
// @if subgroups
        // Lane j (of 0-3) loads channels j and 4 + j; every lane takes all 8 from the subgroup.
        let j = sid & 3u;
        let row_lo = ((b * p.cout + g * cout_g + min(ol0 + j, cout_g - 1u)) * p.hout + y) * p.wout;
        let row_hi = ((b * p.cout + g * cout_g + min(ol0 + 4u + j, cout_g - 1u)) * p.hout + y) * p.wout;
        var d: array<array<vec4f, 2>, TW>;
        for (var c = 0u; c < TW; c++) {
          let x = min(x0 + c, p.wout - 1u);
          let lo = select(0.0, dout[row_lo + x], ol0 + j < cout_g && x0 + c < p.wout);
          let hi = select(0.0, dout[row_hi + x], ol0 + 4u + j < cout_g && x0 + c < p.wout);
          d[c][0] = vec4f(subgroupBroadcast(lo, 0u), subgroupBroadcast(lo, 1u), subgroupBroadcast(lo, 2u), subgroupBroadcast(lo, 3u));
          d[c][1] = vec4f(subgroupBroadcast(hi, 0u), subgroupBroadcast(hi, 1u), subgroupBroadcast(hi, 2u), subgroupBroadcast(hi, 3u));
        }
        if (!share) { d = dout_run(b, g, cout_g, ol0, y, x0); }
// @else
        let d = dout_run(b, g, cout_g, ol0, y, x0);
// @endif
        for (var ky = 0u; ky < K; ky++) {
          let iy = i32(y + ky) - i32(p.pad);
          let yok = iy >= 0 && iy < i32(p.h);
          let row = (plane + u32(clamp(iy, 0, i32(p.h) - 1))) * p.w;
          for (var jx = 0u; jx < TW + K - 1u; jx++) {
            let ix = i32(x0 + jx) - i32(p.pad);
            seg[jx] = select(0.0, inp[row + u32(clamp(ix, 0, i32(p.w) - 1))], yok && ix >= 0 && ix < i32(p.w));
          }
          for (var kx = 0u; kx < K; kx++) {
            let tap = ky * K + kx;
            var s0 = acc[tap][0];
            var s1 = acc[tap][1];
            for (var c = 0u; c < TW; c++) {
              s0 += seg[c + kx] * d[c][0];
              s1 += seg[c + kx] * d[c][1];
            }
            acc[tap][0] = s0;
            acc[tap][1] = s1;
          }
        }
      }
    }
  }
  if (i >= cin_g || wid.y * (64u / span) + lid / span >= p.groups * oblocks) { return; }
  let kk = K * K;
  for (var jj = 0u; jj < 8u; jj++) {
    let ol = ol0 + jj;
    if (ol >= cout_g) { break; }
    let base = ((g * cout_g + ol) * cin_g + i) * kk;
    for (var tap = 0u; tap < kk; tap++) { out[base + tap] = acc[tap][jj / 4u][jj % 4u]; }
  }
}
