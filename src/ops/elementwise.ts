/**
 * Elementwise ops: add, sub, mul, affine (scale), relu, leaky ReLU, in-place fill and accumulate.
 * Forward and backward.
 */
import { Tensor, formatShape, sameShape } from '../tensor.js';

/** Invocations of an elementwise kernel over t: each handles RUN vec4s (elementwise.wgsl). */
function invocations(t: Tensor): number {
  return Math.ceil(t.size / 4 / t.gpu.kernels.constant('elementwise.binary', 'RUN'));
}

/** elementwise.binary's operations, by the names of their codes in the shader. */
type BinaryOp = 'OP_ADD' | 'OP_SUB' | 'OP_MUL' | 'OP_RELU_BACKWARD';

export function assertSameShape(op: string, a: Tensor, b: Tensor): void {
  if (!sameShape(a.shape, b.shape))
    throw new Error(`${op}: shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} differ`);
  if (a.gpu !== b.gpu) throw new Error(`${op}: tensors live on different devices`);
}

function binaryLaunch(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const out = Tensor.empty(a.gpu, a.shape);
  a.gpu.kernels.dispatch('elementwise.binary', {
    uniforms: { n: a.size },
    buffers: { out, a, b },
    invocations: invocations(a),
    constants: { OP: a.gpu.kernels.constant('elementwise.binary', op) },
  });
  return out;
}

export function add(a: Tensor, b: Tensor): Tensor {
  assertSameShape('add', a, b);
  return a.gpu.tape.record('add', [a, b], binaryLaunch('OP_ADD', a, b), (g) => [g, g]);
}

export function sub(a: Tensor, b: Tensor): Tensor {
  assertSameShape('sub', a, b);
  return a.gpu.tape.record('sub', [a, b], binaryLaunch('OP_SUB', a, b), (g, needs) => [
    g,
    needs[1] ? affine(g, -1, 0) : null,
  ]);
}

export function mul(a: Tensor, b: Tensor): Tensor {
  assertSameShape('mul', a, b);
  return a.gpu.tape.record(
    'mul',
    [a, b],
    binaryLaunch('OP_MUL', a, b),
    (g, needs) => [needs[0] ? mul(g, b) : null, needs[1] ? mul(g, a) : null],
    [a, b],
  );
}

/** `alpha * x + beta`. */
export function affine(x: Tensor, alpha: number, beta: number): Tensor {
  const out = Tensor.empty(x.gpu, x.shape);
  x.gpu.kernels.dispatch('elementwise.affine', {
    uniforms: { n: x.size, alpha, beta },
    buffers: { out, x },
    invocations: invocations(x),
  });
  return x.gpu.tape.record('affine', [x], out, (g) => [alpha === 1 ? g : affine(g, alpha, 0)]);
}

export function scale(x: Tensor, s: number): Tensor {
  return affine(x, s, 0);
}

/** `g * (x > 0)`: the gradient of relu at input `x`. */
export function reluBackward(g: Tensor, x: Tensor): Tensor {
  assertSameShape('reluBackward', g, x);
  return binaryLaunch('OP_RELU_BACKWARD', g, x);
}

export function relu(x: Tensor): Tensor {
  const out = Tensor.empty(x.gpu, x.shape);
  x.gpu.kernels.dispatch('elementwise.relu', {
    uniforms: { n: x.size },
    buffers: { out, x },
    invocations: invocations(x),
  });
  // PyTorch's relu passes no gradient at 0; the output is saved (it is > 0 exactly where x is).
  return x.gpu.tape.record('relu', [x], out, (g) => [reluBackward(g, out)], [out]);
}

/**
 * Leaky ReLU: `x > 0 ? x : slope * x` (any finite slope). The gradient, `g` where x > 0 and
 * `slope * g` elsewhere (at 0 too, as TensorFlow), is taken from the saved input: the output's
 * sign says nothing of x's where slope <= 0.
 */
export function leakyRelu(x: Tensor, slope: number): Tensor {
  if (!Number.isFinite(slope)) throw new Error(`leakyRelu: slope ${slope} must be a finite number`);
  const launch = (kernel: string, buffers: Record<string, Tensor>) => {
    const out = Tensor.empty(x.gpu, x.shape);
    x.gpu.kernels.dispatch(kernel, {
      uniforms: { n: x.size, slope },
      buffers: { out, ...buffers },
      invocations: invocations(x),
    });
    return out;
  };
  const out = launch('elementwise.leaky_relu', { x });
  return x.gpu.tape.record('leakyRelu', [x], out, (g) => [launch('elementwise.leaky_relu_backward', { a: g, b: x })], [
    x,
  ]);
}

/** In place: `dst += src` (not recorded on the tape). */
export function accumulate(dst: Tensor, src: Tensor): void {
  assertSameShape('accumulate', dst, src);
  dst.gpu.kernels.dispatch('elementwise.accumulate', {
    uniforms: { n: dst.size },
    buffers: { out: dst, x: src },
    invocations: invocations(dst),
  });
}

/** In place: every element of `t` becomes `value` (not recorded). */
export function fill(t: Tensor, value: number): void {
  t.gpu.kernels.dispatch('elementwise.fill', {
    uniforms: { n: t.size, value },
    buffers: { out: t },
    invocations: invocations(t),
  });
}
