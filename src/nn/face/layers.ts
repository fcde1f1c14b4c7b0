/**
 * Frozen layers built from tfjs weights: tfjs stores filters as [kh, kw, cin, cout] (depthwise:
 * [kh, kw, channels, 1]); the engine's conv2d takes [cout, cin / groups, kh, kw]. A per-channel
 * scale layer after a convolution (y = (conv(x) + b) * s + t) is folded into it at load:
 * conv(x, W * s) + (b * s + t), the same to float rounding.
 */
import { Tensor, type Engine } from '../../tensor.js';
import { conv2d, type Conv2dOptions } from '../../ops/index.js';
import { requireTensor, type TfjsWeights } from '../../io/tfjs.js';

/** [kh, kw, cin, cout] -> [cout, cin, kh, kw]. */
export function hwioToOihw(hwio: Float32Array, [kh, kw, cin, cout]: readonly number[]): Float32Array {
  const out = new Float32Array(hwio.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++)
          out[((o * cin + i) * kh + y) * kw + x] = hwio[((y * kw + x) * cin + i) * cout + o];
  return out;
}

/** Where a layer's tensors are in a weights file, and how it convolves. */
export interface ConvSpec {
  filters: string;
  /** [kh, kw, cin, cout] as tfjs stores it ([kh, kw, channels, 1] when depthwise). */
  shape: readonly [number, number, number, number];
  bias?: string;
  /** A scale layer folded in: names of its per-output-channel weights and biases. */
  scale?: { weights: string; biases: string };
  depthwise?: boolean;
  options?: Omit<Conv2dOptions, 'groups'>;
}

export class FrozenConv {
  private constructor(
    readonly weight: Tensor,
    readonly bias: Tensor | null,
    readonly options: Conv2dOptions,
  ) {}

  static load(gpu: Engine, weights: TfjsWeights, spec: ConvSpec, source: string): FrozenConv {
    const [kh, kw, cin, m] = spec.shape;
    const cout = spec.depthwise ? cin : m;
    const w = hwioToOihw(requireTensor(weights, spec.filters, [...spec.shape], source), spec.shape);
    let b = spec.bias ? Float32Array.from(requireTensor(weights, spec.bias, [cout], source)) : null;
    if (spec.scale) {
      const s = requireTensor(weights, spec.scale.weights, [cout], source);
      const t = requireTensor(weights, spec.scale.biases, [cout], source);
      const per = w.length / cout;
      for (let i = 0; i < w.length; i++) w[i] *= s[Math.floor(i / per)];
      b = Float32Array.from(s, (sc, o) => (b ? b[o] : 0) * sc + t[o]);
    }
    const weight = Tensor.fromArray(gpu, w, spec.depthwise ? [cin, 1, kh, kw] : [cout, cin, kh, kw]);
    const bias = b && Tensor.fromArray(gpu, b, [cout]);
    return new FrozenConv(weight, bias, { ...spec.options, groups: spec.depthwise ? cin : 1 });
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, this.options);
  }

  dispose(): void {
    this.weight.dispose();
    this.bias?.dispose();
  }
}
