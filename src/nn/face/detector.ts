/**
 * face-api's tiny face detector (`tiny_face_detector_model`, a YOLOv2 on depthwise-separable
 * convolutions): a square RGB input of a multiple of 32 pixels (default 416) in, an S x S grid of
 * 5 anchors x (box, score) out, S = input / 32.
 *
 *   conv 3x3 valid (3 -> 16) + bias, leaky ReLU 0.1; max pool 2x2 stride 2 SAME
 *   conv1..conv5: depthwise 3x3 (padding 1), pointwise 1x1 + bias, leaky ReLU 0.1; each followed
 *     by max pool 2x2 SAME, stride 2 (conv1..conv4) or 1 (conv5)
 *   conv8: 1x1 (512 -> 25) + bias
 * The input is face-api's (input.ts): padded on the right or bottom to a square, resized, minus
 * DETECTOR_MEAN, over 255; boxes.ts decodes the grid on the CPU.
 */
import type { Engine, Tensor } from '../../tensor.js';
import { leakyRelu, maxPool2d, samePadding } from '../../ops/index.js';
import type { TfjsWeights } from '../../io/tfjs.js';
import { FrozenConv } from './layers.js';

export const DETECTOR_MEAN = [117.001, 114.697, 97.404] as const;
export const DEFAULT_INPUT_SIZE = 416;
export const DEFAULT_SCORE_THRESHOLD = 0.5;
const LEAK = 0.1;
/** Output widths of conv1..conv5. */
const WIDTHS = [32, 64, 128, 256, 512];

/** Max pooling 2x2 with TensorFlow's SAME padding. */
function poolSame(x: Tensor, stride: number): Tensor {
  const [top, bottom] = samePadding(x.shape[2], 2, stride);
  const [left, right] = samePadding(x.shape[3], 2, stride);
  return maxPool2d(x, { kernel: 2, stride, padding: [top, bottom, left, right] });
}

export class FaceDetector {
  private constructor(
    readonly gpu: Engine,
    private readonly stem: FrozenConv,
    private readonly separable: readonly (readonly [FrozenConv, FrozenConv])[],
    private readonly head: FrozenConv,
  ) {}

  /** Builds the network from face-api's `tiny_face_detector_model` weights; `source` names them in errors. */
  static load(gpu: Engine, weights: TfjsWeights, source: string): FaceDetector {
    const load = (spec: Parameters<typeof FrozenConv.load>[2]) => FrozenConv.load(gpu, weights, spec, source);
    const stem = load({ filters: 'conv0/filters', bias: 'conv0/bias', shape: [3, 3, 3, 16], options: { padding: 0 } });
    let width = 16;
    const separable = WIDTHS.map((out, i) => {
      const p = `conv${i + 1}`;
      const depthwise = load({
        filters: `${p}/depthwise_filter`,
        shape: [3, 3, width, 1],
        depthwise: true,
        options: { padding: 1 },
      });
      const pointwise = load({ filters: `${p}/pointwise_filter`, bias: `${p}/bias`, shape: [1, 1, width, out] });
      width = out;
      return [depthwise, pointwise] as const;
    });
    const head = load({ filters: 'conv8/filters', bias: 'conv8/bias', shape: [1, 1, 512, 25] });
    return new FaceDetector(gpu, stem, separable, head);
  }

  /** The box grid [N, 25, S, S] of a batch of network inputs [N, 3, 32 S, 32 S]. */
  forward(x: Tensor): Tensor {
    const [, c, h, w] = x.shape;
    if (x.shape.length !== 4 || c !== 3 || h !== w || h % 32 !== 0 || h === 0)
      throw new Error(`FaceDetector: input [${x.shape.join(', ')}], expected [N, 3, S, S] with S a multiple of 32`);
    let out = poolSame(leakyRelu(this.stem.forward(x), LEAK), 2);
    this.separable.forEach(([depthwise, pointwise], i) => {
      out = poolSame(leakyRelu(pointwise.forward(depthwise.forward(out)), LEAK), i < 4 ? 2 : 1);
    });
    return this.head.forward(out);
  }

  dispose(): void {
    [this.stem, ...this.separable.flat(), this.head].forEach((l) => l.dispose());
  }
}
