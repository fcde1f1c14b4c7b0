/**
 * The device layer: adapter and device acquisition, limits and features, error reporting, buffer
 * pool and command recorder. It knows nothing of tensors, kernels or autograd (see engine.ts).
 */
import './globals.js';
import { platform } from '../platform/index.js';
import {
  adapterText,
  defaultAdapter,
  environmentSettings,
  FEATURE_LEVELS,
  namedAdapter,
  requiredLimits,
  type FeatureLevel,
  type LimitsChoice,
} from './adapter.js';
import { BufferPool } from './pool.js';
import { CommandRecorder } from './recorder.js';

export interface GpuOptions {
  /** A case-insensitive part of the adapter's name or description (default: SISN_ADAPTER, else the best adapter). */
  adapter?: string;
  /** `default`: request WebGPU's default limits instead of the adapter's (default: SISN_LIMITS, else `adapter`). */
  limits?: LimitsChoice;
  /**
   * `compatibility`: a device in WebGPU's compatibility mode, as on devices with only OpenGL ES
   * (Dawn's OpenGL ES backend in Node); `core`: a core device only. Default: SISN_FEATURE_LEVEL,
   * else a core device, or one in compatibility mode where the host offers no core adapter.
   */
  featureLevel?: FeatureLevel;
  /** Use the `subgroups` feature when the adapter has it (default: SISN_SUBGROUPS=on|off, else true). */
  subgroups?: boolean;
  /** Use the `shader-f16` feature when the adapter has it (default true). */
  f16?: boolean;
  powerPreference?: GPUPowerPreference;
  /**
   * `timestamp-query`, with which `recorder.startProfiling()` and the kernel tuner time kernels:
   * true requires it (an error where the adapter lacks it), false leaves it off; by default it is
   * requested where the adapter has it.
   */
  profiling?: boolean;
}

/** Optional features the engine knows how to use, and whether this device has them. */
export interface EngineFeatures {
  subgroups: boolean;
  f16: boolean;
}

/**
 * Whether the kernels' subgroup paths hold on this adapter: they take values from lanes 0-3 of
 * every subgroup of a 64-invocation workgroup, so they need subgroups of 4 to 64 lanes (a size the
 * adapter may pick per pipeline, a power of two, so 64 invocations are whole subgroups). Elsewhere,
 * or where the adapter does not say, the portable paths run.
 */
export function subgroupSizesFit(info: Pick<GPUAdapterInfo, 'subgroupMinSize' | 'subgroupMaxSize'>): boolean {
  const min = info.subgroupMinSize ?? 0;
  const max = info.subgroupMaxSize ?? 0;
  return min >= 4 && min <= max && max <= 64;
}

// dawn.node segfaults when the object returned by create() is collected while a device lives:
// every DeviceContext keeps it, and this set keeps every live one.
const live = new Set<DeviceContext>();

export class DeviceContext {
  readonly pool: BufferPool;
  readonly recorder: CommandRecorder;
  private lostError: Error | null = null;
  private uncaptured: Error | null = null;
  private disposed = false;

  private constructor(
    private readonly navigatorGpu: GPU,
    readonly adapter: GPUAdapter,
    readonly device: GPUDevice,
    readonly features: EngineFeatures,
    /** `compatibility` where the device keeps to WebGPU's compatibility mode. */
    readonly featureLevel: FeatureLevel,
  ) {
    this.pool = new BufferPool(device, device.limits.maxBufferSize);
    this.recorder = new CommandRecorder(device, device.limits.minUniformBufferOffsetAlignment);
    void device.lost.then((info) => {
      if (this.disposed) return;
      this.lostError = new Error(`GPU device lost (${info.reason}): ${info.message}`);
    });
    device.addEventListener('uncapturederror', (ev) => {
      const e = ev.error;
      this.uncaptured ??= new Error(`GPU error outside any step: ${e.message}`);
    });
    live.add(this);
  }

