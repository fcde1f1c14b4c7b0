// Writes small tfjs weight manifests for the loader tests: a manifest object and its shards, every
// tensor stored as float32, int32 or uint8/uint16-quantized exactly as tfjs's converter stores them.

/**
 * @typedef {{ dtype: string, min: number, scale: number }} TfjsQuantization
 * @typedef {{ name: string, shape: number[], dtype: string, quantization?: TfjsQuantization }} TfjsEntry
 * @typedef {TfjsEntry & { values: number[] }} TfjsTensorSpec
 * @typedef {{ paths: string[], tensors: TfjsTensorSpec[] }} TfjsGroupSpec
 * @typedef {{ manifest: { paths: string[], weights: TfjsEntry[] }[], shards: Map<string, Uint8Array> }} TfjsFiles
 */

/**
 * The stored bytes of `values` for a manifest entry (quantized entries store round((v - min) / scale)).
 * @param {TfjsEntry} entry
 * @param {number[]} values
 */
function store({ dtype, quantization }, values) {
  if (quantization) {
    const q = values.map((v) => Math.round((v - quantization.min) / quantization.scale));
    return new Uint8Array((quantization.dtype === 'uint8' ? Uint8Array : Uint16Array).from(q).buffer);
  }
  return new Uint8Array((dtype === 'int32' ? Int32Array : Float32Array).from(values).buffer);
}

/**
 * A manifest of groups [{paths, tensors: [{name, shape, dtype, quantization?, values}]}]: the JSON
 * object and a Map from shard path to bytes; a group's bytes are cut into its shards evenly.
 * @param {TfjsGroupSpec[]} groups
 * @returns {TfjsFiles}
 */
export function makeTfjs(groups) {
  /** @type {TfjsFiles['manifest']} */
  const manifest = [];
  /** @type {Map<string, Uint8Array>} */
  const shards = new Map();
  for (const { paths, tensors } of groups) {
    const parts = tensors.map((t) => store(t, t.values));
    const all = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
    parts.reduce((at, p) => (all.set(p, at), at + p.byteLength), 0);
    const per = Math.ceil(all.byteLength / paths.length);
    paths.forEach((p, i) => shards.set(p, all.slice(i * per, (i + 1) * per)));
    manifest.push({ paths, weights: tensors.map(({ values, ...spec }) => spec) });
  }
  return { manifest, shards };
}

/**
 * Two groups, the first in two shards: float32, uint8- and uint16-quantized and int32 tensors.
 * @type {TfjsGroupSpec[]}
 */
export const SMALL_TFJS = [
  {
    paths: ['small.bin', 'small-2.bin'],
    tensors: [
      { name: 'conv/filters', shape: [1, 1, 2, 3], dtype: 'float32', values: [1, -2, 3.5, 0, 1e-3, 7] },
      {
        name: 'conv/bias',
        shape: [3],
        dtype: 'float32',
        quantization: { dtype: 'uint8', min: -1, scale: 0.5 },
        values: [-1, 0, 126.5],
      },
    ],
  },
  {
    paths: ['other.bin'],
    tensors: [
      {
        name: 'scale/weights',
        shape: [2],
        dtype: 'float32',
        quantization: { dtype: 'uint16', min: 2, scale: 0.25 },
        values: [2, 16385.75],
      },
      { name: 'steps', shape: [], dtype: 'int32', values: [-7] },
    ],
  },
];
