/**
 * Tensor: f32, contiguous, row-major (NCHW for images), stored in a pooled GPU buffer.
 *
 * Lifetime is explicit, because GPU memory must come back long before the JS garbage collector
 * would notice: every tensor starts with one reference (its creator's), `dispose()` drops it, the
 * autograd tape holds its own references to what a backward rule saved, and `gpu.scope(fn)`
 * disposes every tensor made inside `fn` except the ones it returns. Views (`viewOf`, and the
 * `reshape` op) share their storage, which goes back to the pool when the last view is gone.
 *
 * Every write (an upload, or a dispatch that binds the tensor writable) bumps its storage's
 * version: values derived from a tensor (`Engine.derive`: packed weights, BatchNorm folds) are
 * reused only while the versions they were made from hold, and are freed with the tensor.
 */
import type { EngineFeatures } from './gpu/device.js';
import type { BufferPool } from './gpu/pool.js';
import type { CommandRecorder } from './gpu/recorder.js';
import type { KernelRegistry } from './kernels/registry.js';
import type { BufferRange } from './kernels/launch.js';
import type { Tape, TapeNode } from './autograd/tape.js';
import { shapeSize, formatShape, type Shape } from './shape.js';

export { shapeSize, sameShape, formatShape, type Shape } from './shape.js';

/**
 * What tensors and the ops on them use of their engine: `Gpu` (engine.ts) implements it. Declared
 * here so that tensors depend on no engine module.
 */
export interface Engine {
  readonly kernels: KernelRegistry;
  readonly tape: Tape;
  readonly pool: BufferPool;
  readonly recorder: CommandRecorder;
  readonly adapter: GPUAdapter;
  readonly features: EngineFeatures;
  readonly limits: GPUSupportedLimits;
  readonly isDisposed: boolean;
  assertOpen(operation: string): void;
  checkAlive(operation?: string): void;
  sync(): Promise<void>;
  fill(t: Tensor, value: number): void;
  scope<T>(fn: () => T): T;
  noGrad<T>(fn: () => T): T;
  derive<T extends { dispose(): void }>(sources: readonly Tensor[], what: string, make: () => T): T;
  forget(source: Tensor): void;
}

/** GPU memory behind one or more tensor views. */
export class Storage {
  private refs = 1;
  /** Writes to this memory itself. */
  private writes = 0;
  /** Writes to the storages that are parts of this one (an arena's parameters). */
  private partWrites = 0;
  constructor(
    readonly gpu: Engine,
    readonly buffer: GPUBuffer,
    readonly offset: number,
    readonly bytes: number,
    /** Called when the last view is gone (returns the buffer to the pool, or nothing for arenas). */
    private readonly onFree: (() => void) | null,
    /** The storage this one is a part of (a parameter's slot in its arena), whose writes it sees. */
    readonly whole: Storage | null = null,
  ) {}

  /**
   * Changes whenever this memory may have changed: a write to it, to the whole it is part of (an
   * optimiser step over the arena) or to one of its parts; a write to a sibling part leaves it.
   */
  get version(): number {
    return this.writes + this.partWrites + (this.whole?.writes ?? 0);
  }

  /** Records that a write to this memory was recorded. */
  markWritten(): void {
    this.writes++;
    if (this.whole) this.whole.partWrites++;
  }

  /** Tensor views holding this storage. */
  get views(): number {
    return this.refs;
  }

  static pooled(gpu: Engine, bytes: number): Storage {
    const buffer = gpu.pool.acquire(Math.max(bytes, 4));
    return new Storage(gpu, buffer, 0, bytes, () => gpu.pool.release(buffer));
  }

  retain(): void {
    if (this.refs <= 0) throw new Error('use of freed tensor storage');
    this.refs++;
  }

  release(): void {
    if (this.refs <= 0) throw new Error('release() of tensor storage that holds no reference');
    if (--this.refs === 0) this.onFree?.();
  }

