/** The `sisn` command line: upscale, train, eval, identity, detect, tune, adapters. */
import { parseArgs } from 'node:util';
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gpu } from '../engine.js';
import { loadSisn } from '../nn/sisn-weights.js';
import { readImage, writePng } from '../io/image.js';
import { trainCommand } from './train.js';
import { evalCommand } from './eval.js';
import { adaptersCommand } from './adapters.js';
import { tuneCommand } from './tune.js';
import { identityCommand, detectCommand } from './face.js';
import { checkFolderPath, makeFolder } from '../io/folders.js';
import { tileProgress } from './tile-progress.js';

const USAGE = `usage:
  sisn train --dataset_root DIR [options]     (see sisn train --help)
  sisn eval --weights W --dataset_root DIR [--range 9501-10000] [--hr_crop WxH] [--json OUT]
  sisn upscale IN... -o OUT [--weights W | --scale s] [--tile T] [--quiet]
      IN       PNG or JPEG low-resolution faces (RGB, RGBA or grayscale)
      -o OUT   output PNG (one input) or directory (several inputs)
      --weights W  SISN weights: .safetensors, or a PyTorch .pt/.pth state_dict
                   (default: the shipped weights/sisn-x4-celeba.safetensors, or -x8 with --scale 8)
      --scale s    expected scale (2, 3, 4, 8): an error if the weights are for another
      --tile T     largest low-resolution tile side (default: from the adapter's limits)
      --quiet      no progress on stderr (tiles done and time left, for tiled images)
  sisn identity IMAGE... [--detect] [--json FILE]   128-D face descriptors (see sisn identity --help);
               with two images, their distance and whether they are the same person
  sisn detect IMAGE... [--json FILE]          faces found: boxes and scores (see sisn detect --help)
  sisn tune [--scale s] [--lr N ...] [--batch B] [--train] [--infer]   (see sisn tune --help)
               times the kernel variants for these shapes on this adapter and keeps the fastest in
               the user's cache folder, where upscale, eval and train find them
  sisn adapters                                the WebGPU adapters found, their subgroup sizes and limits
  --adapter NAME  (any command) run on the adapter whose name or description contains NAME,
                  e.g. llvmpipe or swiftshader; the same as SISN_ADAPTER=NAME`;

export class UsageError extends Error {}

/** The weights that ship with the package for a scale (x4 and x8, trained on CelebA). */
function shippedWeights(scale: number): string {
  const path = fileURLToPath(new URL(`../../weights/sisn-x${scale}-celeba.safetensors`, import.meta.url));
  if (!existsSync(path)) throw new UsageError(`no shipped weights for x${scale} (x4 and x8 ship): give --weights W`);
  return path;
}

async function upscaleCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      weights: { type: 'string', short: 'w' },
      scale: { type: 'string', short: 's' },
      tile: { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!positionals.length) throw new UsageError('no input image given');
  if (!values.output) throw new UsageError('no output given (-o OUT)');
  const scale = values.scale === undefined ? undefined : Number(values.scale);
  if (scale !== undefined && ![2, 3, 4, 8].includes(scale))
    throw new UsageError(`--scale must be 2, 3, 4 or 8, got ${values.scale}`);
  const weights = values.weights ?? shippedWeights(scale ?? 4);
  const tile = values.tile === undefined ? undefined : Number(values.tile);
  if (tile !== undefined && !(Number.isInteger(tile) && tile >= 8))
    throw new UsageError(`--tile must be an integer >= 8, got ${values.tile}`);
  const many = positionals.length > 1;
  const outIsDir =
    many || values.output.endsWith('/') || (existsSync(values.output) && statSync(values.output).isDirectory());
  const outDir = outIsDir ? values.output : dirname(resolve(values.output));
  checkFolderPath(outDir, 'output folder');

  const gpu = await Gpu.open();
  let failures = 0;
  try {
    const model = loadSisn(gpu, weights);
    if (scale !== undefined && model.config.scale !== scale)
      throw new Error(`${weights} is a x${model.config.scale} model, but --scale ${scale} was asked for`);
    const s = model.config.scale;
    for (const input of positionals) {
      const started = Date.now();
      const target = outIsDir ? join(values.output, `${basename(input, extname(input))}_x${s}.png`) : values.output;
      try {
        const image = readImage(input);
        const out = await model.upscale(image, {
          maxTile: tile,
          onProgress: values.quiet ? undefined : tileProgress(),
        });
        makeFolder(outDir, 'output folder');
        writePng(target, out);
        console.log(
          `${input} (${image.width}x${image.height}) -> ${target} (${out.width}x${out.height}) in ` +
            `${((Date.now() - started) / 1000).toFixed(2)} s`,
        );
      } catch (e) {
        failures++;
        console.error(`sisn upscale: ${(e as Error).message}`);
      }
    }
    model.dispose();
  } finally {
    gpu.dispose();
  }
  return failures ? 1 : 0;
}

/**
 * Takes `--adapter NAME` (or `--adapter=NAME`) out of `args` and makes it this process's
 * SISN_ADAPTER, which every Gpu.open honours, the trainer's included.
 */
function takeAdapterOption(args: string[]): void {
  const at = args.findIndex((a) => a === '--adapter' || a.startsWith('--adapter='));
  if (at < 0) return;
  const inline = args[at].startsWith('--adapter=');
  const name = inline ? args[at].slice('--adapter='.length) : args[at + 1];
  if (!name || name.startsWith('-')) throw new UsageError('--adapter needs a name (see sisn adapters)');
  args.splice(at, inline ? 1 : 2);
  process.env.SISN_ADAPTER = name;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    takeAdapterOption(rest);
    if (command === 'adapters') return await adaptersCommand(rest);
    if (command === 'upscale') return await upscaleCommand(rest);
    if (command === 'train') return await trainCommand(rest);
    if (command === 'eval') return await evalCommand(rest);
    if (command === 'tune') return await tuneCommand(rest);
    if (command === 'identity') return await identityCommand(rest);
    if (command === 'detect') return await detectCommand(rest);
    if (!command || command === '--help' || command === '-h' || command === 'help') {
      console.log(USAGE);
      return command ? 0 : 2;
    }
    throw new UsageError(`unknown command '${command}'`);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`sisn: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    console.error(`sisn: ${(e as Error).message}`);
    return 1;
  }
}
