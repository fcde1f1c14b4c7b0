// Shared by the tests: one engine per test file, random data, and comparisons with useful messages.
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { Gpu } from '../dist/index.js';
import { mulberry32 } from './mulberry32.js';

/** @typedef {ArrayLike<number>} Numbers a list of numbers as the comparisons take it: typed or plain */

/**
 * Opens an engine for a suite (on the adapter, subgroups, limits and feature level that SISN_ADAPTER,
 * SISN_SUBGROUPS, SISN_LIMITS and SISN_FEATURE_LEVEL choose) and disposes it after. uvu ignores an error thrown
 * in a `before` hook and passes the run, so the error is kept and every test that uses `ctx.gpu` fails with it.
 * @param {import('uvu').Test<any>} suite
 * @param {import('../dist/index.js').GpuOptions} [options]
 * @returns {{ readonly gpu: Gpu }}
 */
export function withGpu(suite, options) {
  /** @type {Gpu | null} */
  let gpu = null;
  /** @type {Error | null} */
  let failure = null;
  suite.before(async () => {
    try {
      gpu = await Gpu.open(options);
    } catch (e) {
      failure = /** @type {Error} */ (e);
    }
  });
  suite.after(() => gpu?.dispose());
  return {
    get gpu() {
      if (failure) throw new Error(`the suite's GPU did not open: ${failure.message}`);
      if (!gpu) throw new Error('the suite has not started: ctx.gpu is read before its first test');
      return gpu;
    },
  };
}

/**
 * A JSON text's value as `unknown`: the test casts it to the shape it expects (a fixture's manifest, a child's report).
 * @param {string} text
 * @returns {unknown}
 */
export const parseJson = (text) => JSON.parse(text);

/**
 * A JSON file's value as `unknown` (see parseJson).
 * @param {string} path
 */
export const readJson = (path) => parseJson(readFileSync(path, 'utf8'));

/**
 * Rows of test parameters, typed as tuples, so that `for (const [B, C, bias] of cases([...]))` keeps
 * each column's own type (a plain array literal of mixed rows types every column as their union).
 * @template {unknown[] | []} T
 * @param {T[]} rows
 * @returns {T[]}
 */
export const cases = (rows) => rows;

/**
 * A tensor's gradient after a backward pass; a tensor without one fails the test by name.
 * @param {import('../dist/index.js').Tensor} t
 * @param {string} [what]
 */
export function gradOf(t, what = 'the tensor') {
  if (!t.grad) throw new Error(`${what} has no gradient after backward`);
  return t.grad;
}

/**
 * The value a map holds for `key`; a missing key fails the test by name.
 * @template K, V
 * @param {ReadonlyMap<K, V>} map
 * @param {K} key
 * @returns {V}
 */
export function entryOf(map, key) {
  const value = map.get(key);
  if (value === undefined) throw new Error(`no entry ${String(key)}`);
  return value;
}

/**
 * Deterministic pseudo-random numbers in [lo, hi) (mulberry32).
 * @param {number} n
 * @param {number} [seed]
 * @param {number} [lo]
 * @param {number} [hi]
 */
export function random(n, seed = 1, lo = -1, hi = 1) {
  const next = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * next();
  return out;
}

/**
 * Largest |a-b| / (atol/rtol + rtol*|b|) style check; reports the worst element.
 * @param {Numbers} actual
 * @param {Numbers} expected
 * @param {{ rtol?: number, atol?: number, what?: string }} [options]
 */
export function assertClose(actual, expected, { rtol = 1e-5, atol = 1e-5, what = 'values' } = {}) {
  assert.is(actual.length, expected.length, `${what}: length`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const tol = atol + rtol * Math.abs(expected[i]);
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= tol) && (worst < 0 || err / tol > worstExcess)) {
      worst = i;
      worstExcess = err / tol;
    }
  }
  if (worst >= 0) {
    assert.unreachable(
      `${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (${worstExcess.toFixed(1)}x the ` +
        `tolerance)`,
    );
  }
}

/**
 * Relative error as in gradient checks: max|a-b| / max(max|b|, floor).
 * @param {Numbers} actual
 * @param {Numbers} expected
 * @param {number} [floor]
 */
export function relError(actual, expected, floor = 1e-12) {
  let num = 0;
  let den = floor;
  for (let i = 0; i < expected.length; i++) {
    num = Math.max(num, Math.abs(actual[i] - expected[i]));
    den = Math.max(den, Math.abs(expected[i]));
  }
  return num / den;
}

/**
 * One regular expression from several, in order: long expected messages stay within the line width.
 * @param {RegExp[]} parts
 */
export function joinPatterns(...parts) {
  return new RegExp(parts.map((p) => p.source).join(''));
}
