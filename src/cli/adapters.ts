/**
 * `sisn adapters`: the WebGPU adapters Dawn sees (those that offer only WebGPU's compatibility
 * mode, as its OpenGL ES backend, last), and the one the engine would choose.
 */
import { parseArgs } from 'node:util';
import { dawnHost } from '../gpu/dawn.js';
import {
  LIMITS_THAT_MATTER,
  adapterText,
  defaultAdapter,
  environmentSettings,
  listAdapters,
  namedAdapter,
} from '../gpu/adapter.js';

function size(n: number): string {
  for (const [unit, bytes] of [
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ] as const)
    if (n >= bytes && n % bytes === 0) return `${n / bytes} ${unit}`;
  return String(n);
}

export async function adaptersCommand(argv: string[]): Promise<number> {
  parseArgs({ args: argv, options: {} });
  dawnHost.revealDrivers();
  const core = await listAdapters(dawnHost);
  const compatibilityOnly = (await listAdapters(dawnHost, 'compatibility')).filter(
    (e) => !e.adapter.features.has('core-features-and-limits'),
  );
  const all = [...core, ...compatibilityOnly];
  const wanted = environmentSettings().adapter;
  const chosen = wanted ? await namedAdapter(dawnHost, wanted) : await defaultAdapter(dawnHost);
  for (const { name, backend, adapter } of all) {
    const isChosen = chosen !== null && adapterText(chosen.adapter.info) === adapterText(adapter.info);
    const { subgroupMinSize, subgroupMaxSize } = adapter.info;
    const lanes = subgroupMinSize === subgroupMaxSize ? `${subgroupMinSize}` : `${subgroupMinSize}-${subgroupMaxSize}`;
    const subgroups = adapter.features.has('subgroups') ? `subgroups of ${lanes} lanes` : 'no subgroups';
    console.log(`${name} [${backend}]${isChosen ? (wanted ? ` <- chosen for '${wanted}'` : ' <- the default') : ''}`);
    const f16 = adapter.features.has('shader-f16') ? ', shader-f16' : '';
    const mode = adapter.features.has('core-features-and-limits') ? '' : '; compatibility mode only';
    console.log(`  ${adapterText(adapter.info)}; ${subgroups}${f16}${mode}`);
    for (const key of LIMITS_THAT_MATTER) {
      const value = adapter.limits[key];
      console.log(`  ${key.padEnd(34)} ${key.endsWith('Size') ? size(value) : value}`);
    }
  }
  if (!all.length)
    console.log(
      'no WebGPU adapter found: run `node scripts/ensure-adapter.mjs` (installs Mesa lavapipe on Debian as root) or ' +
        'install a Vulkan driver',
    );
  return all.length ? 0 : 1;
}
