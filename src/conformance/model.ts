/**
 * The weights sections: the model the set's weights build has the manifest's architecture, and a
 * DataParallel checkpoint, where the set has one, holds the same state_dict.
 */
import type { Gpu } from '../engine.js';
import type { SISN } from '../nn/sisn.js';
import { loadSisn } from '../nn/sisn-weights.js';
import { readStateDict, stripModulePrefix } from '../io/weights.js';
import type { StateDict } from '../io/safetensors.js';
import { exact, type Comparison } from './compare.js';
import type { Fixture } from './manifest.js';
import type { Checks } from './report.js';

export const WEIGHTS = 'weights.safetensors';
const DATAPARALLEL = 'weights_dataparallel.pt';

/** The set's model, built from its weights; the checks that it is the model the manifest describes. */
export function checkWeights(gpu: Gpu, fixture: Fixture, checks: Checks): { model: SISN; dict: StateDict } {
  const dict = stripModulePrefix(readStateDict(fixture.path(WEIGHTS)));
  const model = loadSisn(gpu, fixture.path(WEIGHTS));
  const m = fixture.manifest.model;
  const c = model.config;
  const want = { scale: m.scale, groups: m.groups_G, blocks: m.blocks_I, channels: m.channels_C };
  const comparisons: Comparison[] = [
    exact(
      'architecture (scale, G, I, C)',
      JSON.stringify(c) === JSON.stringify(want),
      `weights give ${JSON.stringify(c)}, the manifest says ${JSON.stringify(want)}`,
    ),
  ];
  const params = model.entries.filter((e) => e.kind === 'param');
  if (m.param_count !== undefined) {
    const count = params.reduce((n, e) => n + e.shape.reduce((a, b) => a * b, 1), 0);
    comparisons.push(
      exact('parameter count', count === m.param_count, `${count} parameters, the manifest says ${m.param_count}`),
    );
  }
  if (m.inter_channels !== undefined) {
    const inter = params.find((e) => e.name.endsWith('conv2.conv1x1_1.weight'))?.shape[0];
    comparisons.push(
      exact(
        'split-attention inter channels',
        inter === m.inter_channels,
        `${inter}, the manifest says ${m.inter_channels}`,
      ),
    );
  }
  checks.add('weights', ...comparisons);
  return { model, dict };
}

/**
 * A DataParallel checkpoint (every key prefixed by `module.`, saved the way the authors' training
 * saves), where the set has one, must load to the same state_dict. The format's sets carry it
 * without always declaring it in the manifest.
 */
export function checkDataParallel(fixture: Fixture, dict: StateDict, checks: Checks): void {
  if (!fixture.exists(DATAPARALLEL)) {
    if (fixture.declares(DATAPARALLEL)) checks.require(fixture, 'DataParallel checkpoint', [DATAPARALLEL]);
    return;
  }
  const other = stripModulePrefix(readStateDict(fixture.path(DATAPARALLEL)));
  const differing = [...dict].filter(([name, t]) => {
    const u = other.get(name);
    return (
      !u ||
      u.dtype !== t.dtype ||
      JSON.stringify(u.shape) !== JSON.stringify(t.shape) ||
      !Array.from(u.data).every((v, i) => Object.is(v, t.data[i]))
    );
  });
  const extra = [...other.keys()].filter((k) => !dict.has(k));
  const detail =
    differing.length || extra.length
      ? `differs in ${[...differing.map(([k]) => k), ...extra].slice(0, 3).join(', ')} ` +
        `(${differing.length + extra.length} tensors)`
      : `${dict.size} tensors identical`;
  checks.add(
    'DataParallel checkpoint',
    exact(`${DATAPARALLEL} equals ${WEIGHTS}`, !differing.length && !extra.length, detail),
  );
}
