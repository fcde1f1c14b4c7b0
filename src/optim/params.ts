/**
 * Parameters live in one flat arena (and their gradients in a second one), each tensor a view at
 * an offset aligned for storage binding. So zeroing every gradient is one dispatch and an optimiser
 * step over all parameters is one kernel, whatever the number of tensors.
 */
import { Tensor, Storage, shapeSize, formatShape, type Shape } from '../tensor.js';
import type { Gpu } from '../engine.js';
import { STORAGE_USAGE } from '../gpu/pool.js';

export interface ParamSpec {
  name: string;
  shape: Shape;
}

export class ParameterSet {
  private readonly byName = new Map<string, Tensor>();
  /** Floats in each arena, padding included. */
  readonly length: number;
  private readonly valueBuffer: GPUBuffer;
  private readonly gradBuffer: GPUBuffer;
  private disposed = false;

  constructor(
    readonly gpu: Gpu,
    specs: readonly ParamSpec[],
  ) {
    const align = Math.max(gpu.limits.minStorageBufferOffsetAlignment, 16) / 4;
    const offsets: number[] = [];
    let length = 0;
    for (const s of specs) {
      if (this.byName.has(s.name) || offsets.length !== this.byName.size)
        throw new Error(`duplicate parameter ${s.name}`);
      offsets.push(length);
      length += Math.ceil(Math.max(shapeSize(s.shape), 1) / align) * align;
      this.byName.set(s.name, null as unknown as Tensor);
    }
    this.length = Math.max(length, align);
    const bytes = this.length * 4;
    this.valueBuffer = gpu.device.createBuffer({ size: bytes, usage: STORAGE_USAGE, label: 'parameters' });
    this.gradBuffer = gpu.device.createBuffer({ size: bytes, usage: STORAGE_USAGE, label: 'gradients' });
    this.values = this.arenaView(this.valueBuffer, 'parameters');
    this.grads = this.arenaView(this.gradBuffer, 'gradients');
    gpu.noGrad(() =>
      specs.forEach((s, i) => {
        const t = this.slot(this.values, offsets[i], s.shape, s.name);
        t.requiresGrad = true;
        t.grad = this.slot(this.grads, offsets[i], s.shape, `${s.name}.grad`);
        this.byName.set(s.name, t);
      }),
    );
    this.values.fill(0);
    this.grads.fill(0);
  }

  /** All parameter values, as one flat tensor (padding included). */
  readonly values: Tensor;
  /** All gradients, as one flat tensor (padding included, always zero). */
  readonly grads: Tensor;

  private arenaView(buffer: GPUBuffer, name: string): Tensor {
    const t = new Tensor(this.gpu, [this.length], new Storage(this.gpu, buffer, 0, this.length * 4, null), name);
    this.gpu.tape.untrack(t);
    return t;
  }

  /** A tensor over part of an arena (written whole by zeroGrad and optimiser steps). */
  private slot(arena: Tensor, offset: number, shape: Shape, name: string): Tensor {
    const { storage } = arena;
    const part = new Storage(this.gpu, storage.buffer, offset * 4, shapeSize(shape) * 4, null, storage);
    const t = new Tensor(this.gpu, shape, part, name);
    this.gpu.tape.untrack(t);
    return t;
  }

  get(name: string): Tensor {
    const t = this.byName.get(name);
    if (!t) throw new Error(`no parameter named ${name}`);
    return t;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  entries(): [string, Tensor][] {
    return [...this.byName.entries()];
  }

  /** Sets one parameter's values. */
  set(name: string, data: Float32Array): void {
    const t = this.get(name);
    if (data.length !== t.size)
      throw new Error(`parameter ${name} ${formatShape(t.shape)} takes ${t.size} values, got ${data.length}`);
    t.write(data);
  }

  zeroGrad(): void {
    this.grads.fill(0);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    // Disposing a parameter disposes its gradient and what was derived from it.
    for (const t of [...this.byName.values(), this.values, this.grads]) t.dispose();
    this.gpu.recorder.retire(this.valueBuffer);
    this.gpu.recorder.retire(this.gradBuffer);
  }
}
