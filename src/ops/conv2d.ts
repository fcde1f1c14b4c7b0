/** conv2d: NCHW, stride 1, zero padding, groups, optional bias. Forward and backward (shaders/conv2d.wgsl). */
import { Tensor, formatShape } from '../tensor.js';
import { channelReduce, dims4, ReduceMode } from './reduce.js';

export interface Conv2dOptions {
  padding?: number;
  groups?: number;
}

const TILE = 4;

function launchForward(x: Tensor, w: Tensor, bias: Tensor | null, pad: number, groups: number): Tensor {
  const [batch, cin, h, wd] = x.shape as number[];
  const [cout, , k] = w.shape as number[];
  const hout = h + 2 * pad - k + 1;
  const wout = wd + 2 * pad - k + 1;
  const out = Tensor.empty(x.gpu, [batch, cout, hout, wout]);
  const ocBlocks = groups * Math.ceil(cout / groups / TILE);
  const xBlocks = Math.ceil(wout / TILE);
  x.gpu.kernels.dispatch('conv2d.forward', {
    uniforms: { batch, cin, h, w: wd, cout, hout, wout, groups, k, pad, has_bias: bias ? 1 : 0, oc_blocks: ocBlocks, x_blocks: xBlocks },
    buffers: { out, inp: x, weight: w, bias: bias ?? w },
    groups: Math.ceil((batch * ocBlocks * hout * xBlocks) / 64),
  });
  return out;
}

function convUniforms(x: Tensor, w: Tensor, pad: number, groups: number) {
  const [batch, cin, h, wd] = x.shape as number[];
  const [cout, , k] = w.shape as number[];
  return { batch, cin, h, w: wd, cout, hout: h + 2 * pad - k + 1, wout: wd + 2 * pad - k + 1, groups, k, pad, has_bias: 0, oc_blocks: 0, x_blocks: 0 };
}

/** Flipped, transposed weights [Cin, Cout/G, K, K]: the input gradient is a forward conv with them. */
function transposeWeight(x: Tensor, w: Tensor, pad: number, groups: number): Tensor {
  const [cout, cinG, k] = w.shape as number[];
  const out = Tensor.empty(w.gpu, [cinG * groups, cout / groups, k, k]);
  w.gpu.kernels.dispatch('conv2d.transpose_weight', { uniforms: convUniforms(x, w, pad, groups), buffers: { out, w_src: w }, groups: Math.ceil(out.size / 64) });
  return out;
}

function weightGrad(x: Tensor, w: Tensor, g: Tensor, pad: number, groups: number): Tensor {
  const out = Tensor.empty(w.gpu, w.shape);
  w.gpu.kernels.dispatch('conv2d.weight_grad', { uniforms: convUniforms(x, w, pad, groups), buffers: { out, inp: x, dout: g }, groups: Math.ceil(out.size / 64) });
  return out;
}

export function conv2d(x: Tensor, w: Tensor, bias: Tensor | null = null, options: Conv2dOptions = {}): Tensor {
  const pad = options.padding ?? 0;
  const groups = options.groups ?? 1;
  const [batch, cin, h, wd] = dims4('conv2d', x);
  if (w.shape.length !== 4 || w.shape[2] !== w.shape[3]) throw new Error(`conv2d: weight must be [Cout, Cin/G, K, K], got ${formatShape(w.shape)}`);
  const [cout, cinG, k] = w.shape as number[];
  if (!Number.isInteger(groups) || groups < 1 || cin % groups || cout % groups) throw new Error(`conv2d: ${cin} -> ${cout} channels cannot be split into ${groups} groups`);
  if (cinG * groups !== cin) throw new Error(`conv2d: weight ${formatShape(w.shape)} expects ${cinG * groups} input channels, input ${formatShape(x.shape)} has ${cin}`);
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== cout)) throw new Error(`conv2d: bias ${formatShape(bias.shape)} must be [${cout}]`);
  if (!Number.isInteger(pad) || pad < 0 || pad > k - 1) throw new Error(`conv2d: padding ${pad} must be in [0, ${k - 1}]`);
  if (h + 2 * pad < k || wd + 2 * pad < k) throw new Error(`conv2d: input ${formatShape(x.shape)} is smaller than the ${k}x${k} kernel`);
  const out = launchForward(x, w, bias, pad, groups);
  const inputs = bias ? [x, w, bias] : [x, w];
  return x.gpu.tape.record(
    'conv2d',
    inputs,
    out,
    (g, needs) => {
      const [, , hout, wout] = g.shape as number[];
      let dx: Tensor | null = null;
      if (needs[0]) {
        const wt = transposeWeight(x, w, pad, groups);
        dx = launchForward(g, wt, null, k - 1 - pad, groups);
      }
      const dw = needs[1] ? weightGrad(x, w, g, pad, groups) : null;
      const db = bias && needs[2] ? channelReduce(g, { batch, channels: cout, inner: hout * wout, mode: ReduceMode.Sum }) : null;
      return [dx, dw, db];
    },
    [x, w],
  );
}
