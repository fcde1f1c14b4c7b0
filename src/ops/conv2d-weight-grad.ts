/** The weight gradient of conv2d (shaders/conv2d_weight.wgsl), in the variant the tuner picks or `options.variant`. */
import { Tensor } from '../tensor.js';
import { chooseVariant, convVariants, findVariant, shapeKey, variantKernel, type Conv2dOptions, type WeightGradVariant } from './conv2d-variants.js';

/** Output channels per lane of the weight_grad kernel. */
const GRAD_OC = 8;

/** The weight gradient for input x and output gradient g (not recorded). */
export function conv2dWeightGrad(x: Tensor, g: Tensor, weightShape: readonly number[], options: Conv2dOptions = {}): Tensor {
  const gpu = x.gpu;
  const pad = options.padding ?? 0;
  const groups = options.groups ?? 1;
  const [batch, cin, h, wd] = x.shape as number[];
  const [cout, cinG, k] = weightShape;
  const [, , hout, wout] = g.shape as number[];
  const name =
    options.variant ??
    chooseVariant(gpu, 'conv2d.weight_grad', shapeKey(batch, cin, cout, groups, k, h, wd), convVariants(gpu, 'weightGrad').map((v) => v.name), (variant) =>
      conv2dWeightGrad(x, g, weightShape, { ...options, variant }).dispose(),
    );
  const v = findVariant<WeightGradVariant>(gpu, 'weightGrad', name);
  const kernel = variantKernel(gpu, 'conv2d_weight', 'weight_grad', { TW: v.columns, WG: v.workgroup }, v.subgroups);
  // Lanes per block of output channels: a whole number of the largest subgroups, so that where the
  // adapter groups consecutive invocations, every subgroup works on one block and shares its values
  // (the kernel checks that it does).
  const [lanes] = gpu.kernels.info(kernel).workgroupSize;
  const subgroup = v.subgroups ? gpu.adapter.info.subgroupMaxSize || lanes : 1;
  const lanesPerBlock = cinG >= lanes ? lanes : Math.min(lanes, Math.ceil(cinG / subgroup) * subgroup);
  const blocks = groups * Math.ceil(cout / groups / GRAD_OC);
  // Wide blocks: x walks the input channels; narrow ones: one workgroup holds several blocks.
  const [gx, gy] = lanesPerBlock >= lanes ? [cinG, blocks] : [lanes, Math.ceil(blocks / Math.floor(lanes / lanesPerBlock))];
  // Split-K: chunks of (batch, row) rows, enough for v.minInvocations invocations in all.
  const rows = batch * hout;
  const rowsPerChunk = Math.ceil(rows / Math.min(rows, Math.max(1, Math.ceil(v.minInvocations / (gx * gy)))));
  const chunks = Math.ceil(rows / rowsPerChunk);
  const size = weightShape.reduce((a, b) => a * b, 1);
  const out = Tensor.empty(gpu, weightShape);
  gpu.scope(() => {
    const partials = chunks > 1 ? Tensor.empty(gpu, [chunks * size]) : out;
    gpu.kernels.dispatch(kernel, {
      tag: 'weight grad',
      uniforms: { batch, cin, h, w: wd, cout, hout, wout, groups, pad, lanes_per_block: lanesPerBlock, rows_per_chunk: rowsPerChunk, size },
      buffers: { out: partials, inp: x, dout: g },
      invocations: [gx, gy, chunks],
      constants: { K: k },
    });
    if (chunks > 1) {
      gpu.kernels.dispatch('conv2d_weight.sum_partials', { tag: 'weight grad', uniforms: { size, chunks }, buffers: { out, part: partials }, invocations: size });
    }
  });
  return out;
}
