/**
 * SISN (Lu et al., ACM MM 2021), the official `model/sisn.py` Net with its exact state_dict.
 *
 * forward(input): input is the LR image nearest-upsampled to HR size, pixels in [0, 255].
 * sub_mean (1x1 conv) -> space-to-depth by s (SISN order) -> head conv -> G ESAGs -> conv, plus the
 * head output -> tail (conv C->4C + pixel shuffle 2, log2(s) times; C->9C + shuffle 3 for x3) ->
 * conv C->3 -> add_mean (1x1 conv).
 */
import { Tensor, formatShape } from '../tensor.js';
import type { Gpu } from '../engine.js';
import { ParameterSet } from '../optim/params.js';
import { add, spaceToDepth, pixelShuffle, preparePipelines, type PipelineUse } from '../ops/index.js';
import { Conv2d, Module, type ModelState, type StateEntry } from './module.js';
import { ESAG } from './blocks.js';
import { upscale, type UpscaleOptions } from './upscale.js';
import type { RgbImage } from '../io/image.js';
import type { Rng } from '../data/rng.js';

export interface SisnConfig {
  scale: 2 | 3 | 4 | 8;
  /** G: number of ESAGs. */
  groups: number;
  /** I: ISABs per ESAG. */
  blocks: number;
  /** C: feature channels. */
  channels: number;
}

export const RGB_MEAN = [0.4488, 0.4371, 0.404];

const kernels = (file: string, entries: string[]) => entries.map((e) => ({ name: `${file}.${e}` }));

/**
 * The pipelines SISN's ops launch in training (forward, backward, Adam) and evaluation (folded, or
 * with intermediates captured), whatever its size: test/prepare.test.js checks that they are all
 * launched and nothing else is.
 */
const PIPELINES: readonly PipelineUse[] = [
  ...[1, 3].flatMap((K) =>
    ['conv2d.forward', 'conv2d.pack_weight', 'conv2d_weight.weight_grad'].map((name) => ({ name, constants: { K } })),
  ),
  ...kernels('batchnorm', ['normalize', 'backward_input', 'eval_stats', 'fold']),
  ...kernels('attention', ['pool_splits', 'attend', 'attend_backward', 'splits_backward', 'gate']),
  ...kernels('reduce', ['moments_merge', 'bn_backward']),
  { name: 'reduce.channel_sum', constants: { MODE: 'MODE_SUM' } },
  { name: 'reduce.channel_sum', constants: { MODE: 'MODE_ABS_DIFF' } },
  { name: 'reduce.channel_sum_serial', constants: { MODE: 'MODE_SUM' } },
  { name: 'elementwise.binary', constants: { OP: 'OP_ADD' } },
  ...kernels('elementwise', ['relu', 'fill', 'accumulate']),
  ...kernels('layout', ['space_shuffle', 'upsample_nearest']),
  { name: 'loss.l1_backward' },
  { name: 'adam.step' },
];

/** SISN's network: the official `Net`, its modules under their state_dict names. */
export class SisnNet extends Module {
  readonly subMean = new Conv2d('sub_mean.', 3, 3, 1);
  readonly addMean = new Conv2d('add_mean.', 3, 3, 1);
  readonly head: Conv2d;
  readonly esags: ESAG[];
  readonly bodyConv: Conv2d;
  readonly upsample: { conv: Conv2d; factor: number }[];
  readonly tailConv: Conv2d;

  constructor(readonly config: SisnConfig) {
    super('');
    const { scale, groups, blocks, channels: c } = config;
    this.head = new Conv2d('head.1.', 3 * scale * scale, c, 3);
    this.esags = Array.from({ length: groups }, (_, g) => new ESAG(`body.${g}.`, c, blocks));
    this.bodyConv = new Conv2d(`body.${groups}.`, c, c, 3);
    const stages = scale === 3 ? [3] : Array.from({ length: Math.log2(scale) }, () => 2);
    this.upsample = stages.map((factor, j) => ({
      conv: new Conv2d(`tail.0.${2 * j}.`, c, factor * factor * c, 3),
      factor,
    }));
    this.tailConv = new Conv2d('tail.1.', c, 3, 3);
  }

  entries(): StateEntry[] {
    return [
      this.subMean,
      this.addMean,
      this.head,
      ...this.esags,
      this.bodyConv,
      ...this.upsample.map((u) => u.conv),
      this.tailConv,
    ].flatMap((m) => m.entries());
  }

  forward(s: ModelState, x: Tensor): Tensor {
    const shifted = this.subMean.forward(s, x);
    const f0 = this.out(
      s,
      'head.out',
      this.head.forward(s, this.out(s, 'head.0.out', spaceToDepth(shifted, this.config.scale))),
    );
    let r = f0;
    for (const e of this.esags) r = e.forward(s, r);
    r = this.out(s, 'tail.in', add(this.bodyConv.forward(s, r), f0));
    for (const u of this.upsample) r = pixelShuffle(u.conv.forward(s, r), u.factor);
    this.out(s, 'tail.0.out', r);
    r = this.out(s, 'tail.out', this.tailConv.forward(s, r));
    return this.addMean.forward(s, r);
  }
}

