/** Compiling a model's pipelines ahead of its first step (KernelRegistry.prepare). */
import type { Engine } from '../tensor.js';
import { defineConvVariants } from './conv2d-variants.js';

/**
 * A pipeline a model launches: a kernel, and its override constants, each a number or the name of
 * one of the shader's constants (`{ OP: 'OP_ADD' }`, the codes' one source).
 */
export interface PipelineUse {
  name: string;
  constants?: Record<string, number | string>;
}

/**
 * Compiles (and runs once, empty) the given pipelines and those of the kernel variants tuned for
 * this adapter. Returns the number of pipelines.
 */
export function preparePipelines(gpu: Engine, uses: readonly PipelineUse[]): Promise<number> {
  defineConvVariants(gpu);
  return gpu.kernels.prepare(
    uses.map(({ name, constants }) => ({
      name,
      constants:
        constants &&
        Object.fromEntries(
          Object.entries(constants).map(([k, v]) => [k, typeof v === 'string' ? gpu.kernels.constant(name, v) : v]),
        ),
    })),
  );
}
