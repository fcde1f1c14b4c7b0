// The weight gradient of conv2d (conv2d.wgsl): NCHW, any stride, zero padding per side, groups.
//
// Math:     dw[o,i,ky,kx] = sum_{b,y,x} dout[b,o,y,x] * in[b, g*Cin/G+i, y*stride+ky-pad_y, x*stride+kx-pad_x],
//           g = o / (Cout/G).
//           Split-K: the (b, y) rows are cut into chunks of `rows_per_chunk`; chunk z writes its
//           partial sums to part[z] and `sum_partials` adds the chunks (one chunk: dw directly).
// Tiling:   each invocation computes 8 output channels x K*K taps of one input channel (of TI1 = 4
//           input channels for 1x1 kernels: each broadcast output-gradient value then feeds 4
//           products instead of 1) over its chunk,
//           walking each row in runs of TW columns (dout 8 x TW, input K rows of TW+K-1; strided,
//           each tap's TW inputs stride apart instead, in the STRIDED pipeline).
//           Lanes are input channels (1x1: groups of 4), `lanes_per_block` of them (their count
//           rounded up to the adapter's largest subgroup size, or WG and more) per block of 8
//           output channels. With lanes_per_block >= WG a workgroup is one block (x ids walk the
//           input channels); below, a workgroup holds WG / lanes_per_block blocks.
//           With subgroups, a subgroup whose lanes all work on one block shares the block's output
//           gradient: lanes 0-3 load two channels each and broadcast them. Whether a subgroup
//           covers one block depends on how the adapter groups invocations (WebGPU promises no
//           layout), so the kernel checks it and a subgroup that spans blocks loads per lane.
// Variants: TW and WG are rewritten per variant by src/ops/conv2d-variants.ts (the values below are
//           the default), which also picks the chunking (split-K pays on small maps and batches).
//           TW = 8 is not offered: its output gradient no longer fits in registers. Which wins
//           where: docs/performance.md.
// Dispatch: WG-invocation workgroups. weight_grad, with L = lanes_per_block: L >= WG:
//           (ceil(lanes/WG), blocks, chunks) (lanes: Cin/G, 1x1: ceil((Cin/G)/4)); L < WG:
//           (1, ceil(blocks / (WG/L)), chunks), blocks = G * ceil((Cout/G)/8).
//           sum_partials: ceil(#dw / 64).

struct WeightGrad {
  batch: u32, cin: u32, h: u32, w: u32,
  cout: u32, hout: u32, wout: u32, groups: u32,
  pad_y: u32, pad_x: u32, stride: u32, lanes_per_block: u32,
  rows_per_chunk: u32, size: u32, accumulate: u32,
}

struct Partials { size: u32, chunks: u32, accumulate: u32 }

override K: u32 = 3u;
// Set where the stride is not 1 (see conv2d.wgsl's STRIDED: stride 1 keeps its own pipeline).
override STRIDED: bool = false;
// @include conv_limits
// Output channels per lane (a block): two vec4 accumulators per tap, as the code below is written
// (the subgroup path loads them as lo and hi).
const OC: u32 = 8u;
// Input channels per lane: TI1 for 1x1 kernels (each broadcast output-gradient value then feeds
// TI1 products instead of one), 1 otherwise (K*K taps' accumulators already fill the registers).
const TI1: u32 = 4u;
const TW: u32 = 4u;
const WG: u32 = 64u;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<uniform> p: WeightGrad;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(3) var<uniform> sum_p: Partials;

// @include flat

// The output gradient of channels ol0 .. ol0+7 (of cout_g in group g) at columns x0 .. x0+TW-1 of
// row y, loaded by this invocation alone: d[c][0] holds channels ol0 .. ol0+3 at column x0 + c,
// d[c][1] the next 4; 0 past the group's channels and the row's end.
fn dout_run(b: u32, g: u32, cout_g: u32, ol0: u32, y: u32, x0: u32) -> array<array<vec4f, 2>, TW> {
  var d: array<array<vec4f, 2>, TW>;
  for (var c = 0u; c < TW; c++) {
    for (var j = 0u; j < OC; j++) {
      let at = ((b * p.cout + g * cout_g + min(ol0 + j, cout_g - 1u)) * p.hout + y) * p.wout + min(x0 + c, p.wout - 1u);
      d[c][j / 4u][j % 4u] = select(0.0, dout[at], ol0 + j < cout_g && x0 + c < p.wout);
    }
  }
  return d;
}

// out is dw [Cout, Cin/G, K, K], or the partial sums [chunks][Cout, Cin/G, K, K] (size = #dw).
// With `accumulate`, dw is added into out (a parameter's gradient) instead of replacing it.
@compute @workgroup_size(WG)
fn weight_grad(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_index) lid: u32,
// @if subgroups
  @builtin(subgroup_invocation_id) sid: u32,