  get alive(): boolean {
    return this.refs > 0;
  }
}

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly size: number;
  /** Gradient accumulated by `backward()` (leaves that require grad only). */
  grad: Tensor | null = null;
  /** The tape node that produced this tensor, if it was recorded. */
  node: TapeNode | null = null;
  requiresGrad = false;
  private refs = 1;
  private userReleased = false;

  constructor(
    readonly gpu: Engine,
    readonly shape: Shape,
    readonly storage: Storage,
    public name = '',
  ) {
    this.size = shapeSize(shape);
    if (this.size * 4 > storage.bytes) throw new Error(`tensor ${formatShape(shape)} does not fit its storage`);
    gpu.tape.track(this);
  }

  /** An uninitialised tensor (its contents are whatever the pool's buffer held). */
  static empty(gpu: Engine, shape: Shape, operation = 'Tensor.empty'): Tensor {
    gpu.assertOpen(operation);
    return new Tensor(gpu, shape, Storage.pooled(gpu, shapeSize(shape) * 4));
  }

  static full(gpu: Engine, shape: Shape, value: number): Tensor {
    const t = Tensor.empty(gpu, shape, 'Tensor.full');
    t.fill(value);
    return t;
  }

  static zeros(gpu: Engine, shape: Shape): Tensor {
    return Tensor.full(gpu, shape, 0);
  }

  static fromArray(gpu: Engine, data: ArrayLike<number>, shape: Shape = [data.length]): Tensor {
    const n = shapeSize(shape);
    if (data.length !== n)
      throw new Error(`${data.length} values do not fill shape ${formatShape(shape)} (${n} elements)`);
    const t = Tensor.empty(gpu, shape, 'Tensor.fromArray');
    t.write(data instanceof Float32Array ? data : Float32Array.from(data));
    return t;
  }

  get range(): BufferRange {
    this.assertAlive();
    return { buffer: this.storage.buffer, offset: this.storage.offset, size: this.size * 4 };
  }

  get alive(): boolean {
    return this.refs > 0 && this.storage.alive;
  }

  /** Changes whenever this tensor's values may have changed (see Storage.version). */
  get version(): number {
    return this.storage.version;
  }

  /** Records that a write to this tensor was recorded (the registry calls it for each writable binding). */
  markWritten(): void {
    this.storage.markWritten();
  }

  /** References held on this tensor (its creator's and the tape's). */
  get refCount(): number {
    return this.refs;
  }

  /** Nothing else holds this tensor or a view of its storage: it may be updated in place. */
  get exclusive(): boolean {
    return this.refs === 1 && this.storage.views === 1;
  }

  private get label(): string {
    return `tensor ${this.name || '#' + this.id} ${formatShape(this.shape)}`;
  }

  private assertAlive(): void {
    if (!this.alive) throw new Error(`${this.label} was used after dispose()`);
  }

  /** Overwrites the contents (recorded in the current step, ordered with its dispatches). */
  write(data: Float32Array): void {
    this.assertAlive();
    this.gpu.assertOpen('tensor.write()');
    if (data.length !== this.size) throw new Error(`write of ${data.length} values into a tensor of ${this.size}`);
    this.gpu.recorder.upload(data, this.storage.buffer, this.storage.offset);
    this.markWritten();
  }

  /** Sets every element to `value` (the engine's fill kernel). */
  fill(value: number): this {
    this.gpu.fill(this, value);
    return this;
  }

  /** Copies the values into `into` (or a new array). Submits the recorded step. */
  async read(into?: Float32Array): Promise<Float32Array> {
    this.assertAlive();
    this.gpu.checkAlive('tensor.read()');
    const out = into ?? new Float32Array(this.size);
    if (out.length < this.size) throw new Error(`read target has ${out.length} elements, tensor has ${this.size}`);
    try {
      await this.gpu.recorder.read(this.storage.buffer, this.storage.offset, this.size * 4, out);
    } catch (e) {
      // Dawn rejects a pending map of a destroyed device with an AbortError and no message.
      if (this.gpu.isDisposed)
        throw new Error('tensor.read(): the GPU engine was disposed while the read was pending', { cause: e });
      throw e;
    }
    this.gpu.checkAlive('tensor.read()');
    return out;
  }

  /** An internal holder (the tape) keeps this tensor alive. */
  retain(): this {
    this.assertAlive();
    this.refs++;
    return this;
  }

  /** Drops an internal holder's reference; dropping one more than were taken is an error. */
  release(): void {
    if (this.refs <= 0) throw new Error(`${this.label}: release() without a reference to drop`);
    if (--this.refs === 0) {
      this.gpu.forget(this);
      this.storage.release();
      this.grad?.dispose();
      this.grad = null;
    }
  }

  /** Drops the creator's reference; memory returns to the pool once nothing else holds it. */
  dispose(): void {
    if (this.userReleased) return;
    this.userReleased = true;
    this.gpu.tape.untrack(this);
    this.release();
  }

  toString(): string {
    return `Tensor${formatShape(this.shape)}${this.name ? ' ' + this.name : ''}`;
  }
}

/**
 * A view of `t` with another shape of the same number of elements (shares its storage, no copy),
 * not recorded on the tape: for ops, which record what they make of it (the `reshape` op is the
 * recorded view); `operation` names the caller in errors.
 */
export function viewOf(t: Tensor, shape: Shape, operation = 'view'): Tensor {
  if (!t.alive) throw new Error(`${operation}: ${t.toString()} was used after dispose()`);
  if (shapeSize(shape) !== t.size)
    throw new Error(`${operation}: cannot view ${formatShape(t.shape)} as ${formatShape(shape)}`);
  t.storage.retain();
  return new Tensor(t.gpu, shape, t.storage);
}
