// 2-D convolution, NCHW, any stride, zero padding per side, groups, optional bias: the forward and
// the input gradient (the weight gradient is in conv2d_weight.wgsl).
//
// Math:     out[b,o,y,x] = bias[o] + sum_{i<Cin/G, ky, kx} w[o,i,ky,kx] * in'[b, g*Cin/G + i, y*stride+ky-pad_y, x*stride+kx-pad_x],
//           g = o / (Cout/G), in' the input dilated by `dilation` (in'[v] = in[v / dilation] where
//           dilation divides v, else 0; 1 but for input gradients). Weights are [Cout, Cin/G, K, K]
//           (PyTorch); `pack_weight` first lays them out as packed[g][i][ky*K+kx][o padded to a
//           multiple of 16] so one vec4 load gives 4 output channels.
//           The input gradient is this same forward at stride 1 on the output gradient dilated by
//           the forward's stride, with weights packed transposed and flipped (packed_t) and padding
//           K-1-pad before (after: what gives the forward's input size); in training one dispatch packs both.
// Tiling:   each invocation computes a tile of TO output channels x TX adjacent output columns. Per
//           input channel and kernel row it loads TX+K-1 input values once and TO/4 vec4 weights per
//           tap (the loads, not the arithmetic, bound a CPU adapter); strided or dilated, each
//           column's K inputs instead (the STRIDED pipeline: stride 1 keeps its loads). An epilogue can fold an
//           eval-mode BatchNorm, a residual add and a ReLU into the store. K is an override
//           constant, so the tap loops unroll.
//           The weights of a tap are the same for every invocation of a workgroup (the workgroup
//           shares its output-channel tile and the loops are branch-free). They come from one of:
//           - plain loads (every invocation loads them; a GPU's cache serves the repeats);
//           - with the `subgroups` feature, lanes 0 .. TO/4-1 load one vec4 each and broadcast them to
//             the subgroup: this holds for any lane layout, and lanes 0-3 are active because the
//             engine enables subgroups only where they have 4 to 64 lanes and runs this path only
//             in workgroups of whole subgroups (WG >= the adapter's largest subgroup);
//           - STAGE: the workgroup copies the weights of CHUNK input channels into workgroup memory,
//             double-buffered, one barrier per chunk (meant for GPUs; a CPU adapter runs a
//             workgroup on one thread, where it only adds copies and barriers).
// Variants: TX, TO, WG and STAGE are rewritten per variant by src/ops/conv2d-variants.ts (the
//           values below are the default), which also builds variants without subgroups. 12 or more
//           columns would stop the tile's loops unrolling; STAGE and the plain loads are meant for
//           GPUs. Which wins where: docs/performance.md.
// Dispatch: WG-invocation workgroups: (ceil(Hout * ceil(Wout/TX) / WG), G * ceil((Cout/G)/TO), B).
//           pack_weight: one invocation per packed row (g, i, tap) of the larger packing, each writing
//           its row's out_pad values (the row's divisions once, not per value: a CPU adapter runs an
//           integer division lane by lane), in workgroups of 64, folded past the per-dimension limit.

// Epilogue flags: out = relu?(acc * scale[o] (if has_scale) + bias[o] (if has_bias) + res (if has_res)),
// or with `accumulate`, out += acc (an input gradient added into the partial gradient already there).
// scale/bias fold an eval-mode BatchNorm into the convolution (inference only).
// With `moments` (training, a BatchNorm next), each invocation also writes, per output channel o of
// its tile, the mean and M2 (sum of squared deviations) of the n = min(TX, wout - xo) values it
// stored: moments_out[(o * parts + (b * hout + y) * x_blocks + xb) * 2 + {0, 1}] (parts = batch *
// hout * x_blocks), from sums shifted by its first value; reduce.wgsl's moments_merge combines
// them (2 stores per TX outputs here, instead of reading every output again).
// With `sums` (inference, split attention's pooling next), each invocation writes instead the sum
// of the values it stored per output channel: moments_out[o * parts + (b * hout + y) * x_blocks + xb].
struct Conv {
  batch: u32, cin: u32, h: u32, w: u32,
  cout: u32, hout: u32, wout: u32, groups: u32,
  pad_y: u32, pad_x: u32, stride: u32, dilation: u32,
  has_bias: u32, oc_blocks: u32, x_blocks: u32, out_pad: u32,
  has_scale: u32, has_res: u32, relu: u32, accumulate: u32,
  moments: u32, sums: u32,
}

// The forward's dims; rows / t_rows: the rows to write of packed / packed_t (0: not wanted).
struct Pack { in_g: u32, out_g: u32, out_pad: u32, rows: u32, t_out_pad: u32, t_rows: u32 }

