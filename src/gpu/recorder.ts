/**
 * Records a whole step into one command encoder and submits it once.
 *
 * - Dispatches share one compute pass until a copy needs the encoder itself.
 * - Uniform structs are written into mapped-at-creation chunks while recording (no
 *   `queue.writeBuffer`, which would run before the step's earlier commands) and unmapped at submit.
 * - Uploads go through mapped staging buffers and a recorded copy, so they are ordered with the
 *   dispatches around them.
 * - Validation and out-of-memory errors of a submit are collected in error scopes and thrown, with
 *   the labels (kernel names) of what was recorded, by the next `sync()` or readback.
 * - Dispatches can be timed (profiler.ts): all of them (`startProfiling`) or only those recorded
 *   inside `timed` (the kernel tuner's trials), each in a compute pass of its own.
 */
import './globals.js';
import { platform } from '../platform/index.js';
import { Profiler, type KernelTime } from './profiler.js';

const UNIFORM_CHUNK_BYTES = 64 * 1024;

interface UniformChunk {
  buffer: GPUBuffer;
  bytes: Uint8Array;
  used: number;
}

export interface UniformSlice {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

export class CommandRecorder {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private chunks: UniformChunk[] = [];
  private transient: GPUBuffer[] = [];
  private labels = new Set<string>();
  private pendingErrors: Promise<Error | null>[] = [];
  private profiler: Profiler | null = null;
  /** Whether every dispatch is timed (`startProfiling`), not only those of `timed`. */
  private profilingAll = false;
  /** The label the dispatches recorded now are timed under (inside `timed`). */
  private timedLabel: string | null = null;
  /** Dispatches recorded since the engine started (for tests and benchmarks). */
  dispatchCount = 0;
  submitCount = 0;
  /**
   * Sleep before waiting on the GPU (default: where the host polls busily, i.e. in Node). While a
   * map or work-done promise is pending, dawn.node polls its event loop without pause, taking a CPU
   * core that a software adapter (lavapipe) would use: waiting for most of the expected time on a
   * timer first avoids that. A browser waits without polling, and the sleep would only add latency.
   */
  quietWait = platform.pollsWhileWaiting;
  /**
   * Milliseconds from submit to completion, by a submit's signature: its kernels, dispatch count and
   * workgroup count (the same network on a 4x larger image has the same kernels and dispatches).
   */
  private readonly latency = new Map<string, number>();
  private lastSubmit = { at: 0, signature: '' };
  private dispatchesInEncoder = 0;
  private workgroupsInEncoder = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly uniformAlignment: number,
  ) {}

  /** Times every dispatch from now on (needs the `timestamp-query` feature). */
  startProfiling(): void {
    this.profiler ??= new Profiler(this.device);
    this.profilingAll = true;
  }

  /** Per-kernel GPU time of everything profiled and submitted so far. Call after `sync()`. */
  async profile(): Promise<Map<string, KernelTime>> {
    if (!this.profiler || !this.profilingAll) throw new Error('profiling was not started');
    return this.profiler.collect();
  }

  /**
   * Times the dispatches that `record` records under `label` (needs the `timestamp-query`
   * feature); read them with `takeTimes` after a sync. Dispatches outside stay untimed, in shared
   * passes, unless every dispatch is profiled.
   */
  timed<T>(label: string, record: () => T): T {
    this.profiler ??= new Profiler(this.device);
    const outer = this.timedLabel;
    this.timedLabel = label;
    try {
      return record();
    } finally {
      this.timedLabel = outer;
    }
  }

  /** The GPU time of `timed` labels (submitted and synced), removed from the profile. */
  async takeTimes(labels: readonly string[]): Promise<Map<string, KernelTime>> {
    return this.profiler ? this.profiler.take(labels) : new Map();
  }

  /** Called before a dispatch's resources are recorded: submits early when the profiler's queries are used up. */
  reserveDispatch(): void {
    if (this.profiler?.full) this.submit();
  }

