/**
 * Which WebGPU adapter the engine runs on, and which limits it asks of it.
 *
 * A name (`Gpu.open({ adapter })`, else the environment variable SISN_ADAPTER) picks the adapter
 * whose name, backend, vendor, architecture, device or description contains it, ignoring case.
 * Without a name, a real GPU wins over a software adapter, and SwiftShader comes last: Dawn's own
 * default prefers SwiftShader to lavapipe when both are registered, and it is much slower.
 *
 * The feature level (`Gpu.open({ featureLevel })`, else SISN_FEATURE_LEVEL) is WebGPU's: `core`, or
 * `compatibility`, the mode of devices that have only OpenGL ES or older APIs (no subgroups, as few
 * as 128 invocations per workgroup and 4 storage buffers per stage unless the device asks for
 * more). A compatibility request may be answered by a core adapter, whose device then keeps to
 * compatibility mode's rules; where the host has adapters that offer only that mode (Dawn's
 * OpenGL ES backend), they are asked first.
 */
import { platform } from '../platform/index.js';
import type { AdapterHost } from '../platform/types.js';

/** `adapter`: WebGPU's adapter limits as they are; `default`: the limits every WebGPU device has. */
export type LimitsChoice = 'adapter' | 'default';

/** WebGPU's feature levels: core devices, or compatibility mode (OpenGL ES and older devices). */
export type FeatureLevel = 'core' | 'compatibility';

/** What the environment may choose (none of it in a browser). */
export interface EnvironmentSettings {
  adapter?: string;
  subgroups?: boolean;
  limits?: LimitsChoice;
  featureLevel?: FeatureLevel;
}

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

/** The value of an environment variable that must be one of `values`, or undefined where it is unset. */
function oneOf<T extends string>(variable: string, values: readonly T[]): T | undefined {
  const value = platform.env[variable];
  if (!value) return undefined;
  if (!(values as readonly string[]).includes(value))
    throw new Error(`${variable} must be ${values.map((v) => `'${v}'`).join(' or ')}, not '${value}'`);
  return value as T;
}

/**
 * The environment's settings: SISN_ADAPTER, SISN_SUBGROUPS=on|off, SISN_LIMITS=adapter|default,
 * SISN_FEATURE_LEVEL=core|compatibility; none in a browser.
 */
export function environmentSettings(): EnvironmentSettings {
  const settings: EnvironmentSettings = {};
  if (platform.env.SISN_ADAPTER) settings.adapter = platform.env.SISN_ADAPTER;
  const subgroups = oneOf('SISN_SUBGROUPS', ['on', 'off']);
  if (subgroups) settings.subgroups = subgroups === 'on';
  const limits = oneOf('SISN_LIMITS', ['adapter', 'default']);
  if (limits) settings.limits = limits;
  const featureLevel = oneOf('SISN_FEATURE_LEVEL', FEATURE_LEVELS);
  if (featureLevel) settings.featureLevel = featureLevel;
  return settings;
}

export const FEATURE_LEVELS: readonly FeatureLevel[] = ['core', 'compatibility'];

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

/** The flag sets under which `featureLevel` requests are made, those of compatibility-only adapters first. */
function flagSets(host: AdapterHost, featureLevel: FeatureLevel): string[][] {
  const compatibilityOnly = featureLevel === 'compatibility' && host.compatibilityFlags.length > 0;
  return compatibilityOnly ? [[...host.compatibilityFlags], []] : [[]];
}

function entryOf(adapter: GPUAdapter, navigatorGpu: GPU): AdapterEntry {
  return { name: adapterText(adapter.info), backend: 'default', adapter, navigatorGpu };
}

/** Every adapter the host sees at `featureLevel`; a host that cannot list them (a browser) gives its default one. */
export async function listAdapters(host: AdapterHost, featureLevel: FeatureLevel = 'core'): Promise<AdapterEntry[]> {
  const entries: AdapterEntry[] = [];
  for (const flags of flagSets(host, featureLevel)) {
    let listing = '';
    const probe = host.create([...flags, LIST_FLAG]);
    try {
      const adapter = await probe.requestAdapter({ featureLevel });
      if (adapter) {
        entries.push(entryOf(adapter, probe));
        continue;
      }
    } catch (e) {
      listing = (e as Error).message;
    }
    for (const [, backend, name] of listing.matchAll(/\* backend: '([^']*)', name: '([^']*)'/g)) {
      const navigatorGpu = host.create([`backend=${backend}`, `adapter=${name}`]);
      const adapter = await navigatorGpu.requestAdapter({ featureLevel });
      if (adapter) entries.push({ name, backend, adapter, navigatorGpu });
    }
  }
  return entries;
}

/** The adapter `Gpu.open()` uses at `featureLevel` when no name is given, or null where there is none. */
export async function defaultAdapter(
  host: AdapterHost,
  powerPreference?: GPUPowerPreference,
  featureLevel: FeatureLevel = 'core',
): Promise<AdapterEntry | null> {
  for (const flags of flagSets(host, featureLevel)) {
    const navigatorGpu = host.create(flags);
    const adapter = await navigatorGpu.requestAdapter({ powerPreference, featureLevel });
    if (!adapter) continue;
    const chosen = entryOf(adapter, navigatorGpu);
    // Dawn already puts hardware before software; only its SwiftShader-before-lavapipe needs undoing.
    if (preference(adapter.info) < 2) return chosen;
    const better = (await listAdapters(host, featureLevel)).filter((e) => preference(e.adapter.info) < 2);
    return better.length ? preferred(better) : chosen;
  }
  return null;
}

/** The adapter whose name, backend or description contains `wanted` (any case); the preferred one if several do. */
export async function namedAdapter(
  host: AdapterHost,
  wanted: string,
  featureLevel: FeatureLevel = 'core',
): Promise<AdapterEntry> {
  host.revealDrivers();
  const all = await listAdapters(host, featureLevel);
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
