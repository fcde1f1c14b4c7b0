/** `sisn identity` and `sisn detect`: face-api's recognizer and tiny face detector on the engine. */
import { parseArgs } from 'node:util';
import { existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { Gpu } from '../engine.js';
import { readImage, type RgbImage } from '../io/image.js';
import { checkFolderPath, makeFolder } from '../io/folders.js';
import {
  loadFaceNets,
  readFaceWeights,
  describeFaces,
  detectFaces,
  descriptorDistance,
  cropBox,
  MATCH_DISTANCE,
  RECOGNIZER_WEIGHTS,
  type DetectOptions,
  type FaceDetector,
} from '../nn/face/index.js';

export const FACE_API_PACKAGE = '@vladmandic/face-api';

/** face-api's model folder: `--models DIR`, else the installed package's `model/`. */
export function faceModelDir(override?: string): string {
  if (override) {
    if (!existsSync(join(override, RECOGNIZER_WEIGHTS)))
      throw new Error(`--models ${override}: no ${RECOGNIZER_WEIGHTS} there (face-api's model/ folder?)`);
    return override;
  }
  let root: string;
  try {
    root = dirname(createRequire(import.meta.url).resolve(`${FACE_API_PACKAGE}/package.json`));
  } catch {
    throw new Error(
      `the face networks' weights come from the npm package ${FACE_API_PACKAGE}, which is not installed: ` +
        `run \`npm install\` in sisn-webgpu (it is a dependency), or \`npm install ${FACE_API_PACKAGE}\``,
    );
  }
  return join(root, 'model');
}

/** --input_size and --min_score as detector options, checked. */
export function detectOptions(values: { input_size?: string; min_score?: string }): DetectOptions {
  const inputSize = values.input_size === undefined ? undefined : Number(values.input_size);
  if (inputSize !== undefined && !(Number.isInteger(inputSize) && inputSize >= 32 && inputSize % 32 === 0))
    throw new Error(`--input_size must be a positive multiple of 32, got ${values.input_size}`);
  const scoreThreshold = values.min_score === undefined ? undefined : Number(values.min_score);
  if (scoreThreshold !== undefined && !(scoreThreshold > 0 && scoreThreshold < 1))
    throw new Error(`--min_score must lie between 0 and 1, got ${values.min_score}`);
  return { inputSize, scoreThreshold };
}

const FACE_OPTIONS = {
  json: { type: 'string' },
  models: { type: 'string' },
  input_size: { type: 'string' },
  min_score: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Runs `each` on every image with both networks loaded; writes `--json`; exit 1 if any image failed. */
async function overImages<T>(
  command: string,
  usage: string,
  argv: string[],
  extra: Record<string, { type: 'boolean' }>,
  each: (
    image: RgbImage,
    path: string,
    nets: ReturnType<typeof loadFaceNets>,
    options: { flags: Record<string, unknown>; detect: DetectOptions },
  ) => Promise<T>,
  summary: (results: Map<string, T>) => void = () => {},
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...FACE_OPTIONS, ...extra },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (!positionals.length) throw new Error(`no image given\n${usage}`);
  if (values.json) checkFolderPath(dirname(resolve(values.json)), '--json folder');
  // Options and weights are checked before the GPU opens.
  const detect = detectOptions(values);
  const weights = readFaceWeights(faceModelDir(values.models));
  const gpu = await Gpu.open();
  const results = new Map<string, T>();
  let failures = 0;
  try {
    const nets = loadFaceNets(gpu, weights);
    try {
      for (const path of positionals) {
        try {
          results.set(path, await each(readImage(path), path, nets, { flags: values, detect }));
        } catch (e) {
          failures++;
          console.error(`sisn ${command}: ${(e as Error).message}`);
        }
      }
    } finally {
      nets.recognizer.dispose();
      nets.detector.dispose();
    }
  } finally {
    gpu.dispose();
  }
  summary(results);
  if (values.json) {
    makeFolder(dirname(resolve(values.json)), '--json folder');
    writeFileSync(values.json, JSON.stringify(Object.fromEntries(results), null, 1));
  }
  return failures ? 1 : 0;
}

const round = (v: number, digits = 2) => Number(v.toFixed(digits));

async function bestFace(detector: FaceDetector, image: RgbImage, path: string, options: DetectOptions) {
  const [best] = await detectFaces(detector, image, options);
  if (!best) throw new Error(`${path}: the detector finds no face (try without --detect, or a lower --min_score)`);
  return best;
}

const IDENTITY_USAGE = `usage: sisn identity IMAGE... [--detect] [--json FILE] [--models DIR]
  the 128-D face descriptor of each image (face-api's face recognition network, dlib's ResNet)
  --detect       describe the best face the detector finds, not the whole image
  --input_size N, --min_score S   the detector's input side (default 416) and score threshold (0.5)
  --json FILE    the descriptors (and boxes with --detect), keyed by image path
  --models DIR   face-api's model folder (default: that of the installed @vladmandic/face-api)
  With two images: their distance, and whether it is below ${MATCH_DISTANCE} (the same person).`;

export function identityCommand(argv: string[]): Promise<number> {
  return overImages(
    'identity',
    IDENTITY_USAGE,
    argv,
    { detect: { type: 'boolean' } },
    async (image, path, { recognizer, detector }, { flags, detect }) => {
      const face = flags.detect ? await bestFace(detector, image, path, detect) : null;
      const [descriptor] = await describeFaces(recognizer, [face ? cropBox(image, face.box) : image]);
      const norm = Math.hypot(...descriptor);
      const head = [...descriptor.slice(0, 4)].map((v) => v.toFixed(4)).join(', ');
      const box = face && [face.box.x, face.box.y, face.box.width, face.box.height].map((v) => v.toFixed(0));
      const where = box ? ` face at ${box.join(',')}` : '';
      console.log(`${path}${where}: descriptor [${head}, ...] (norm ${norm.toFixed(3)})`);
      return { descriptor: Array.from(descriptor), ...(face ? { box: face.box, score: face.score } : {}) };
    },
    (results) => {
      if (results.size !== 2) return;
      const [[a, x], [b, y]] = [...results];
      const d = descriptorDistance(Float32Array.from(x.descriptor), Float32Array.from(y.descriptor));
      const verdict = d < MATCH_DISTANCE ? 'the same person' : 'different people';
      console.log(`distance ${a} - ${b}: ${d.toFixed(4)}: ${verdict} (threshold ${MATCH_DISTANCE})`);
    },
  );
}

const DETECT_USAGE = `usage: sisn detect IMAGE... [--json FILE] [--input_size N] [--min_score S] [--models DIR]
  the faces in each image (face-api's tiny face detector): boxes (x, y, width, height in pixels), scores
  --input_size N  the detector's input side, a multiple of 32 (default 416)
  --min_score S   drop detections scoring at most S (default 0.5)`;

export function detectCommand(argv: string[]): Promise<number> {
  return overImages('detect', DETECT_USAGE, argv, {}, async (image, path, { detector }, { detect }) => {
    const found = await detectFaces(detector, image, detect);
    console.log(`${path} (${image.width}x${image.height}): ${found.length} face(s)`);
    for (const { score, box } of found)
      console.log(
        `  score ${score.toFixed(3)}  x ${round(box.x)} y ${round(box.y)} ` +
          `width ${round(box.width)} height ${round(box.height)}`,
      );
    return found;
  });
}
