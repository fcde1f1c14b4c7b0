/**
 * The tiny face detector's box head, decoded on the CPU as face-api decodes it (YOLOv2): each cell
 * (row, col) of the S x S output and each of the 5 anchors has 5 numbers (tx, ty, tw, th, score):
 * centre ((col + sigmoid(tx)) / S, (row + sigmoid(ty)) / S), size (exp(tw) * anchor.x / S,
 * exp(th) * anchor.y / S), in units of the padded square, scaled by the square's side over the
 * image's resized side; kept when sigmoid(score) > the threshold; then greedy non-maximum
 * suppression at IoU 0.4 (highest score first; a tie keeps the later cell, as face-api's sort does).
 */
import type { Box } from './input.js';

export interface Detection {
  score: number;
  /** In pixels of the image. */
  box: Box;
}

/** face-api's tiny face detector anchors (width, height in cells). */
export const ANCHORS: readonly (readonly [number, number])[] = [
  [1.603231, 2.094468],
  [6.041143, 7.080126],
  [2.882459, 3.518061],
  [4.266906, 5.178857],
  [9.041765, 10.66308],
];
export const IOU_THRESHOLD = 0.4;

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Relative box corners (of the padded square). */
interface Candidate {
  score: number;
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** IoU of two candidates scaled by `size`, in face-api's arithmetic (its Box: x, y, width, height). */
function iou(a: Candidate, b: Candidate, size: number): number {
  const scaled = (c: Candidate) => {
    const [x, y, w, h] = [c.left * size, c.top * size, (c.right - c.left) * size, (c.bottom - c.top) * size];
    return { x, y, right: x + w, bottom: y + h, area: w * h };
  };
  const [p, q] = [scaled(a), scaled(b)];
  const w = Math.max(0, Math.min(p.right, q.right) - Math.max(p.x, q.x));
  const h = Math.max(0, Math.min(p.bottom, q.bottom) - Math.max(p.y, q.y));
  return (w * h) / (p.area + q.area - w * h);
}

/**
 * Detections from the head's output `out` (planar [5 * 5, S, S]: channel anchor * 5 + k) for an
 * image of `width` x `height` run at input size `inputSize`.
 */
export function decodeDetections(
  out: Float32Array,
  cells: number,
  image: { width: number; height: number },
  inputSize: number,
  scoreThreshold: number,
): Detection[] {
  if (out.length !== ANCHORS.length * 5 * cells * cells)
    throw new Error(`decodeDetections: ${out.length} values, expected ${ANCHORS.length * 5 * cells * cells}`);
  // face-api's correction: the padded square's side over the image's resized sides (rounded).
  const fit = inputSize / Math.max(image.width, image.height);
  const [rw, rh] = [Math.round(image.width * fit), Math.round(image.height * fit)];
  const [cx, cy] = [Math.max(rw, rh) / rw, Math.max(rw, rh) / rh];
  const at = (anchor: number, k: number, row: number, col: number) =>
    out[(anchor * 5 + k) * cells * cells + row * cells + col];
  const found: Candidate[] = [];
  for (let row = 0; row < cells; row++) {
    for (let col = 0; col < cells; col++) {
      ANCHORS.forEach(([ax, ay], a) => {
        const score = sigmoid(at(a, 4, row, col));
        if (!(score > scoreThreshold)) return;
        const x = ((col + sigmoid(at(a, 0, row, col))) / cells) * cx;
        const y = ((row + sigmoid(at(a, 1, row, col))) / cells) * cy;
        const w = ((Math.exp(at(a, 2, row, col)) * ax) / cells) * cx;
        const h = ((Math.exp(at(a, 3, row, col)) * ay) / cells) * cy;
        found.push({ score, left: x - w / 2, top: y - h / 2, right: x - w / 2 + w, bottom: y - h / 2 + h });
      });
    }
  }
  const order = found.map((_, i) => i).sort((i, j) => found[i].score - found[j].score);
  const kept: Candidate[] = [];
  while (order.length) {
    const best = found[order.pop()!];
    kept.push(best);
    const rest = order.filter((i) => iou(best, found[i], inputSize) <= IOU_THRESHOLD);
    order.splice(0, order.length, ...rest);
  }
  return kept.map((c) => ({
    score: c.score,
    box: {
      x: c.left * image.width,
      y: c.top * image.height,
      width: (c.right - c.left) * image.width,
      height: (c.bottom - c.top) * image.height,
    },
  }));
}
