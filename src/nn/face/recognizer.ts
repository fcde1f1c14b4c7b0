/**
 * dlib's face-recognition ResNet as face-api ships it (`face_recognition_model`): a 150x150 RGB face
 * in, a 128-D descriptor out (the same person below a Euclidean distance of about 0.6).
 *
 *   conv 7x7 stride 2 valid (3 -> 32) + ReLU, max pool 3x3 stride 2 valid         150 -> 72 -> 35
 *   3 residual blocks (32), a down block to 64 + 3 blocks, to 128 + 2, to 256 + 2,   35 -> 17 -> 8 -> 4
 *   a last down block (256 -> 256), the spatial mean, a dense layer 256 -> 128       4 -> 2
 * A residual block: relu(conv3x3(relu(conv3x3(x))) + x), SAME padding. A down block: its first
 * conv is 3x3 stride 2 valid; the shortcut is x average-pooled 2x2 stride 2, zero channels appended
 * when the width doubles; where the strided conv comes out a row and column short of the pool (an
 * even input), its output gets a zero row and column at the bottom and right. Every conv carries a
 * scale layer, folded into it (layers.ts). The input is face-api's (input.ts): padded to a centred
 * square, resized to 150, minus RECOGNIZER_MEAN, over 255.
 */
import { Tensor, type Engine } from '../../tensor.js';
import {
  add,
  avgPool2d,
  conv2d,
  dense,
  globalAvgPool,
  maxPool2d,
  padChannels,
  relu,
  reshape,
} from '../../ops/index.js';
import { requireTensor, type TfjsWeights } from '../../io/tfjs.js';
import { FrozenConv, type ConvSpec } from './layers.js';

export const RECOGNIZER_SIZE = 150;
export const RECOGNIZER_MEAN = [122.782, 117.001, 104.298] as const;
export const DESCRIPTOR_LENGTH = 128;
/** The distance below which face-api (and dlib) call two descriptors the same person. */
export const MATCH_DISTANCE = 0.6;

/** The blocks after the stem: name, output width, whether it downsamples. */
const BLOCKS: readonly (readonly [string, number, boolean])[] = [
  ['conv32_1', 32, false],
  ['conv32_2', 32, false],
  ['conv32_3', 32, false],
  ['conv64_down', 64, true],
  ['conv64_1', 64, false],
  ['conv64_2', 64, false],
  ['conv64_3', 64, false],
  ['conv128_down', 128, true],
  ['conv128_1', 128, false],
  ['conv128_2', 128, false],
  ['conv256_down', 256, true],
  ['conv256_1', 256, false],
  ['conv256_2', 256, false],
  ['conv256_down_out', 256, true],
];

/** One residual block of the recognizer: its two convolutions (and, in down blocks, the padding tap). */
export interface RecognizerBlock {
  conv1: FrozenConv;
  conv2: FrozenConv;
  /** Down blocks: the bottom-right tap [width, 1, 2, 2] of padBottomRight. */
  tap: Tensor | null;
}

/**
 * x with a zero row at the bottom and a zero column at the right where it is a row (column) short
 * of height x width. The ops pad channels, not space, so this is a depthwise 2x2 convolution whose
 * only non-zero tap, 1 at the bottom right (`tap`, [C, 1, 2, 2]), reads x at the output's own
 * position: padding 1 above and to the left, and 1 below (right) where a row (column) is added.
 */
function padBottomRight(x: Tensor, tap: Tensor, height: number, width: number): Tensor {
  const [, c, h, w] = x.shape;
  if (h === height && w === width) return x;
  if (height - h > 1 || width - w > 1 || h > height || w > width)
    throw new Error(`FaceRecognizer: cannot pad [${x.shape.join(', ')}] to ${height}x${width}`);
  return conv2d(x, tap, null, { padding: [1, height - h, 1, width - w], groups: c });
}

export class FaceRecognizer {
  private constructor(
    readonly gpu: Engine,
    private readonly stem: FrozenConv,
    private readonly blocks: readonly RecognizerBlock[],
    private readonly fc: Tensor,
  ) {}

  /** Builds the network from face-api's `face_recognition_model` weights; `source` names them in errors. */
  static load(gpu: Engine, weights: TfjsWeights, source: string): FaceRecognizer {
    const layer = (prefix: string, shape: ConvSpec['shape'], options: ConvSpec['options']) =>
      FrozenConv.load(
        gpu,
        weights,
        {
          filters: `${prefix}/conv/filters`,
          bias: `${prefix}/conv/bias`,
          scale: { weights: `${prefix}/scale/weights`, biases: `${prefix}/scale/biases` },
          shape,
          options,
        },
        source,
      );
    const stem = layer('conv32_down', [7, 7, 3, 32], { stride: 2, padding: 0 });
    let width = 32;
    const blocks = BLOCKS.map(([name, out, down]) => {
      const conv1 = layer(`${name}/conv1`, [3, 3, width, out], down ? { stride: 2, padding: 0 } : { padding: 1 });
      const conv2 = layer(`${name}/conv2`, [3, 3, out, out], { padding: 1 });
      width = out;
      const tap = Float32Array.from({ length: out * 4 }, (_, i) => (i % 4 === 3 ? 1 : 0));
      return { conv1, conv2, tap: down ? Tensor.fromArray(gpu, tap, [out, 1, 2, 2]) : null };
    });
    const fc = Tensor.fromArray(gpu, requireTensor(weights, 'fc', [256, DESCRIPTOR_LENGTH], source), [256, 128]);
    return new FaceRecognizer(gpu, stem, blocks, fc);
  }

  /** Descriptors [N, 128] of a batch of network inputs [N, 3, 150, 150]. */
  forward(x: Tensor): Tensor {
    const [n, c, h, w] = x.shape;
    if (x.shape.length !== 4 || c !== 3 || h !== RECOGNIZER_SIZE || w !== RECOGNIZER_SIZE)
      throw new Error(`FaceRecognizer: input [${x.shape.join(', ')}], expected [N, 3, 150, 150]`);
    let out = maxPool2d(relu(this.stem.forward(x)), { kernel: 3, stride: 2, padding: 0 });
    for (const { conv1, conv2, tap } of this.blocks) {
      const inner = conv2.forward(relu(conv1.forward(out)));
      if (!tap) {
        out = relu(add(inner, out));
        continue;
      }
      const pooled = avgPool2d(out, { kernel: 2, stride: 2, padding: 0 });
      const [, cin, ph, pw] = pooled.shape;
      const shortcut = inner.shape[1] > cin ? padChannels(pooled, 0, inner.shape[1] - cin) : pooled;
      out = relu(add(padBottomRight(inner, tap, ph, pw), shortcut));
    }
    const features = reshape(globalAvgPool(out), [n, out.shape[1]]);
    return dense(features, this.fc, null);
  }

  dispose(): void {
    [this.stem, ...this.blocks.flatMap((b) => [b.conv1, b.conv2])].forEach((l) => l.dispose());
    this.blocks.forEach((b) => b.tap?.dispose());
    this.fc.dispose();
  }
}
