/**
 * The engine: a device context (gpu/), the kernel registry over it, and the autograd tape whose
 * gradient accumulation is the elementwise `accumulate` op. This is what `Gpu.open()` returns and
 * what every tensor belongs to; the layers below it know nothing of each other's callers.
 */
import { DeviceContext, type GpuOptions, type EngineFeatures } from './gpu/device.js';
import type { FeatureLevel } from './gpu/adapter.js';
import type { BufferPool } from './gpu/pool.js';
import type { CommandRecorder } from './gpu/recorder.js';
import { KernelRegistry } from './kernels/registry.js';
import type { TuneOptions, TuningRun } from './kernels/tuner.js';
import { Tape } from './autograd/tape.js';
import { accumulate, add, fill } from './ops/elementwise.js';
import { Tensor, type Engine } from './tensor.js';

export type { GpuOptions, EngineFeatures, FeatureLevel };

export class Gpu implements Engine {
  readonly kernels: KernelRegistry;
  /** Autograd tape, grad mode and tensor scopes of this engine. */
  readonly tape: Tape = new Tape({ full: (like, value) => Tensor.full(this, like.shape, value), accumulate, sum: add });
  /** Values derived from tensors (see `derive`), by what they are and the ids of their sources. */
  private readonly derived = new Map<string, Derived>();
  /** The keys in `derived` of what each tensor is a source of. */
  private readonly derivedFrom = new Map<Tensor, Set<string>>();

  // The device context's parts, part of the engine's API.
  readonly adapter: GPUAdapter;
  readonly device: GPUDevice;
  readonly features: EngineFeatures;
  /** `compatibility` where the device keeps to WebGPU's compatibility mode (`GpuOptions.featureLevel`). */
  readonly featureLevel: FeatureLevel;
  readonly limits: GPUSupportedLimits;
  readonly pool: BufferPool;
  readonly recorder: CommandRecorder;

  private constructor(readonly context: DeviceContext) {
    ({
      adapter: this.adapter,
      device: this.device,
      features: this.features,
      featureLevel: this.featureLevel,
      limits: this.limits,
      pool: this.pool,
      recorder: this.recorder,
    } = context);
    this.kernels = new KernelRegistry(context);
  }

  static async open(options: GpuOptions = {}): Promise<Gpu> {
    return new Gpu(await DeviceContext.open(options));
  }

  /** A short description of the adapter, for logs and benchmark tables. */
  describe(): string {
    return this.context.describe();
  }

  get isDisposed(): boolean {
    return this.context.isDisposed;
  }

  /** Throws, naming `operation`, if this engine was disposed. */
  assertOpen(operation: string): void {
    this.context.assertOpen(operation);
  }

  /** Throws, naming `operation`, if the engine was disposed, or the device lost or reported an error. */
  checkAlive(operation?: string): void {
    this.context.checkAlive(operation);
  }

  /** Submits what has been recorded. */
  submit(): void {
    this.context.submit();
  }

  /** Submits, waits until the GPU has finished, and throws any error of the submitted work. */
  sync(): Promise<void> {
    return this.context.sync();
  }

  /**
   * Runs `run` (a forward or a training step) once as a tuning run: every shape it meets for which
   * an op offers kernel variants and this adapter has no choice yet is timed, variant by variant,
   * and the fastest is kept in the user's cache folder for every later run (kernels/tuner.ts).
   */
  tune<T>(run: () => T | Promise<T>, options?: TuneOptions): Promise<TuningRun<T>> {
    return this.kernels.tuner.tune(run, options);
  }

  /** Waits for the GPU, then destroys the pool's idle buffers. */
  trim(): Promise<void> {
    return this.context.trim();
  }

  /** Destroys the device so the process can exit on its own. Safe to call twice. */
  dispose(): void {
    this.context.dispose();
  }

  /** Sets every element of `t` to `value` (recorded in the current step). */
  fill(t: Tensor, value: number): void {
    fill(t, value);
  }

  /** Runs `fn`, then disposes every tensor it made except those it returns. */
  scope<T>(fn: () => T): T {
    return this.tape.scope(fn);
  }

  /** Runs `fn` without recording gradients. */
  noGrad<T>(fn: () => T): T {
    return this.tape.noGrad(fn);
  }

  /**
   * The value `what` (e.g. 'conv2d weights packed for 4 groups': everything else it depends on)
   * computed by `make` from the tensors `sources`; made again when missing, or when a source was
   * written since (its version changed). The engine owns it: it is disposed when replaced, and
   * when one of its sources is freed.
   *
   * Each tensor's own version, not one engine-wide counter: an engine-wide counter bumped by every
   * write would repack every weight whenever an input or activation is written, and one bumped
   * only by some writes (parameters) misses the rest (fills, BatchNorm buffers). Versions are
   * bumped where every write passes (an upload, a dispatch binding the tensor writable).
   */
  derive<T extends { dispose(): void }>(sources: readonly Tensor[], what: string, make: () => T): T {
    const key = `${what} of ${sources.map((t) => t.id).join(', ')}`;
    const hit = this.derived.get(key);
    if (hit && hit.sources.every((t, i) => t.version === hit.versions[i])) return hit.value as T;
    const versions = sources.map((t) => t.version);
    const value = make();
    hit?.value.dispose();
    this.derived.set(key, { sources, versions, value });
    for (const t of sources) {
      let keys = this.derivedFrom.get(t);
      if (!keys) this.derivedFrom.set(t, (keys = new Set()));
      keys.add(key);
    }
    return value;
  }

  /** Disposes what was derived from `source` (a tensor being freed). */
  forget(source: Tensor): void {
    const keys = this.derivedFrom.get(source);
    if (!keys) return;
    this.derivedFrom.delete(source);
    for (const key of keys) {
      const entry = this.derived.get(key)!;
      this.derived.delete(key);
      entry.value.dispose();
      for (const t of entry.sources) this.derivedFrom.get(t)?.delete(key);
    }
  }
}

/** A value `Gpu.derive` keeps, with the versions of its sources it was made from. */
interface Derived {
  sources: readonly Tensor[];
  versions: number[];
  value: { dispose(): void };
}
