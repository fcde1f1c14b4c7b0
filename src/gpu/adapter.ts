/**
 * Which WebGPU adapter the engine runs on, and which limits it asks of it.
 *
 * A name (`Gpu.open({ adapter })`, else the environment variable SISN_ADAPTER) picks the adapter
 * whose name, backend, vendor, architecture, device or description contains it, ignoring case.
 * Without a name, a real GPU wins over a software adapter, and SwiftShader comes last: Dawn's own
 * default prefers SwiftShader to lavapipe when both are registered, and it is much slower.
 */
import { platform } from '../platform/index.js';
import type { AdapterHost } from '../platform/types.js';

/** `adapter`: WebGPU's adapter limits as they are; `default`: the limits every WebGPU device has. */
export type LimitsChoice = 'adapter' | 'default';

/** One adapter as Dawn lists it. */
export interface AdapterEntry {
  /** The driver's name for the device, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`. */
  name: string;
  backend: string;
  adapter: GPUAdapter;
  /** The entry point the adapter came from: it must outlive every device made from the adapter. */
  navigatorGpu: GPU;
}

/** The limits that decide what the engine can run, asked at the adapter's values unless `default`. */
export const LIMITS_THAT_MATTER = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
] as const;

// An adapter name no driver has: Dawn answers it with the list of every adapter it sees.
const LIST_FLAG = 'adapter=(sisn-webgpu: list the adapters)';

/** The environment's settings (SISN_ADAPTER, SISN_SUBGROUPS=on|off, SISN_LIMITS=adapter|default); none in a browser. */
export function environmentSettings(): { adapter?: string; subgroups?: boolean; limits?: LimitsChoice } {
  const env = platform.env;
  const settings: { adapter?: string; subgroups?: boolean; limits?: LimitsChoice } = {};
  if (env.SISN_ADAPTER) settings.adapter = env.SISN_ADAPTER;
  if (env.SISN_SUBGROUPS) {
    if (env.SISN_SUBGROUPS !== 'on' && env.SISN_SUBGROUPS !== 'off')
      throw new Error(`SISN_SUBGROUPS must be 'on' or 'off', not '${env.SISN_SUBGROUPS}'`);
    settings.subgroups = env.SISN_SUBGROUPS === 'on';
  }
  if (env.SISN_LIMITS) {
    if (env.SISN_LIMITS !== 'adapter' && env.SISN_LIMITS !== 'default')
      throw new Error(`SISN_LIMITS must be 'adapter' or 'default', not '${env.SISN_LIMITS}'`);
    settings.limits = env.SISN_LIMITS;
  }
  return settings;
}

/** Vendor, architecture, device and description, as one line. */
export function adapterText(info: GPUAdapterInfo): string {
  return (
    [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' / ') || 'unnamed adapter'
  );
}

/** Lower is preferred: 0 hardware, 1 software (lavapipe), 2 SwiftShader. */
function preference(info: GPUAdapterInfo): number {
  if (/swiftshader/i.test(adapterText(info))) return 2;
  return info.isFallbackAdapter ? 1 : 0;
}

function preferred(entries: AdapterEntry[]): AdapterEntry {
  return entries.reduce((best, e) => (preference(e.adapter.info) < preference(best.adapter.info) ? e : best));
}

/** Every adapter the host sees; a host that cannot list them (a browser) gives its default one. */
export async function listAdapters(host: AdapterHost): Promise<AdapterEntry[]> {
  let listing = '';
  const probe = host.create([LIST_FLAG]);
  try {
    const adapter = await probe.requestAdapter();
    if (adapter) return [{ name: adapterText(adapter.info), backend: 'default', adapter, navigatorGpu: probe }];
  } catch (e) {
    listing = (e as Error).message;
  }
  const entries: AdapterEntry[] = [];
  for (const [, backend, name] of listing.matchAll(/\* backend: '([^']*)', name: '([^']*)'/g)) {
    const navigatorGpu = host.create([`backend=${backend}`, `adapter=${name}`]);
    const adapter = await navigatorGpu.requestAdapter();
    if (adapter) entries.push({ name, backend, adapter, navigatorGpu });
  }
  return entries;
}

/** The adapter `Gpu.open()` uses when no name is given. */
export async function defaultAdapter(
  host: AdapterHost,
  powerPreference?: GPUPowerPreference,
): Promise<AdapterEntry | null> {
  const navigatorGpu = host.create([]);
  const adapter = await navigatorGpu.requestAdapter({ powerPreference });
  if (!adapter) return null;
  const chosen = { name: adapterText(adapter.info), backend: 'default', adapter, navigatorGpu };
  // Dawn already puts hardware before software; only its SwiftShader-before-lavapipe needs undoing.
  if (preference(adapter.info) < 2) return chosen;
  const better = (await listAdapters(host)).filter((e) => preference(e.adapter.info) < 2);
  return better.length ? preferred(better) : chosen;
}

/** The adapter whose name, backend or description contains `wanted` (any case); the preferred one if several do. */
export async function namedAdapter(host: AdapterHost, wanted: string): Promise<AdapterEntry> {
  host.revealDrivers();
  const all = await listAdapters(host);
  const needle = wanted.toLowerCase();
  const matches = all.filter((e) =>
    `${e.name} / ${e.backend} / ${adapterText(e.adapter.info)}`.toLowerCase().includes(needle),
  );
  if (!matches.length) {
    const names = all.map((e) => `\n  ${e.name} (${e.backend}; ${adapterText(e.adapter.info)})`).join('') || ' none';
    throw new Error(
      `no WebGPU adapter matches '${wanted}' (from --adapter, SISN_ADAPTER or Gpu.open); the adapters here ` +
        `are:${names}`,
    );
  }
  return preferred(matches);
}

/** The limits to request: the adapter's own for those that matter, or none (WebGPU's defaults). */
export function requiredLimits(adapter: GPUAdapter, choice: LimitsChoice): Record<string, number> {
  const limits: Record<string, number> = {};
  if (choice === 'default') return limits;
  for (const key of LIMITS_THAT_MATTER) limits[key] = adapter.limits[key];
  return limits;
}
