/** Tensor shapes: dimension lists, their element counts, comparison and display. */
export type Shape = readonly number[];

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** NCHW dimensions of a rank-4 tensor, with a clear error otherwise. */
export function dims4(op: string, x: { readonly shape: Shape }): [number, number, number, number] {
  if (x.shape.length !== 4) throw new Error(`${op}: expected an NCHW tensor, got ${formatShape(x.shape)}`);
  return x.shape as [number, number, number, number];
}
