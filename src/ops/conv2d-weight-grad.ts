/**
 * The weight gradient of conv2d (shaders/conv2d_weight.wgsl), in the variant tuned for the adapter and shape or
 * `options.variant`.
 */
import { Tensor, type Engine } from '../tensor.js';
import {
  convVariants,
  findVariant,
  shapeKey,
  weightGradKernel,
  type Conv2dOptions,
  type WeightGradVariant,
} from './conv2d-variants.js';
import { checkOutputGrad, convGeometry, convShape } from './conv2d-shape.js';

/** How a variant launches on a shape: two variants with equal launches are one candidate. */
interface WeightGradLaunch {
  kernel: string;
  lanesPerBlock: number;
  /** Invocations along x (input channels, or a workgroup of blocks) and y (blocks). */
  grid: [number, number];
  chunks: number;
  rowsPerChunk: number;
}

function plan(
  gpu: Engine,
  v: WeightGradVariant,
  batch: number,
  hout: number,
  cinG: number,
  cout: number,
  groups: number,
  k: number,
): WeightGradLaunch {
  const kernel = weightGradKernel(gpu, v);
  // Lanes per block of output channels: a whole number of the largest subgroups, so that where the
  // adapter groups consecutive invocations, every subgroup works on one block and shares its values
  // (the kernel checks that it does).
  const [lanes] = gpu.kernels.info(kernel).workgroupSize;
  // Output channels per block, and input channels per lane (TI1 for 1x1 kernels, else 1).
  const blockChannels = gpu.kernels.constant(kernel, 'OC');
  const inputsPerLane = k === 1 ? gpu.kernels.constant(kernel, 'TI1') : 1;
  const subgroup = v.subgroups ? gpu.adapter.info.subgroupMaxSize || lanes : 1;
  const channelLanes = Math.ceil(cinG / inputsPerLane);
  const lanesPerBlock =
    channelLanes >= lanes || v.wide ? lanes : Math.min(lanes, Math.ceil(channelLanes / subgroup) * subgroup);
  const blocks = groups * Math.ceil(cout / groups / blockChannels);
  // Wide blocks: x walks the input channels; narrow ones: one workgroup holds several blocks.
  const grid: [number, number] =
    lanesPerBlock >= lanes ? [channelLanes, blocks] : [lanes, Math.ceil(blocks / Math.floor(lanes / lanesPerBlock))];
  // Split-K: chunks of (batch, row) rows, enough for v.minInvocations invocations in all.
  const rows = batch * hout;
  const rowsPerChunk = Math.ceil(rows / Math.min(rows, Math.max(1, Math.ceil(v.minInvocations / (grid[0] * grid[1])))));
  return { kernel, lanesPerBlock, grid, chunks: Math.ceil(rows / rowsPerChunk), rowsPerChunk };
}

/**
 * The weight gradient for input x and output gradient g (not recorded; g must have the forward's
 * output shape); with `into` (a parameter's gradient), added into it in the same pass and `into` returned.
 */
export function conv2dWeightGrad(
  x: Tensor,
  g: Tensor,
  weightShape: readonly number[],
  options: Conv2dOptions = {},
  into: Tensor | null = null,
): Tensor {
  const gpu = x.gpu;
  const shape = convShape(gpu, 'conv2dWeightGrad', x.shape, weightShape, options);
  checkOutputGrad('conv2dWeightGrad', g.shape, shape);
  const { batch, cin, h, w: wd, cout, cinG, groups, window } = shape;
  const { kernel: k, hout, wout } = window;
  const launch = (v: WeightGradVariant) => plan(gpu, v, batch, hout, cinG, cout, groups, k);
  let chosen: WeightGradLaunch;
  if (options.variant !== undefined) {
    chosen = launch(findVariant<WeightGradVariant>(gpu, 'weightGrad', options.variant));
  } else {
    // The candidates whose launches differ on this shape (the first of each kind).
    const candidates = new Map<string, WeightGradLaunch>();
    const seen = new Set<string>();
    for (const v of convVariants(gpu, 'weightGrad') as WeightGradVariant[]) {
      const l = launch(v);
      const kind = JSON.stringify(l);
      if (!seen.has(kind)) candidates.set(v.name, l);
      seen.add(kind);
    }
    // Trials write a gradient of their own, never into `into`.
    const trial = (variant: string) => conv2dWeightGrad(x, g, weightShape, { ...options, variant }).dispose();
    chosen = candidates.get(
      gpu.kernels.variant(
        'conv2d_weight.weight_grad',
        shapeKey(batch, cin, cout, groups, k, window, h, wd),
        [...candidates.keys()],
        trial,
      ),
    )!;
  }
  const { kernel, lanesPerBlock, grid, chunks, rowsPerChunk } = chosen;
  const size = weightShape.reduce((a, b) => a * b, 1);
  if (into && into.size !== size) throw new Error(`conv2dWeightGrad: into has ${into.size} values, the weight ${size}`);
  const out = into ?? Tensor.empty(gpu, weightShape);
  const accumulate = into ? 1 : 0;
  const geometry = convGeometry(x.shape, [cout, hout, wout], groups, k, window);
  gpu.scope(() => {
    const partials = chunks > 1 ? Tensor.empty(gpu, [chunks * size]) : out;
    gpu.kernels.dispatch(kernel, {
      tag: 'weight grad',
      uniforms: {
        ...geometry.uniforms,
        lanes_per_block: lanesPerBlock,
        rows_per_chunk: rowsPerChunk,
        size,
        accumulate: chunks > 1 ? 0 : accumulate,
      },
      buffers: { out: partials, inp: x, dout: g },
      invocations: [...grid, chunks],
      constants: geometry.constants,
    });
    if (chunks > 1) {
      gpu.kernels.dispatch('conv2d_weight.sum_partials', {
        tag: 'weight grad',
        uniforms: { size, chunks, accumulate },
        buffers: { out, part: partials },
        invocations: size,
      });
    }
  });
  return out;
}
