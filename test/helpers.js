// Shared by the tests: one engine per test file, random data, and comparisons with useful messages.
import * as assert from 'uvu/assert';
import { Gpu } from '../dist/index.js';
import { mulberry32 } from './mulberry32.js';

/**
 * Opens an engine for a suite (on the adapter, subgroups, limits and feature level that SISN_ADAPTER,
 * SISN_SUBGROUPS, SISN_LIMITS and SISN_FEATURE_LEVEL choose) and disposes it after. uvu ignores an error thrown
 * in a `before` hook and passes the run, so the error is kept and every test that uses `ctx.gpu` fails with it.
 */
export function withGpu(suite, options) {
  let gpu = null;
  let failure = null;
  suite.before(async () => {
    try {
      gpu = await Gpu.open(options);
    } catch (e) {
      failure = e;
    }
  });
  suite.after(() => gpu?.dispose());
  return {
    get gpu() {
      if (failure) throw new Error(`the suite's GPU did not open: ${failure.message}`);
      return gpu;
    },
  };
}

/** Deterministic pseudo-random numbers in [lo, hi) (mulberry32). */
export function random(n, seed = 1, lo = -1, hi = 1) {
  const next = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * next();
  return out;
}

/** Largest |a-b| / (atol/rtol + rtol*|b|) style check; reports the worst element. */
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

/** Relative error as in gradient checks: max|a-b| / max(max|b|, floor). */
export function relError(actual, expected, floor = 1e-12) {
  let num = 0;
  let den = floor;
  for (let i = 0; i < expected.length; i++) {
    num = Math.max(num, Math.abs(actual[i] - expected[i]));
    den = Math.max(den, Math.abs(expected[i]));
  }
  return num / den;
}

/** One regular expression from several, in order: long expected messages stay within the line width. */
export function joinPatterns(...parts) {
  return new RegExp(parts.map((p) => p.source).join(''));
}
