/**
 * How a training run starts in its `--ckpt_root`: fresh into an empty folder, over an old run only
 * with `--overwrite`, or resumed with `--resume` from the old run's last checkpoint and options.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { checkFolderPath, makeFolder } from '../io/folders.js';
import { readCheckpointMeta } from './checkpoint.js';
import { resumedOptions } from './options.js';

/** What a run writes into its folder. */
export const RUN_FILES = ['last.safetensors', 'best.safetensors', 'log.jsonl', 'plot.svg', 'sheet.png'];

interface RunStart {
  ckpt_root: string;
  resume: boolean;
  overwrite: boolean;
  max_steps: number;
}

/**
 * The run's options (the defaults under what was given, or for `--resume` the checkpoint's under
 * what was given), after checking that the folder may be used. Writes nothing.
 */
export function startOptions<T extends RunStart>(defaults: T, given: Partial<T>, log: (m: string) => void): T {
  const root = given.ckpt_root ?? defaults.ckpt_root;
  if (given.resume && given.overwrite)
    throw new Error('--resume continues the run in --ckpt_root and --overwrite replaces it: give one of them');
  checkFolderPath(root, '--ckpt_root');
  const last = join(root, 'last.safetensors');
  if (!given.resume) {
    const existing = RUN_FILES.filter((f) => existsSync(join(root, f)));
    if (existing.length && !given.overwrite) {
      throw new Error(
        `--ckpt_root ${root} already holds a training run (${existing.join(', ')}): continue it with --resume, or ` +
          `replace it with --overwrite`,
      );
    }
    return { ...defaults, ...given };
  }
  if (!existsSync(last)) throw new Error(`--resume: no checkpoint at ${last}`);
  const meta = readCheckpointMeta(last);
  const options = resumedOptions(defaults, meta.options as Partial<T>, given, log);
  if (options.max_steps <= meta.step) {
    throw new Error(
      `--resume: ${last} is at step ${meta.step} and --max_steps is ${options.max_steps}: nothing to train; give a ` +
        `--max_steps above ${meta.step}`,
    );
  }
  return options;
}

/** Creates the run's folder; `--overwrite` first removes the old run's files. */
export function prepareRunFolder(root: string, overwrite: boolean): void {
  makeFolder(root, '--ckpt_root');
  if (overwrite) for (const f of RUN_FILES) rmSync(join(root, f), { force: true });
}
