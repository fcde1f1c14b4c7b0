/**
 * The paper's downstream test (its Table 5), on our engine: does super-resolution keep who the face
 * is? For every test face the detector finds the face on the HR image; that one box (the same for
 * every method) is cut from HR and from each method's output, and the recognizer's descriptors of
 * the crops are compared: the distance to HR's, whether it is below 0.6 (face-api's "same person"),
 * and rank-1 identification (the method's descriptor as the probe against the gallery of every test
 * face's HR descriptor: is the nearest one its own?). Separately, whether the detector finds a face
 * in each method's whole image at all. A face the detector misses on HR has no box: it is listed,
 * counted out of the identity means, and still counted in the detection rates.
 */
import type { FacePair } from '../data/dataset.js';
import type { RgbImage } from '../io/image.js';
import {
  cropBox,
  describeFaces,
  detectFaces,
  descriptorDistance,
  MATCH_DISTANCE,
  type Box,
  type DetectOptions,
  type FaceDetector,
  type FaceRecognizer,
} from '../nn/face/index.js';

export const IDENTITY_METHODS = ['sisn', 'bicubic', 'nearest'] as const;
export type IdentityMethod = (typeof IDENTITY_METHODS)[number];

export interface IdentityImage {
  name: string;
  /** The best face on HR (null: missed), used for every method. */
  box: Box | null;
  score: number | null;
  /** Whether the detector finds a face in each whole image. */
  detected: Record<'hr' | IdentityMethod, boolean>;
  /** Descriptor distance to HR's crop (absent when HR was missed). */
  distance?: Record<IdentityMethod, number>;
  /** Whether the nearest HR descriptor of the gallery is this face's own. */
  rank1?: Record<IdentityMethod, boolean>;
}

export interface IdentitySummary {
  /** Share of images in which the detector finds a face. */
  detectionRate: number;
  /** Over the faces found on HR. */
  meanDistance: number;
  matched: number;
  rank1: number;
}

export interface IdentityResult {
  count: number;
  /** Faces found on HR (the identity means are over these). */
  found: number;
  missedOnHr: string[];
  matchDistance: number;
  hr: { detectionRate: number };
  methods: Record<IdentityMethod, IdentitySummary>;
  images: IdentityImage[];
}

/** Nearest-neighbour upsampling of the LR image: the LR row of the tables. */
export function nearestUp(p: FacePair, scale: number): Uint8Array {
  const out = new Uint8Array(p.hrWidth * p.hrHeight * 3);
  for (let y = 0; y < p.hrHeight; y++)
    for (let x = 0; x < p.hrWidth; x++) {
      const from = (Math.floor(y / scale) * p.lrWidth + Math.floor(x / scale)) * 3;
      out.set(p.lr.subarray(from, from + 3), (y * p.hrWidth + x) * 3);
    }
  return out;
}

/** A record over the methods, each value made by `make`. */
function perMethod<T>(make: (m: IdentityMethod) => T): Record<IdentityMethod, T> {
  return Object.fromEntries(IDENTITY_METHODS.map((m) => [m, make(m)])) as Record<IdentityMethod, T>;
}

const share = (flags: boolean[]) => (flags.length ? flags.filter(Boolean).length / flags.length : 0);

/**
 * The identity test over `pairs`, each method's HR-sized outputs given in pair order; `log` hears
 * about progress every 25 faces.
 */
export async function evaluateIdentity(
  nets: { recognizer: FaceRecognizer; detector: FaceDetector },
  pairs: readonly FacePair[],
  outputs: Record<IdentityMethod, readonly Uint8Array[]>,
  options: DetectOptions = {},
  log: (message: string) => void = () => {},
): Promise<IdentityResult> {
  const images: IdentityImage[] = [];
  const descriptors: Record<'hr' | IdentityMethod, Float32Array>[] = [];
  for (const [i, p] of pairs.entries()) {
    const image = (data: Uint8Array): RgbImage => ({ width: p.hrWidth, height: p.hrHeight, channels: 3, data });
    const versions: Record<'hr' | IdentityMethod, RgbImage> = {
      hr: image(p.hr),
      ...perMethod((m) => image(outputs[m][i])),
    };
    const found = {} as Record<'hr' | IdentityMethod, Awaited<ReturnType<typeof detectFaces>>>;
    for (const [k, v] of Object.entries(versions)) found[k as 'hr'] = await detectFaces(nets.detector, v, options);
    const detected = Object.fromEntries(
      Object.entries(found).map(([k, f]) => [k, f.length > 0]),
    ) as IdentityImage['detected'];
    const best = found.hr[0];
    if (!best) {
      images.push({ name: p.name, box: null, score: null, detected });
      continue;
    }
    const kinds = ['hr', ...IDENTITY_METHODS] as const;
    const crops = await describeFaces(
      nets.recognizer,
      kinds.map((k) => cropBox(versions[k], best.box)),
    );
    const d = Object.fromEntries(kinds.map((k, j) => [k, crops[j]])) as (typeof descriptors)[number];
    descriptors.push(d);
    const distance = perMethod((m) => descriptorDistance(d.hr, d[m]));
    images.push({ name: p.name, box: best.box, score: best.score, detected, distance });
    if ((i + 1) % 25 === 0) log(`identity: ${i + 1} of ${pairs.length} faces`);
  }
  // Rank-1 against the gallery of every found face's HR descriptor.
  const withBox = images.filter((x) => x.box);
  withBox.forEach((img, i) => {
    const nearest = (probe: Float32Array) => {
      let best = 0;
      descriptors.forEach((g, j) => {
        if (descriptorDistance(probe, g.hr) < descriptorDistance(probe, descriptors[best].hr)) best = j;
      });
      return best;
    };
    img.rank1 = perMethod((m) => nearest(descriptors[i][m]) === i);
  });
  const summary = (m: IdentityMethod): IdentitySummary => ({
    detectionRate: share(images.map((x) => x.detected[m])),
    meanDistance: withBox.reduce((s, x) => s + x.distance![m], 0) / Math.max(withBox.length, 1),
    matched: share(withBox.map((x) => x.distance![m] < MATCH_DISTANCE)),
    rank1: share(withBox.map((x) => x.rank1![m])),
  });
  return {
    count: pairs.length,
    found: withBox.length,
    missedOnHr: images.filter((x) => !x.box).map((x) => x.name),
    matchDistance: MATCH_DISTANCE,
    hr: { detectionRate: share(images.map((x) => x.detected.hr)) },
    methods: perMethod(summary),
    images,
  };
}
