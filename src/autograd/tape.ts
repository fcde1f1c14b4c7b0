/**
 * Reverse-mode autograd: a tape of nodes recorded during the forward pass, and one backward sweep.
 *
 * Nodes are appended in creation order, which is a topological order of the graph, so `backward`
 * walks the tape once from the end: a node runs only if its output received a gradient, and each
 * tensor's gradient is complete (all its uses accumulated) by the time its producer is reached, so a
 * tensor used k times is visited once. Gradients of inputs that do not require grad are never asked
 * for (`needs[i]` is false). What a rule saved is released as soon as that rule has run.
 */
import { Tensor, formatShape, sameShape } from '../tensor.js';

export type BackwardRule = (grad: Tensor, needs: readonly boolean[]) => ReadonlyArray<Tensor | null>;

export interface TapeNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  readonly output: Tensor;
  saved: Tensor[];
  rule: BackwardRule | null;
}

/** In-place `dst += src`, provided by the elementwise ops (set at load time to avoid an import cycle). */
let accumulate: ((dst: Tensor, src: Tensor) => void) | null = null;
export function setAccumulate(fn: (dst: Tensor, src: Tensor) => void): void {
  accumulate = fn;
}

export class Tape {
  private nodes: TapeNode[] = [];
  private noGradDepth = 0;
  private scopes: Set<Tensor>[] = [];

  get gradEnabled(): boolean {
    return this.noGradDepth === 0;
  }

  get length(): number {
    return this.nodes.length;
  }

  /** Runs `fn` without recording (inference). */
  noGrad<T>(fn: () => T): T {
    this.noGradDepth++;
    try {
      return fn();
    } finally {
      this.noGradDepth--;
    }
  }

  /** Called by every new tensor: the innermost scope will dispose it unless it is returned. */
  track(t: Tensor): void {
    this.scopes[this.scopes.length - 1]?.add(t);
  }

  untrack(t: Tensor): void {
    for (let i = this.scopes.length - 1; i >= 0; i--) if (this.scopes[i].delete(t)) return;
  }

  /**
   * Runs `fn` and disposes every tensor it created, except those in its result (a tensor, or an
   * array or object of tensors), which move to the enclosing scope. When `fn` throws, every tensor
   * it created is disposed and the nodes it recorded are dropped.
   */
  scope<T>(fn: () => T): T {
    const mine = new Set<Tensor>();
    const firstNode = this.nodes.length;
    this.scopes.push(mine);
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this.scopes.pop();
      for (const node of this.nodes.splice(firstNode)) if (node.rule) this.releaseNode(node);
      for (const t of mine) t.dispose();
      throw e;
    }
    this.scopes.pop();
    const kept = new Set<Tensor>();
    const collect = (v: unknown): void => {
      if (v instanceof Tensor) kept.add(v);
      else if (Array.isArray(v)) v.forEach(collect);
      else if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) Object.values(v).forEach(collect);
    };
    collect(result!);
    for (const t of mine) {
      if (kept.has(t)) this.track(t);
      else t.dispose();
    }
    return result!;
  }

  /**
   * Records `output = op(inputs)` with its backward rule, if gradients are enabled and an input
   * needs one. `saved` tensors are kept alive until the rule has run.
   */
  record(op: string, inputs: readonly Tensor[], output: Tensor, rule: BackwardRule, saved: readonly Tensor[] = []): Tensor {
    if (!this.gradEnabled || !inputs.some((t) => t.requiresGrad)) return output;
    const node: TapeNode = { op, inputs, output, saved: saved.map((t) => t.retain()), rule };
    output.requiresGrad = true;
    output.node = node;
    this.nodes.push(node);
    return output;
  }

  /** Back-propagates from `root` (a scalar unless `seed` is given), accumulating into leaves' `.grad`. */
  backward(root: Tensor, seed?: Tensor): void {
    if (!root.requiresGrad || !root.node) throw new Error(`backward() from ${root}: it does not depend on any tensor that requires grad`);
    if (!seed && root.size !== 1) throw new Error(`backward() from ${formatShape(root.shape)} needs a seed gradient (only scalars get 1)`);
    if (seed && !sameShape(seed.shape, root.shape)) throw new Error(`seed ${formatShape(seed.shape)} does not match ${formatShape(root.shape)}`);
    const grads = new Map<Tensor, Tensor>();
    const first = seed ? seed.retain() : this.noGrad(() => Tensor.full(root.gpu, root.shape, 1));
    this.untrack(first);
    grads.set(root, first);
    this.noGradDepth++;
    try {
      for (let i = this.nodes.length - 1; i >= 0; i--) {
        const node = this.nodes[i];
        const g = grads.get(node.output);
        if (!g || !node.rule) continue;
        grads.delete(node.output);
        const needs = node.inputs.map((t) => t.requiresGrad);
        const inputGrads = this.scope(() => [...node.rule!(g, needs)]);
        this.releaseNode(node);
        const owned = new Set<Tensor>();
        inputGrads.forEach((gi, k) => {
          if (!gi || !needs[k]) return;
          const input = node.inputs[k];
          if (!sameShape(gi.shape, input.shape)) throw new Error(`backward of ${node.op}: gradient ${formatShape(gi.shape)} for input ${formatShape(input.shape)}`);
          this.untrack(gi);
          // The rule may return its incoming gradient, or one tensor for two inputs: each holder
          // gets its own reference.
          if (gi === g || owned.has(gi)) gi.retain();
          owned.add(gi);
          if (input.node) this.accumulateInto(grads, input, gi);
          else this.accumulateLeaf(input, gi);
        });
        g.release();
      }
    } finally {
      this.noGradDepth--;
      for (const g of grads.values()) g.release();
      this.clear();
    }
  }

  private accumulateInto(grads: Map<Tensor, Tensor>, input: Tensor, gi: Tensor): void {
    const prev = grads.get(input);
    if (!prev) {
      grads.set(input, gi);
      return;
    }
    if (prev.refCount > 1) {
      // Shared with another holder: accumulate into a private copy.
      const copy = Tensor.zeros(input.gpu, input.shape);
      this.untrack(copy);
      accumulate!(copy, prev);
      prev.release();
      grads.set(input, copy);
      accumulate!(copy, gi);
    } else {
      accumulate!(prev, gi);
    }
    gi.release();
  }

  private accumulateLeaf(leaf: Tensor, gi: Tensor): void {
    if (!leaf.alive) {
      gi.release();
      return;
    }
    if (!leaf.grad) {
      leaf.grad = Tensor.zeros(leaf.gpu, leaf.shape);
      this.untrack(leaf.grad);
    }
    accumulate!(leaf.grad, gi);
    gi.release();
  }

  private releaseNode(node: TapeNode): void {
    for (const t of node.saved) t.release();
    node.saved = [];
    node.rule = null;
    if (node.output.node === node) node.output.node = null;
  }

  /** Drops every recorded node (e.g. after a forward pass whose gradient is not needed). */
  clear(): void {
    for (const node of this.nodes) if (node.rule) this.releaseNode(node);
    this.nodes = [];
  }
}
