/**
 * Adam exactly as torch.optim.Adam (bias correction, eps outside the square root, no weight decay),
 * one kernel over the whole parameter arena; optional gradient value clipping
 * (torch.nn.utils.clip_grad_value_ before the step).
 */
import { Tensor } from '../tensor.js';
import type { ParameterSet } from './params.js';

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  /** Clamp every gradient to [-clip, clip] before the step; 0 disables. */
  gradClip?: number;
}

export class Adam {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  gradClip: number;
  /** Steps taken (torch's `state['step']`). */
  step = 0;
  readonly expAvg: Tensor;
  readonly expAvgSq: Tensor;

  constructor(
    readonly params: ParameterSet,
    options: AdamOptions = {},
  ) {
    this.lr = options.lr ?? 1e-3;
    [this.beta1, this.beta2] = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    this.gradClip = options.gradClip ?? 0;
    const gpu = params.gpu;
    this.expAvg = Tensor.zeros(gpu, [params.length]);
    this.expAvgSq = Tensor.zeros(gpu, [params.length]);
    gpu.tape.untrack(this.expAvg);
    gpu.tape.untrack(this.expAvgSq);
  }

  /** Records one update of every parameter from its gradient. */
  update(): void {
    this.step++;
    const gpu = this.params.gpu;
    const uniforms = {
      beta1: this.beta1,
      beta2: this.beta2,
      one_minus_beta1: 1 - this.beta1,
      one_minus_beta2: 1 - this.beta2,
      eps: this.eps,
      step_size: this.lr / (1 - this.beta1 ** this.step),
      bc2_sqrt: Math.sqrt(1 - this.beta2 ** this.step),
      clip: this.gradClip,
    };
    // One dispatch, unless the arena is larger than one storage binding may be; parts start at
    // binding offsets the adapter accepts.
    const align = gpu.limits.minStorageBufferOffsetAlignment / 4;
    const maxFloats = Math.floor(gpu.limits.maxStorageBufferBindingSize / 4 / align) * align;
    for (let start = 0; start < this.params.length; start += maxFloats) {
      const n = Math.min(maxFloats, this.params.length - start);
      // A part of t's range, and t is told of the write (what was derived from a parameter is stale).
      const part = (t: Tensor) => ({
        range: { buffer: t.range.buffer, offset: t.range.offset + start * 4, size: n * 4 },
        markWritten: () => t.markWritten(),
      });
      gpu.kernels.dispatch('adam.step', {
        uniforms: { n, ...uniforms },
        buffers: {
          param: part(this.params.values),
          m: part(this.expAvg),
          v: part(this.expAvgSq),
          grad: part(this.params.grads),
        },
        invocations: n,
      });
    }
  }

  /** Restores the moments and step count saved from an Adam over the same parameter layout. */
  loadState(expAvg: Float32Array, expAvgSq: Float32Array, step: number): void {
    if (expAvg.length !== this.params.length || expAvgSq.length !== this.params.length) {
      throw new Error(`optimizer state has ${expAvg.length} values, the parameters need ${this.params.length}`);
    }
    this.expAvg.write(expAvg);
    this.expAvgSq.write(expAvgSq);
    this.step = step;
  }

  dispose(): void {
    this.expAvg.dispose();
    this.expAvgSq.dispose();
  }
}

/** torch.optim.lr_scheduler.MultiStepLR: lr = base * gamma^(number of milestones <= step). */
export class MultiStepLR {
  constructor(
    readonly optimizer: { lr: number },
    readonly milestones: readonly number[],
    readonly gamma = 0.5,
    readonly baseLr = optimizer.lr,
  ) {}

  /** Sets the optimiser's lr for the given (0-based, completed-steps) epoch/step count. */
  at(step: number): number {
    const passed = this.milestones.filter((m) => m <= step).length;
    this.optimizer.lr = this.baseLr * this.gamma ** passed;
    return this.optimizer.lr;
  }
}