export class SISN {
  readonly net: SisnNet;
  readonly params: ParameterSet;
  readonly buffers = new Map<string, Tensor>();
  readonly counters = new Map<string, number>();
  readonly entries: StateEntry[];
  training = false;

  constructor(
    readonly gpu: Gpu,
    readonly config: SisnConfig,
  ) {
    if (![2, 3, 4, 8].includes(config.scale)) throw new Error(`SISN: scale must be 2, 3, 4 or 8, got ${config.scale}`);
    for (const k of ['groups', 'blocks', 'channels'] as const) {
      if (!Number.isInteger(config[k]) || config[k] < 1)
        throw new Error(`SISN: ${k} must be a positive integer, got ${config[k]}`);
    }
    if (config.channels % 4)
      throw new Error(`SISN: channels must be divisible by 4 (radix-4 grouped conv), got ${config.channels}`);
    this.net = new SisnNet(config);
    this.entries = this.net.entries();
    this.params = new ParameterSet(
      gpu,
      this.entries.filter((e) => e.kind === 'param'),
    );
    for (const e of this.entries) {
      if (e.kind === 'buffer') {
        const t = Tensor.full(gpu, e.shape, e.name.endsWith('running_var') ? 1 : 0);
        gpu.tape.untrack(t);
        this.buffers.set(e.name, t);
      } else if (e.kind === 'counter') this.counters.set(e.name, 0);
    }
  }

  /** The pipelines `prepare` compiles beside the tuned variants' (for tests). */
  static readonly pipelines = PIPELINES;

  /**
   * Compiles (and runs once, empty) every pipeline SISN's forward, backward and optimiser use, so
   * no step pays for compilation. Returns the number of pipelines.
   */
  static prepare(gpu: Gpu): Promise<number> {
    return preparePipelines(gpu, PIPELINES);
  }

  /** Runs the network on a nearest-upsampled LR batch [B, 3, H, W] (H, W divisible by the scale). */
  forward(input: Tensor, capture?: ModelState['capture']): Tensor {
    const s = this.config.scale;
    if (input.shape.length !== 4 || input.shape[1] !== 3)
      throw new Error(`SISN.forward: expected [B, 3, H, W], got ${formatShape(input.shape)}`);
    if (input.shape[2] % s || input.shape[3] % s)
      throw new Error(`SISN.forward: ${input.shape[2]}x${input.shape[3]} is not divisible by the scale ${s}`);
    const state: ModelState = {
      params: this.params,
      buffers: this.buffers,
      counters: this.counters,
      training: this.training,
      capture,
    };
    return this.gpu.scope(() => this.net.forward(state, input));
  }

  /**
   * PyTorch's default initialisation: conv weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))
   * (kaiming_uniform with a = sqrt(5)); BatchNorm weight 1, bias 0, running stats 0 and 1;
   * sub_mean/add_mean identity weights and bias -/+255 * RGB mean.
   */
  initialize(rng: Rng): void {
    const shapes = new Map(this.entries.map((e) => [e.name, e.shape]));
    const uniform = (n: number, bound: number) => Float32Array.from({ length: n }, () => rng.uniform(-bound, bound));
    for (const e of this.entries) {
      const n = e.shape.reduce((a, b) => a * b, 1);
      const owner = e.name.slice(0, e.name.lastIndexOf('.') + 1);
      if (e.kind === 'buffer') this.buffers.get(e.name)!.fill(e.name.endsWith('running_var') ? 1 : 0);
      else if (e.kind === 'counter') this.counters.set(e.name, 0);
      else if (owner === 'sub_mean.' || owner === 'add_mean.') {
        const sign = owner === 'sub_mean.' ? -1 : 1;
        this.params.set(
          e.name,
          e.name.endsWith('weight')
            ? Float32Array.of(1, 0, 0, 0, 1, 0, 0, 0, 1)
            : Float32Array.from(RGB_MEAN, (m) => sign * 255 * m),
        );
      } else {
        const weight = shapes.get(`${owner}weight`)!;
        if (weight.length === 1) this.params.set(e.name, new Float32Array(n).fill(e.name.endsWith('weight') ? 1 : 0));
        else this.params.set(e.name, uniform(n, 1 / Math.sqrt(weight[1] * weight[2] * weight[3])));
      }
    }
  }

  /** Super-resolves an LR RGB(A) image (any size; tiled when large). */
  upscale(image: RgbImage, options?: UpscaleOptions): Promise<RgbImage> {
    return upscale(this, image, options);
  }

  /** Sets the ablation switches of the paper's Table 1. */
  setAblation({ structurePath = true, attention = true }: { structurePath?: boolean; attention?: boolean }): void {
    for (const e of this.net.esags) {
      e.useStructurePath = structurePath;
      for (const b of [...e.blocks, e.ia]) b.useAttention = attention;
    }
  }

  dispose(): void {
    this.params.dispose();
    for (const t of this.buffers.values()) t.dispose();
  }
}