override K: u32 = 3u;
// Set where stride or dilation is not 1: a pipeline of its own (per K, like K), so that stride 1
// runs the code it ran before strides existed; with a uniform branch instead, lavapipe's stride-1
// weight gradient ran several times slower (the strided code beside it cost the tile's
// accumulators their registers).
override STRIDED: bool = false;
// @include conv_limits
const TX: u32 = 8u;
const TO: u32 = 16u;
const WG: u32 = 64u;
const STAGE: bool = false;
const TQ: u32 = TO / 4u;  // vec4 weights per tap
const CHUNK: u32 = 2u;    // input channels per staging round
const STAGED_HALF: u32 = select(0u, CHUNK * KMAX * KMAX * TQ, STAGE);

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> packed: array<vec4f>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<uniform> p: Conv;
@group(0) @binding(5) var<storage, read> scale: array<f32>;
@group(0) @binding(6) var<storage, read> res: array<f32>;
@group(0) @binding(7) var<storage, read_write> moments_out: array<f32>;
@group(0) @binding(1) var<storage, read> w_src: array<f32>;
@group(0) @binding(4) var<uniform> pack_p: Pack;
@group(0) @binding(2) var<storage, read_write> packed_t: array<f32>;
// STAGE: the weights of CHUNK input channels x K*K taps for the workgroup's output channels,
// twice (double-buffered; 12.5 KiB at KMAX and TO = 16, within WebGPU's default 16 KiB).
var<workgroup> staged: array<vec4f, max(1u, 2u * STAGED_HALF)>;

// @include flat

// The TO packed weights of one tap for an output-channel tile, as TQ vec4s of 4 channels, from
// packed[wi ..] or (STAGE) staged[si ..].
fn tap_weights(wi: u32, si: u32, lane: u32) -> array<vec4f, TQ> {
  var w: array<vec4f, TQ>;
  if (STAGE) {
    for (var q = 0u; q < TQ; q++) { w[q] = staged[si + q]; }
  } else {
// @if subgroups
    // Only lanes 0 .. TQ-1 load: a CPU adapter runs a load lane by lane, skipping inactive lanes.
    var mine = vec4f(0.0);
    if (lane < TQ) { mine = packed[wi + lane]; }
    let all = array(subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u), subgroupBroadcast(mine, 2u), subgroupBroadcast(mine, 3u));
    for (var q = 0u; q < TQ; q++) { w[q] = all[q]; }
// @else
    for (var q = 0u; q < TQ; q++) { w[q] = packed[wi + q]; }
// @endif
  }
  return w;
}

@compute @workgroup_size(WG)
fn forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_index) lid: u32,
// @if subgroups
  @builtin(subgroup_invocation_id) sid: u32,