  private getEncoder(): GPUCommandEncoder {
    if (!this.encoder) {
      this.device.pushErrorScope('out-of-memory');
      this.device.pushErrorScope('validation');
      this.encoder = this.device.createCommandEncoder({ label: 'step' });
    }
    return this.encoder;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /** Copies a packed uniform struct into this step's uniform memory. */
  uniform(data: Uint8Array): UniformSlice {
    const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
    let chunk = this.chunks[this.chunks.length - 1];
    const offset = chunk ? Math.ceil(chunk.used / this.uniformAlignment) * this.uniformAlignment : 0;
    if (!chunk || offset + size > UNIFORM_CHUNK_BYTES) {
      const buffer = this.device.createBuffer({
        size: UNIFORM_CHUNK_BYTES,
        usage: GPUBufferUsage.UNIFORM,
        mappedAtCreation: true,
        label: 'uniforms',
      });
      chunk = { buffer, bytes: new Uint8Array(buffer.getMappedRange()), used: 0 };
      this.chunks.push(chunk);
      this.getEncoder();
      return this.placeUniform(chunk, 0, data, size);
    }
    return this.placeUniform(chunk, offset, data, size);
  }

  private placeUniform(chunk: UniformChunk, offset: number, data: Uint8Array, size: number): UniformSlice {
    chunk.bytes.set(data, offset);
    chunk.used = offset + size;
    return { buffer: chunk.buffer, offset, size };
  }

  dispatch(
    pipeline: GPUComputePipeline,
    bindGroup: GPUBindGroup,
    groups: [number, number, number],
    label: string,
  ): void {
    this.getEncoder();
    const timedAs = this.timedLabel ?? (this.profilingAll ? label : null);
    if (timedAs !== null) {
      this.endPass();
      this.pass = this.encoder!.beginComputePass({ label, timestampWrites: this.profiler!.timestampWrites(timedAs) });
    }
    if (!this.pass) this.pass = this.encoder!.beginComputePass({ label: 'compute' });
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(groups[0], groups[1], groups[2]);
    // A timed pass holds its one dispatch only.
    if (timedAs !== null) this.endPass();
    this.labels.add(label);
    this.dispatchCount++;
    this.dispatchesInEncoder++;
    this.workgroupsInEncoder += groups[0] * groups[1] * groups[2];
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    const encoder = this.getEncoder();
    this.endPass();
    encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /** Records a copy of `data` into `dst` at `dstOffset` (bytes, multiple of 4). */
  upload(data: ArrayBufferView, dst: GPUBuffer, dstOffset: number): void {
    const bytes = Math.ceil(data.byteLength / 4) * 4;
    if (bytes === 0) return;
    const staging = this.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.COPY_SRC,
      mappedAtCreation: true,
      label: 'upload',
    });
    new Uint8Array(staging.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    staging.unmap();
    this.transient.push(staging);
    this.copy(staging, 0, dst, dstOffset, bytes);
  }

  /** Destroys a buffer once the commands recorded so far (which may use it) are submitted. */
  retire(buffer: GPUBuffer): void {
    if (this.encoder) this.transient.push(buffer);
    else buffer.destroy();
  }

  /** Ends the encoder and submits it. Does not wait for the GPU. */
  submit(): void {
    if (!this.encoder) return;
    this.endPass();
    for (const c of this.chunks) c.buffer.unmap();
    const afterSubmit = this.profiler?.resolve(this.encoder);
    const commands = this.encoder.finish();
    this.device.queue.submit([commands]);
    afterSubmit?.();
    this.submitCount++;
    const labels = [...this.labels].join(', ');
    const signature = `${this.dispatchesInEncoder}|${this.workgroupsInEncoder}|${labels}`;
    this.lastSubmit = { at: performance.now(), signature };
    this.dispatchesInEncoder = 0;
    this.workgroupsInEncoder = 0;
    const validation = this.device.popErrorScope();
    const oom = this.device.popErrorScope();
    this.pendingErrors.push(
      Promise.all([validation, oom]).then(([v, o]) => {
        const e = v ?? o;
        if (!e) return null;
        const kind = e === o ? 'out of memory' : 'validation error';
        return new Error(`GPU ${kind} in a step running [${labels}]: ${e.message}`);
      }),
    );
    // Destroying after submit is legal: WebGPU frees the memory once the submitted work is done.
    for (const c of this.chunks) c.buffer.destroy();
    for (const b of this.transient) b.destroy();
    this.chunks = [];
    this.transient = [];
    this.labels.clear();
    this.encoder = null;
  }

  /** Adds an error-scope result (e.g. of a synchronous pipeline creation) to what `checkErrors` reports. */
  track(scope: Promise<GPUError | null>, what: string): void {
    this.pendingErrors.push(scope.then((e) => (e ? new Error(`${what}: ${e.message}`) : null)));
  }

  /**
   * Waits for `done` (a promise on the last submit), first sleeping on a timer for most of the time
   * that submits of the same size took before; learns how long this one took.
   */
  async waitFor<T>(done: () => Promise<T>): Promise<T> {
    const { at, signature } = this.lastSubmit;
    const expected = this.latency.get(signature);
    let slept = false;
    if (this.quietWait && expected !== undefined) {
      const remaining = 0.85 * expected - (performance.now() - at);
      if (remaining > 2) {
        await new Promise((r) => setTimeout(r, remaining));
        slept = true;
      }
    }
    const woke = performance.now();
    const result = await done();
    const now = performance.now();
    const took = now - at;
    // A submit still running when the sleep ended took what it took: the estimate becomes that,
    // slower or faster. Work already done when the sleep ended finished somewhere during it, so the
    // estimate drops to 0.8 of it, and the next sleep ends before the work and measures it again.
    // Halving it instead, and following a slower submit gradually, kept the steps after an
    // oversleep polling busily for a quarter of their time, which slows a software adapter
    // (docs/performance.md).
    const overslept = slept && now - woke < 1;
    this.latency.set(signature, overslept ? 0.8 * took : took);
    return result;
  }

  /** Throws the first error of any submitted step. */
  async checkErrors(): Promise<void> {
    const pending = this.pendingErrors;
    this.pendingErrors = [];
    const errors = (await Promise.all(pending)).filter((e): e is Error => e !== null);
    if (errors.length) throw errors[0];
  }

  /**
   * Copies `bytes` from `src` into the caller's `into`, submitting the step recorded so far.
   * The one CPU copy is from the mapped staging range straight into `into`.
   */
  async read(src: GPUBuffer, srcOffset: number, bytes: number, into: ArrayBufferView): Promise<void> {
    if (into.byteLength < bytes) throw new Error(`readback target holds ${into.byteLength} bytes, need ${bytes}`);
    const padded = Math.ceil(bytes / 4) * 4;
    const staging = this.device.createBuffer({
      size: padded,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      label: 'readback',
    });
    this.copy(src, srcOffset, staging, 0, padded);
    this.submit();
    try {
      await this.waitFor(() => staging.mapAsync(GPUMapMode.READ));
      await this.checkErrors();
      new Uint8Array(into.buffer, into.byteOffset, bytes).set(
        new Uint8Array(staging.getMappedRange(0, padded), 0, bytes),
      );
      staging.unmap();
    } finally {
      staging.destroy();
    }
  }
}
