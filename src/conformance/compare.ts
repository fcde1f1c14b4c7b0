/**
 * The comparisons a conformance check is made of. Each gives one `Check`: the worst error over the
 * tolerance it is allowed (a ratio <= 1 passes) and the element that gave it.
 */

export interface Check {
  /** The section of the fixture set it belongs to, e.g. `gradients`. */
  section: string;
  /** What was compared, e.g. `grad body.0.IA.conv1.weight`. */
  name: string;
  /** Worst error over the tolerance it is allowed (<= 1 passes). */
  ratio: number;
  detail: string;
}

export type Comparison = Omit<Check, 'section'>;

/** A comparison that either holds exactly or does not. */
export function exact(name: string, holds: boolean, detail: string): Comparison {
  return { name, ratio: holds ? 0 : Infinity, detail };
}

function lengthMismatch(name: string, got: ArrayLike<number>, ref: ArrayLike<number>): Comparison | null {
  return got.length === ref.length ? null : exact(name, false, `${got.length} values, expected ${ref.length}`);
}

/** Worst |got-ref| / (atol + rtol*|ref|); NaN counts as infinitely wrong. */
export function elementwise(
  name: string,
  got: Float32Array,
  ref: Float32Array,
  atol: number,
  rtol: number,
): Comparison {
  const mismatch = lengthMismatch(name, got, ref);
  if (mismatch) return mismatch;
  let ratio = 0;
  let at = 0;
  for (let i = 0; i < ref.length; i++) {
    const r = Math.abs(got[i] - ref[i]) / (atol + rtol * Math.abs(ref[i]));
    if (!(r <= ratio)) {
      ratio = Number.isNaN(r) ? Infinity : r;
      at = i;
    }
  }
  return { name, ratio, detail: `worst [${at}] ${got[at]} vs ${ref[at]} (atol ${atol}, rtol ${rtol})` };
}

export function absmax(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]));
  return m;
}

/** |got-ref| <= rtol * max|ref| of the tensor. */
export function relToAbsmax(name: string, got: Float32Array, ref: Float32Array, rtol: number): Comparison {
  return elementwise(name, got, ref, rtol * absmax(ref) || Number.MIN_VALUE, 0);
}

/** The spacing of float32 values at |v|: a parameter's update is defined only to this precision. */
export function ulp32(v: number): number {
  const a = Math.abs(Math.fround(v));
  if (a < 2 ** -126) return 2 ** -149;
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

/** What one Adam step is compared with. */
export interface AdamStep {
  lr: number;
  eps: number;
  /** Elementwise bound for elements whose gradient is round-off (the manifest's `atol`, 2*lr). */
  atol: number;
  /** Bound on the update where the gradient is significant. */
  updateAtol: number;
  /** An element's gradient is significant when |g_ref| > gradFloor * max|g_ref| of its tensor. */
  gradFloor: number;
  /** The gradient check's tolerance, relative to max|g_ref| of the tensor. */
  gradRtol: number;
}

/** A parameter before and after the step, the reference after, and both gradients. */
export interface AdamValues {
  before: Float32Array;
  after: Float32Array;
  refAfter: Float32Array;
  refGrad: Float32Array;
  grad: Float32Array;
}

/**
 * One parameter after the first Adam step, u(g) = lr*g/(|g|+eps). Where the reference gradient is
 * significant, the update (after - before) must match the reference update within `updateAtol`
 * plus the float32 spacing at the parameter, plus what the engine's gradient explains (the update
 * moves by |u(g) - u(g_ref)|) as far as the gradient check allows the gradient to differ. A skipped
 * or sign-flipped step misses by lr or 2*lr on every significant element. Elsewhere (round-off
 * gradients, which may move a parameter anywhere in [-lr, lr]) the values are compared with `atol`.
 */
export function adamUpdate(name: string, v: AdamValues, step: AdamStep): Comparison {
  const mismatch =
    lengthMismatch(name, v.after, v.refAfter) ??
    lengthMismatch(name, v.before, v.refAfter) ??
    lengthMismatch(name, v.refGrad, v.refAfter) ??
    lengthMismatch(name, v.grad, v.refAfter);
  if (mismatch) return mismatch;
  const gmax = absmax(v.refGrad);
  const delta = step.gradRtol * gmax;
  const u = (g: number) => (step.lr * g) / (Math.abs(g) + step.eps);
  let ratio = 0;
  let worst = 'all equal';
  let significant = 0;
  for (let i = 0; i < v.refAfter.length; i++) {
    const g = v.refGrad[i];
    let r: number;
    let detail: string;
    if (Math.abs(g) > step.gradFloor * gmax) {
      significant++;
      const got = v.after[i] - v.before[i];
      const want = v.refAfter[i] - v.before[i];
      // u is increasing, so a gradient within +-delta moves the update by at most this much.
      const allowed = Math.max(u(g + delta) - u(g), u(g) - u(g - delta));
      const tol =
        step.updateAtol +
        ulp32(Math.max(Math.abs(v.before[i]), Math.abs(v.refAfter[i]))) +
        Math.min(Math.abs(u(v.grad[i]) - u(g)), allowed);
      r = Math.abs(got - want) / tol;
      detail = `update [${i}] ${got} vs ${want} (tolerance ${tol.toPrecision(3)})`;
    } else {
      r = Math.abs(v.after[i] - v.refAfter[i]) / step.atol;
      detail = `round-off gradient [${i}] ${v.after[i]} vs ${v.refAfter[i]} (atol ${step.atol})`;
    }
    if (!(r <= ratio)) {
      ratio = Number.isNaN(r) ? Infinity : r;
      worst = detail;
    }
  }
  return {
    name,
    ratio,
    detail: `${worst}; ${significant} of ${v.refAfter.length} elements with a significant gradient`,
  };
}