// @endif
) {
  let cin_g = p.cin / p.groups;
  let cout_g = p.cout / p.groups;
  let oblocks = (cout_g + OC - 1u) / OC;
  let ti = select(1u, TI1, K == 1u);
  let span = min(p.lanes_per_block, WG);
  // This lane's input channels are i * ti .. i * ti + ti - 1 (those past cin_g read channel
  // cin_g - 1, count 0 and are not stored).
  let i = wid.x * WG + lid % span;
  let blk = min(wid.y * (WG / span) + lid / span, p.groups * oblocks - 1u);
  let g = blk / oblocks;
  let ol0 = (blk % oblocks) * OC;
  let ci = g * cin_g + min(i * ti, cin_g - 1u);
  let r0 = wid.z * p.rows_per_chunk;
  let r1 = min(r0 + p.rows_per_chunk, p.batch * p.hout);
// @if subgroups
  // Sharing needs lanes 0-3 active and one block across the subgroup.
  let share = (subgroupBallot(true).x & 15u) == 15u && subgroupAll(blk == subgroupBroadcastFirst(blk));
// @endif
  // acc[tap * ti + t]: input channel i * ti + t at tap.
  var acc: array<array<vec4f, 2>, KMAX * KMAX>;
  var seg: array<array<f32, TW + KMAX - 1u>, TI1>;
  for (var r = r0; r < r1; r++) {
    let b = r / p.hout;
    let y = r % p.hout;
    let plane = (b * p.cin + ci) * p.h;
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
        // Only lanes 0-3 load (a CPU adapter runs a load lane by lane, skipping inactive lanes).
        var lo = 0.0;
        var hi = 0.0;
        if (sid < 4u && x0 + c < p.wout) {
          lo = select(0.0, dout[row_lo + x], ol0 + j < cout_g);
          hi = select(0.0, dout[row_hi + x], ol0 + 4u + j < cout_g);
        }
        d[c][0] = vec4f(subgroupBroadcast(lo, 0u), subgroupBroadcast(lo, 1u), subgroupBroadcast(lo, 2u), subgroupBroadcast(lo, 3u));
        d[c][1] = vec4f(subgroupBroadcast(hi, 0u), subgroupBroadcast(hi, 1u), subgroupBroadcast(hi, 2u), subgroupBroadcast(hi, 3u));
      }
      if (!share) { d = dout_run(b, g, cout_g, ol0, y, x0); }
// @else
      let d = dout_run(b, g, cout_g, ol0, y, x0);
// @endif
      for (var ky = 0u; ky < K; ky++) {
        let iy = i32(y * p.stride + ky) - i32(p.pad_y);
        let yok = iy >= 0 && iy < i32(p.h);
        if (STRIDED) {
          // Strided: each input loaded where it is used (a run's taps share no inputs to reuse).
          for (var t = 0u; t < ti; t++) {
            let live = i * ti + t < cin_g;
            let row = (plane + select(0u, t * p.h, live) + u32(clamp(iy, 0, i32(p.h) - 1))) * p.w;
            for (var kx = 0u; kx < K; kx++) {
              let at = (ky * K + kx) * ti + t;
              for (var c = 0u; c < TW; c++) {
                let ix = i32((x0 + c) * p.stride + kx) - i32(p.pad_x);
                let v = select(0.0, inp[row + u32(clamp(ix, 0, i32(p.w) - 1))], live && yok && ix >= 0 && ix < i32(p.w));
                acc[at][0] += v * d[c][0];
                acc[at][1] += v * d[c][1];
              }
            }
          }
          continue;
        }
        for (var t = 0u; t < ti; t++) {
          let live = i * ti + t < cin_g;
          let row = (plane + select(0u, t * p.h, live) + u32(clamp(iy, 0, i32(p.h) - 1))) * p.w;
          for (var jx = 0u; jx < TW + K - 1u; jx++) {
            let ix = i32(x0 + jx) - i32(p.pad_x);
            seg[t][jx] = select(0.0, inp[row + u32(clamp(ix, 0, i32(p.w) - 1))], live && yok && ix >= 0 && ix < i32(p.w));
          }
        }
        for (var kx = 0u; kx < K; kx++) {
          for (var t = 0u; t < ti; t++) {
            let at = (ky * K + kx) * ti + t;
            var s0 = acc[at][0];
            var s1 = acc[at][1];
            for (var c = 0u; c < TW; c++) {
              s0 += seg[t][c + kx] * d[c][0];
              s1 += seg[t][c + kx] * d[c][1];
            }
            acc[at][0] = s0;
            acc[at][1] = s1;
          }
        }
      }
    }
  }
  // Lanes past the workgroup's whole blocks (WG not a multiple of span) repeat the next workgroup's
  // first lanes: only that workgroup stores (a second store would add twice with `accumulate`).
  if (i * ti >= cin_g || lid >= (WG / span) * span || wid.y * (WG / span) + lid / span >= p.groups * oblocks) { return; }
  let kk = K * K;
  for (var t = 0u; t < ti; t++) {
    if (i * ti + t >= cin_g) { break; }
    for (var jj = 0u; jj < OC; jj++) {
      let ol = ol0 + jj;
      if (ol >= cout_g) { break; }
      let base = wid.z * p.size + ((g * cout_g + ol) * cin_g + i * ti + t) * kk;
      for (var tap = 0u; tap < kk; tap++) {
        var v = acc[tap * ti + t][jj / 4u][jj % 4u];
        if (p.accumulate != 0u) { v += out[base + tap]; }
        out[base + tap] = v;
      }
    }
  }
}

// out[n] = sum over chunks z of part[z * size + n] (added into out with `accumulate`).
@compute @workgroup_size(64)
fn sum_partials(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = flat(wid, nwg, lid);
  if (n >= sum_p.size) { return; }
  var s = 0.0;
  for (var z = 0u; z < sum_p.chunks; z++) { s += part[z * sum_p.size + n]; }
  if (sum_p.accumulate != 0u) { s += out[n]; }
  out[n] = s;
}