// @endif
) {
  // The output-channel tile and the sample come from the workgroup id alone, so every weight
  // address is uniform across the workgroup (a compiler can load it once for all lanes), and every
  // subgroup, whatever its size and lanes, shares the tile.
  let pos = wid.x * WG + lid;
  let ob = wid.y;
  let b = wid.z;
  let in_range = pos < p.hout * p.x_blocks;
  let xb = pos % p.x_blocks;
  let y = min(pos / p.x_blocks, p.hout - 1u);
  let cin_g = p.cin / p.groups;
  let cout_g = p.cout / p.groups;
  let tiles_per_group = p.oc_blocks / p.groups;
  let g = ob / tiles_per_group;
  let ol0 = (ob % tiles_per_group) * TO;
  let x0 = i32(xb * TX * p.stride) - i32(p.pad_x);
  let wv = p.out_pad / 4u;
  let kk = K * K;
// @if subgroups
  let lane = sid;
// @else
  let lane = 0u;
// @endif
  var acc: array<array<vec4f, TQ>, TX>;
  var seg: array<f32, TX + KMAX - 1u>;
  for (var i0 = 0u; i0 < cin_g; i0 += CHUNK) {
    let n = min(CHUNK, cin_g - i0);
    let wchunk = (g * cin_g + i0) * kk;
    // Chunks alternate between the two halves of `staged`: the barrier after this chunk's copy also
    // orders the previous chunk's reads before the next chunk's copy, so one barrier per chunk.
    let half = (i0 / CHUNK) % 2u * STAGED_HALF;
    if (STAGE) {
      for (var s = lid; s < n * kk * TQ; s += WG) { staged[half + s] = packed[(wchunk + s / TQ) * wv + ol0 / 4u + s % TQ]; }
      workgroupBarrier();
    }
    for (var ii = 0u; ii < n; ii++) {
      let plane = (b * p.cin + g * cin_g + i0 + ii) * p.h;
      for (var ky = 0u; ky < K; ky++) {
        var iy = i32(y + ky) - i32(p.pad_y);
        var yok = iy >= 0 && iy < i32(p.h);
        if (STRIDED) {
          // The tap row on the dilated input: row vy / dilation where that divides, else a zero row.
          let vy = i32(y * p.stride + ky) - i32(p.pad_y);
          iy = vy / i32(p.dilation);
          yok = vy >= 0 && iy * i32(p.dilation) == vy && iy < i32(p.h);
        }
        let row = (plane + u32(clamp(iy, 0, i32(p.h) - 1))) * p.w;
        if (!STRIDED) {
          for (var j = 0u; j < TX + K - 1u; j++) {
            let ix = x0 + i32(j);
            let inside = yok && ix >= 0 && ix < i32(p.w);
            seg[j] = select(0.0, inp[row + u32(clamp(ix, 0, i32(p.w) - 1))], inside);
          }
        }
        // The row's K taps' weights first, then each accumulator takes all K taps in turn: a CPU
        // adapter keeps it in a register across them (tap-outermost, each of 128 accumulators is
        // reloaded and stored per tap). The same additions in the same order either way.
        var taps: array<array<vec4f, TQ>, KMAX>;
        for (var kx = 0u; kx < K; kx++) {
          let tap = ii * kk + ky * K + kx;
          let w = tap_weights((wchunk + tap) * wv + ol0 / 4u, half + tap * TQ, lane);
          for (var q = 0u; q < TQ; q++) { taps[kx][q] = w[q]; }
        }
        for (var c = 0u; c < TX; c++) {
          if (STRIDED) {
            // Column c's K inputs (column vx / dilation where that divides), where its taps read them.
            for (var kx = 0u; kx < K; kx++) {
              let vx = x0 + i32(c * p.stride + kx);
              let ix = vx / i32(p.dilation);
              let inside = yok && vx >= 0 && ix * i32(p.dilation) == vx && ix < i32(p.w);
              seg[c + kx] = select(0.0, inp[row + u32(clamp(ix, 0, i32(p.w) - 1))], inside);
            }
          }
          for (var q = 0u; q < TQ; q++) {
            var a = acc[c][q];
            for (var kx = 0u; kx < K; kx++) { a += seg[c + kx] * taps[kx][q]; }
            acc[c][q] = a;
          }
        }
      }
    }
  }
  if (!in_range) { return; }
  let xo = xb * TX;
  for (var j = 0u; j < TO; j++) {
    let ol = ol0 + j;
    if (ol >= cout_g) { break; }
    let o = g * cout_g + ol;
    var sv = 1.0;
    if (p.has_scale != 0u) { sv = scale[o]; }
    var bv = 0.0;
    if (p.has_bias != 0u) { bv = bias[o]; }
    let base = ((b * p.cout + o) * p.hout + y) * p.wout;
    var shift = 0.0;
    var sums = vec2f(0.0);
    for (var c = 0u; c < TX; c++) {
      if (xo + c >= p.wout) { break; }
      var v = acc[c][j / 4u][j % 4u] * sv + bv;
      if (p.has_res != 0u) { v += res[base + xo + c]; }
      if (p.accumulate != 0u) { v += out[base + xo + c]; }
      if (p.relu != 0u) { v = max(v, 0.0); }
      out[base + xo + c] = v;
      if (p.moments != 0u || p.sums != 0u) {
        if (c == 0u && p.moments != 0u) { shift = v; }
        sums += vec2f(v - shift, (v - shift) * (v - shift));
      }
    }
    if (p.moments != 0u || p.sums != 0u) {
      let part = o * p.batch * p.hout * p.x_blocks + (b * p.hout + y) * p.x_blocks + xb;
      if (p.sums != 0u) {
        moments_out[part] = sums.x;
      } else {
        let n = f32(min(TX, p.wout - xo));
        moments_out[part * 2u] = shift + sums.x / n;
        moments_out[part * 2u + 1u] = max(sums.y - sums.x * sums.x / n, 0.0);
      }
    }
  }
}

// packed[((g*in_g + i)*K*K + tap)*out_pad + ol] = w[g*out_g + ol, i, tap] (forward); packed_t, for the
// input gradient, is the same layout with in_g and out_g swapped holding w[g*out_g + i, ol, K*K-1-tap];
// 0 past out_g (past in_g for packed_t).
fn packed_value(g: u32, i: u32, tap: u32, ol: u32, in_g: u32, out_g: u32, transposed: bool) -> f32 {
  let kk = K * K;
  if (ol >= out_g) { return 0.0; }
  if (!transposed) { return w_src[((g * out_g + ol) * in_g + i) * kk + tap]; }
  return w_src[((g * in_g + i) * out_g + ol) * kk + (kk - 1u - tap)];
}

@compute @workgroup_size(64)
fn pack_weight(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = flat(wid, nwg, lid);
  let q = pack_p;
  let kk = K * K;
  let tap = r % kk;
  let gi = r / kk;
  if (r < q.rows) {
    let g = gi / q.in_g;
    let i = gi % q.in_g;
    for (var ol = 0u; ol < q.out_pad; ol++) { out[r * q.out_pad + ol] = packed_value(g, i, tap, ol, q.in_g, q.out_g, false); }
  }
  if (r < q.t_rows) {
    let g = gi / q.out_g;
    let i = gi % q.out_g;
    for (var ol = 0u; ol < q.t_out_pad; ol++) { packed_t[r * q.t_out_pad + ol] = packed_value(g, i, tap, ol, q.out_g, q.in_g, true); }
  }
}
