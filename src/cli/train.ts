/** `sisn train` / `node train.js`: options named as the official option.py. */
import { parseArgs } from 'node:util';
import { train, DEFAULTS, type TrainOptions } from '../train/trainer.js';

export const TRAIN_USAGE = `usage: node train.js --dataset_root DIR [options]   (or: sisn train ...)
  --dataset_root DIR      folder of HR face images (PNG/JPEG, searched recursively, sorted by path)
  --train_val_range A-B/C-D  1-based index ranges of the sorted files (default ${DEFAULTS.train_val_range})
  --val_root DIR          a separate validation folder instead of the second range
  --lr_root DIR           LR images at the same relative paths (default: MATLAB bicubic from HR)
  --hr_crop WxH           centre-crop every HR image first (e.g. 88x104 for CelebA 89x109)
  --scale S               2, 3, 4 or 8 (default ${DEFAULTS.scale})
  --num_groups G --num_blocks I --num_channels C
                          (default ${DEFAULTS.num_groups} ${DEFAULTS.num_blocks} ${DEFAULTS.num_channels}: the paper)
  --lr LR                 Adam learning rate (default ${DEFAULTS.lr})
  --decay A-B-...         MultiStepLR milestones in thousands of steps (default ${DEFAULTS.decay})
  --gamma G               learning-rate factor at each milestone (default ${DEFAULTS.gamma})
  --batch_size B --patch_size P   (default ${DEFAULTS.batch_size}, ${DEFAULTS.patch_size} LR pixels; 0 = whole images)
  --max_steps N --eval_steps K    (default ${DEFAULTS.max_steps}, ${DEFAULTS.eval_steps})
  --gclip V               clamp gradients to [-V, V] (default 0: off)
  --seed N                (default ${DEFAULTS.seed})
  --ckpt_root DIR         checkpoints, log.jsonl, plot.svg, sheet.png (default ${DEFAULTS.ckpt_root})
  --resume                continue the run in DIR from its last.safetensors exactly where it stopped,
                          with every option it was trained with; options given again override
                          (printed as changes), except the architecture and --seed
  --overwrite             start a fresh run in a DIR that holds one, replacing it (without
                          --resume or --overwrite, a DIR holding a run is refused)
  --border B              evaluation border crop (default 6 + scale)
  --no_structure_path     ablation: remove the IA branch of every ESAG
  --no_attention          ablation: remove split attention inside the ISABs
  --no_tune               do not time kernel variants in the first step and validation for shapes
                          this adapter has no choice for yet (see sisn tune)`;

const NUMERIC = [
  'scale',
  'num_groups',
  'num_blocks',
  'num_channels',
  'lr',
  'gamma',
  'batch_size',
  'patch_size',
  'max_steps',
  'eval_steps',
  'gclip',
  'seed',
  'border',
  'sheet_faces',
] as const;
const TEXT = ['dataset_root', 'train_val_range', 'val_root', 'lr_root', 'hr_crop', 'ckpt_root', 'decay'] as const;
const FLAGS = ['resume', 'overwrite', 'no_structure_path', 'no_attention', 'no_tune'] as const;

export function parseTrainArgs(argv: string[]): Partial<TrainOptions> | null {
  const spec: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const k of [...NUMERIC, ...TEXT]) spec[k] = { type: 'string' };
  for (const k of FLAGS) spec[k] = { type: 'boolean' };
  const { values } = parseArgs({ args: argv, options: spec, allowPositionals: false });
  if (values.help) return null;
  const o: Record<string, string | number | boolean> = {};
  for (const k of NUMERIC) {
    if (values[k] === undefined) continue;
    const v = Number(values[k]);
    if (!Number.isFinite(v)) throw new Error(`--${k} must be a number, got '${values[k]}'`);
    o[k] = v;
  }
  for (const k of TEXT) if (values[k] !== undefined) o[k] = values[k];
  for (const k of FLAGS) if (values[k]) o[k] = true;
  if (o.scale !== undefined && ![2, 3, 4, 8].includes(o.scale as number))
    throw new Error(`--scale must be 2, 3, 4 or 8, got ${o.scale}`);
  return o;
}

export async function trainCommand(argv: string[]): Promise<number> {
  const options = parseTrainArgs(argv);
  if (!options) {
    console.log(TRAIN_USAGE);
    return 0;
  }
  await train(options);
  return 0;
}
