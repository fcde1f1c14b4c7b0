/**
 * The options of a resumed run: everything the checkpoint was trained with, with what the command
 * line gives on top. Overrides are printed as changes; the architecture and the seed (whose random
 * state the checkpoint carries on) cannot change.
 */

/** Options a resumed run keeps from its checkpoint whatever the command line says. */
const FIXED_ON_RESUME = [
  'scale',
  'num_groups',
  'num_blocks',
  'num_channels',
  'no_structure_path',
  'no_attention',
  'seed',
];

/** Options that say how to start this process, not what the run is: never restored. */
const PER_INVOCATION = ['ckpt_root', 'resume', 'overwrite'];

/** Training options are scalars: numbers, strings and flags. */
type OptionValue = string | number | boolean | undefined;

function sameValue(a: unknown, b: unknown): boolean {
  return a === b || (a === undefined && b === false) || (a === false && b === undefined);
}

/**
 * `defaults`, then the checkpoint's `saved` options, then the `given` ones (the command line).
 * Throws when `given` changes a fixed option; logs every other change as `key: new (checkpoint: old)`.
 */
export function resumedOptions<T extends object>(
  defaults: T,
  saved: Partial<T>,
  given: Partial<T>,
  log: (m: string) => void,
): T {
  const restored = { ...defaults } as Record<string, OptionValue>;
  for (const [k, v] of Object.entries(saved) as [string, OptionValue][])
    if (!PER_INVOCATION.includes(k) && v !== undefined) restored[k] = v;
  for (const [k, v] of Object.entries(given) as [string, OptionValue][]) {
    if (v === undefined) continue;
    if (!PER_INVOCATION.includes(k) && !sameValue(v, restored[k])) {
      if (FIXED_ON_RESUME.includes(k))
        throw new Error(
          `--resume: the checkpoint was trained with --${k} ${restored[k]}; a resumed run cannot change it (given: ` +
            `${v})`,
        );
      log(`${k}: ${v} (checkpoint: ${restored[k] ?? 'not set'})`);
    }
    restored[k] = v;
  }
  return restored as T;
}