  static async open(options: GpuOptions = {}): Promise<DeviceContext> {
    const env = environmentSettings();
    const name = options.adapter ?? env.adapter;
    const level = options.featureLevel ?? env.featureLevel;
    if (level !== undefined && !FEATURE_LEVELS.includes(level))
      throw new Error(`Gpu.open: featureLevel must be 'core' or 'compatibility', not '${String(level)}'`);
    const choose = (featureLevel: FeatureLevel) =>
      name
        ? namedAdapter(platform.adapterHost, name, featureLevel)
        : defaultAdapter(platform.adapterHost, options.powerPreference, featureLevel);
    let featureLevel: FeatureLevel = level ?? 'core';
    let chosen = await choose(featureLevel);
    if (!chosen && level === undefined) chosen = await choose((featureLevel = 'compatibility'));
    if (!chosen) {
      const what = featureLevel === 'compatibility' ? 'WebGPU adapter in compatibility mode' : 'WebGPU adapter';
      throw new Error(`no ${what} found: ${platform.noAdapterHelp}`);
    }
    const { adapter, navigatorGpu } = chosen;
    const wanted: GPUFeatureName[] = [];
    const subgroups =
      (options.subgroups ?? env.subgroups) !== false &&
      adapter.features.has('subgroups') &&
      subgroupSizesFit(adapter.info);
    const f16 = options.f16 !== false && adapter.features.has('shader-f16');
    if (subgroups) wanted.push('subgroups');
    if (f16) wanted.push('shader-f16');
    if (options.profiling && !adapter.features.has('timestamp-query'))
      throw new Error('this adapter has no timestamp-query feature: kernel profiling is unavailable');
    if (options.profiling !== false && adapter.features.has('timestamp-query')) wanted.push('timestamp-query');
    // Unless told otherwise, ask for the adapter's real limits: the defaults (128 MiB bindings, 8
    // storage buffers per stage) are lower than most adapters offer.
    const limits = requiredLimits(adapter, options.limits ?? env.limits ?? 'adapter');
    const device = await adapter.requestDevice({
      requiredFeatures: wanted,
      requiredLimits: limits,
      label: 'sisn-webgpu',
    });
    // A core adapter that answered a compatibility request still makes a device in compatibility
    // mode, unless the device asks for 'core-features-and-limits' (which this one does not).
    const compatibility = featureLevel === 'compatibility' && !device.features.has('core-features-and-limits');
    return new DeviceContext(
      navigatorGpu,
      adapter,
      device,
      { subgroups, f16 },
      compatibility ? 'compatibility' : 'core',
    );
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  /** A short description of the adapter, for logs and benchmark tables. */
  describe(): string {
    const feats = Object.entries(this.features)
      .filter(([, on]) => on)
      .map(([k]) => k);
    const mode = this.featureLevel === 'compatibility' ? 'compatibility mode, ' : '';
    return `${adapterText(this.adapter.info)} [${mode}${feats.join(', ') || 'no optional features'}]`;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Throws, naming `operation`, if this engine was disposed. */
  assertOpen(operation: string): void {
    if (this.disposed) throw new Error(`${operation}: the GPU engine was disposed`);
  }

  /** Throws, naming `operation`, if the engine was disposed, or the device lost or reported an error. */
  checkAlive(operation = 'GPU work'): void {
    this.assertOpen(operation);
    if (this.lostError) throw this.lostError;
    if (this.uncaptured) {
      const e = this.uncaptured;
      this.uncaptured = null;
      throw e;
    }
  }

  /** Submits what has been recorded. */
  submit(): void {
    this.checkAlive();
    this.recorder.submit();
  }

  /** Submits, waits until the GPU has finished, and throws any error of the submitted work. */
  async sync(): Promise<void> {
    this.checkAlive('gpu.sync()');
    this.submit();
    await this.recorder.waitFor(() => this.device.queue.onSubmittedWorkDone());
    await this.recorder.checkErrors();
    this.checkAlive('gpu.sync()');
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
