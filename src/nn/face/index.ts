/**
 * Face identity and detection on the engine: face-api's recognizer and tiny face detector, with
 * their inputs and box decoding on the CPU, batched through the GPU without gradients.
 */
import { Tensor, type Engine } from '../../tensor.js';
import type { RgbImage } from '../../io/image.js';
import { readTfjsWeights, type TfjsWeights } from '../../io/tfjs.js';
import { FaceRecognizer, RECOGNIZER_MEAN, RECOGNIZER_SIZE, DESCRIPTOR_LENGTH } from './recognizer.js';
import { FaceDetector, DETECTOR_MEAN, DEFAULT_INPUT_SIZE, DEFAULT_SCORE_THRESHOLD } from './detector.js';
import { decodeDetections, type Detection } from './boxes.js';
import { networkInput } from './input.js';

export { FaceRecognizer, FaceDetector, decodeDetections, networkInput, type Detection };
export type { RecognizerBlock } from './recognizer.js';
export { FrozenConv, type ConvSpec } from './layers.js';
export { MATCH_DISTANCE, DESCRIPTOR_LENGTH, RECOGNIZER_SIZE } from './recognizer.js';
export { DEFAULT_INPUT_SIZE, DEFAULT_SCORE_THRESHOLD } from './detector.js';
export { cropBox, type Box } from './input.js';

export const RECOGNIZER_WEIGHTS = 'face_recognition_model-weights_manifest.json';
export const DETECTOR_WEIGHTS = 'tiny_face_detector_model-weights_manifest.json';

/** The two networks' weights as read from face-api's model folder, each with its manifest's path. */
export interface FaceWeights {
  recognizer: { weights: TfjsWeights; source: string };
  detector: { weights: TfjsWeights; source: string };
}

/** Reads (and checks) both networks' weights from face-api's model folder (the package's `model/`). */
export function readFaceWeights(modelDir: string): FaceWeights {
  const read = (name: string) => {
    const source = `${modelDir.replace(/\/$/, '')}/${name}`;
    return { weights: readTfjsWeights(source), source };
  };
  return { recognizer: read(RECOGNIZER_WEIGHTS), detector: read(DETECTOR_WEIGHTS) };
}

/** Both networks on `gpu`, from their weights (readFaceWeights) or face-api's model folder. */
export function loadFaceNets(
  gpu: Engine,
  from: FaceWeights | string,
): { recognizer: FaceRecognizer; detector: FaceDetector } {
  const { recognizer: r, detector: d } = typeof from === 'string' ? readFaceWeights(from) : from;
  const recognizer = FaceRecognizer.load(gpu, r.weights, r.source);
  try {
    return { recognizer, detector: FaceDetector.load(gpu, d.weights, d.source) };
  } catch (e) {
    recognizer.dispose();
    throw e;
  }
}

/** Runs `net` on a planar batch without gradients and reads its output back. */
async function run(gpu: Engine, net: { forward(x: Tensor): Tensor }, planes: Float32Array, size: number) {
  const x = Tensor.fromArray(gpu, planes, [planes.length / (3 * size * size), 3, size, size]);
  const out = gpu.tape.noGrad(() => gpu.tape.scope(() => net.forward(x)));
  try {
    return await out.read();
  } finally {
    x.dispose();
    out.dispose();
  }
}

/** The descriptor of each image (each taken whole as the face), `batch` images a pass. */
export async function describeFaces(recognizer: FaceRecognizer, images: readonly RgbImage[], batch = 8) {
  const out: Float32Array[] = [];
  const plane = 3 * RECOGNIZER_SIZE * RECOGNIZER_SIZE;
  for (let k = 0; k < images.length; k += batch) {
    const chunk = images.slice(k, k + batch);
    const planes = new Float32Array(chunk.length * plane);
    chunk.forEach((img, b) => networkInput(img, RECOGNIZER_SIZE, { centre: true, mean: RECOGNIZER_MEAN }, planes, b));
    const values = await run(recognizer.gpu, recognizer, planes, RECOGNIZER_SIZE);
    chunk.forEach((_, b) => out.push(values.slice(b * DESCRIPTOR_LENGTH, (b + 1) * DESCRIPTOR_LENGTH)));
  }
  return out;
}

export interface DetectOptions {
  /** The detector's input side, a multiple of 32 (default 416, face-api's). */
  inputSize?: number;
  /** Detections scoring at most this are dropped (default 0.5, face-api's). */
  scoreThreshold?: number;
}

/** The faces in `image`, highest score first, boxes in its pixels. */
export async function detectFaces(detector: FaceDetector, image: RgbImage, options: DetectOptions = {}) {
  const size = options.inputSize ?? DEFAULT_INPUT_SIZE;
  if (!(Number.isInteger(size) && size >= 32 && size % 32 === 0))
    throw new Error(`the detector's input size must be a positive multiple of 32, got ${size}`);
  const planes = networkInput(image, size, { centre: false, mean: DETECTOR_MEAN });
  const grid = await run(detector.gpu, detector, planes, size);
  return decodeDetections(grid, size / 32, image, size, options.scoreThreshold ?? DEFAULT_SCORE_THRESHOLD);
}

/** Euclidean distance of two descriptors. */
export function descriptorDistance(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] - b[i]) ** 2;
  return Math.sqrt(sum);
}
