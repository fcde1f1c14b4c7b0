/**
 * The engine's one GPU context: adapter and device acquisition, limits and features, error
 * reporting, buffer pool, command recorder and kernel registry.
 */
import './globals.js';
import { platform } from '../platform/index.js';
import { BufferPool } from './pool.js';
import { CommandRecorder } from './recorder.js';
import { KernelRegistry } from '../kernels/registry.js';
import { Tape } from '../autograd/tape.js';

export interface GpuOptions {
  /** Use the `subgroups` feature when the adapter has it (default true). */
  subgroups?: boolean;
  /** Use the `shader-f16` feature when the adapter has it (default true). */
  f16?: boolean;
  powerPreference?: GPUPowerPreference;
  /** Request `timestamp-query` so `recorder.startProfiling()` can time kernels (default false). */
  profiling?: boolean;
}

/** Optional features the engine knows how to use, and whether this device has them. */
export interface EngineFeatures {
  subgroups: boolean;
  f16: boolean;
}

// dawn.node segfaults when the object returned by create() is collected while a device lives:
// every Gpu keeps it, and this set keeps every live Gpu.
const live = new Set<Gpu>();

export class Gpu {
  readonly pool: BufferPool;
  readonly recorder: CommandRecorder;
  readonly kernels: KernelRegistry;
  /** Autograd tape, grad mode and tensor scopes of this device. */
  readonly tape = new Tape();
  /**
   * Bumped whenever parameter values may change (a write to a tensor that requires grad, an
   * optimiser step): values derived from parameters (packed conv weights) are reused only while
   * it stays the same.
   */
  parameterVersion = 0;
  private readonly derived = new Map<object, { version: number; value: { dispose(): void } }>();
  private lostError: Error | null = null;
  private uncaptured: Error | null = null;
  private disposed = false;

  private constructor(
    private readonly navigatorGpu: GPU,
    readonly adapter: GPUAdapter,
    readonly device: GPUDevice,
    readonly features: EngineFeatures,
  ) {
    this.pool = new BufferPool(device, device.limits.maxBufferSize);
    this.recorder = new CommandRecorder(device, device.limits.minUniformBufferOffsetAlignment);
    this.kernels = new KernelRegistry(this);
    device.lost.then((info) => {
      if (this.disposed) return;
      this.lostError = new Error(`GPU device lost (${info.reason}): ${info.message}`);
    });
    device.addEventListener('uncapturederror', (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.uncaptured ??= new Error(`GPU error outside any step: ${e.message}`);
    });
    live.add(this);
  }

  static async open(options: GpuOptions = {}): Promise<Gpu> {
    const navigatorGpu = platform.gpu();
    const adapter = await navigatorGpu.requestAdapter({ powerPreference: options.powerPreference });
    if (!adapter) {
      throw new Error(`no WebGPU adapter found: ${platform.noAdapterHelp}`);
    }
    const wanted: GPUFeatureName[] = [];
    const subgroups = options.subgroups !== false && adapter.features.has('subgroups');
    const f16 = options.f16 !== false && adapter.features.has('shader-f16');
    if (subgroups) wanted.push('subgroups' as GPUFeatureName);
    if (f16) wanted.push('shader-f16');
    if (options.profiling) {
      if (!adapter.features.has('timestamp-query')) throw new Error('this adapter has no timestamp-query feature: kernel profiling is unavailable');
      wanted.push('timestamp-query');
    }
    // Ask for the adapter's real limits: the defaults (128 MiB bindings, 8 storage buffers per
    // stage) are lower than most adapters offer.
    const requiredLimits: Record<string, number> = {};
    for (const key of [
      'maxStorageBufferBindingSize',
      'maxBufferSize',
      'maxStorageBuffersPerShaderStage',
      'maxComputeWorkgroupStorageSize',
      'maxComputeInvocationsPerWorkgroup',
      'maxComputeWorkgroupSizeX',
      'maxComputeWorkgroupSizeY',
      'maxComputeWorkgroupSizeZ',
      'maxComputeWorkgroupsPerDimension',
    ] as const) {
      requiredLimits[key] = adapter.limits[key];
    }
    const device = await adapter.requestDevice({ requiredFeatures: wanted, requiredLimits, label: 'sisn-webgpu' });
    return new Gpu(navigatorGpu, adapter, device, { subgroups, f16 });
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  /** A short description of the adapter, for logs and benchmark tables. */
  describe(): string {
    const i = this.adapter.info;
    const name = [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' / ');
    const feats = Object.entries(this.features).filter(([, on]) => on).map(([k]) => k);
    return `${name || 'unnamed adapter'} [${feats.join(', ') || 'no optional features'}]`;
  }

  /** Throws if the device was lost or reported an error. */
  checkAlive(): void {
    if (this.disposed) throw new Error('the GPU engine was disposed');
    if (this.lostError) throw this.lostError;
    if (this.uncaptured) {
      const e = this.uncaptured;
      this.uncaptured = null;
      throw e;
    }
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
   * A value derived from `key` (e.g. a weight tensor) under the current parameter version, made by
   * `make` when missing or stale. The engine owns it: it is disposed when replaced or by `forget`.
   */
  derive<T extends { dispose(): void }>(key: object, make: () => T): T {
    const hit = this.derived.get(key);
    if (hit && hit.version === this.parameterVersion) return hit.value as T;
    hit?.value.dispose();
    const value = make();
    this.derived.set(key, { version: this.parameterVersion, value });
    return value;
  }

  /** Drops what was derived from `key`. */
  forget(key: object): void {
    this.derived.get(key)?.value.dispose();
    this.derived.delete(key);
  }

  /** Submits what has been recorded. */
  submit(): void {
    this.checkAlive();
    this.recorder.submit();
  }

  /** Submits, waits until the GPU has finished, and throws any error of the submitted work. */
  async sync(): Promise<void> {
    this.submit();
    await this.recorder.waitFor(() => this.device.queue.onSubmittedWorkDone());
    await this.recorder.checkErrors();
    this.checkAlive();
  }

  /** Waits for the GPU, then destroys the pool's idle buffers. */
  async trim(): Promise<void> {
    await this.sync();
    this.pool.destroyFree();
  }

  /** Destroys the device so the process can exit on its own. Safe to call twice. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.device.destroy();
    live.delete(this);
    void this.navigatorGpu;
  }
}
