/**
 * Reverse-mode autograd: a tape of nodes recorded during the forward pass, and one backward sweep.
 *
 * Nodes are appended in creation order, which is a topological order of the graph, so `backward`
 * walks the tape once from the end: a node runs only if its output received a gradient, and each
 * tensor's gradient is complete (all its uses accumulated) by the time its producer is reached, so a
 * tensor used k times is visited once. Gradients of inputs that do not require grad are never asked
 * for (`needs[i]` is false). What a rule saved is released as soon as that rule has run.
 *
 * A leaf's first gradient becomes its `.grad` (no copy); a second one is added in place (or, where
 * the first is shared with another holder, both are summed into a new tensor). Where an input
 * already has a gradient that nothing else holds (a leaf's `.grad`, e.g. a parameter's slot in the
 * gradient arena, or the partial gradient of a tensor used twice), the rule is handed it as
 * `into[k]` and may add its gradient there itself, in the kernel that computes it, instead of
 * returning a tensor for the tape to add (one pass less).
 */
import { formatShape, sameShape, type Shape } from '../shape.js';

/** What the tape uses of a tensor (tensor.ts's Tensor). */
export interface TapeTensor {
  readonly shape: Shape;
  readonly size: number;
  readonly alive: boolean;
  readonly refCount: number;
  /** Changes whenever its values may have changed (every write bumps it). */
  readonly version: number;
  /** Nothing else holds it or a view of its storage: it may be updated in place. */
  readonly exclusive: boolean;
  requiresGrad: boolean;
  node: TapeNode | null;
  grad: TapeTensor | null;
  /** Names the tensor in error messages. */
  toString(): string;
  retain(): this;
  release(): void;
  dispose(): void;
}

/**
 * Returns the gradient of each input (null where `needs[k]` is false), or `into[k]` itself after
 * adding input k's gradient into it in place (`into[k]` is null where the tape offers no target).
 */
export type BackwardRule<T extends TapeTensor = TapeTensor> = (
  grad: T,
  needs: readonly boolean[],
  into: readonly (T | null)[],
) => ReadonlyArray<T | null>;

export interface TapeNode {
  readonly op: string;
  readonly inputs: readonly TapeTensor[];
  readonly output: TapeTensor;
  saved: TapeTensor[];
  /** The versions of the tensors saved at record time (later writes would make the rule wrong). */
  readonly savedVersions: readonly number[];
  rule: BackwardRule | null;
}

/** The kernels a backward sweep needs, given by the engine (not recorded). */
export interface GradientKernels {
  /** A new tensor of `like`'s shape with every element `value`. */
  full(like: TapeTensor, value: number): TapeTensor;
  /** In place: `dst += src`. */
  accumulate(dst: TapeTensor, src: TapeTensor): void;
  /** A new tensor `a + b`. */
  sum(a: TapeTensor, b: TapeTensor): TapeTensor;
}

export class Tape {
  private nodes: TapeNode[] = [];
  private noGradDepth = 0;
  private scopes: Set<TapeTensor>[] = [];

  constructor(private readonly kernels: GradientKernels) {}

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
  track(t: TapeTensor): void {
    this.scopes[this.scopes.length - 1]?.add(t);
  }

  untrack(t: TapeTensor): void {
    for (let i = this.scopes.length - 1; i >= 0; i--) if (this.scopes[i].delete(t)) return;
  }

  /**
   * Runs `fn` and disposes every tensor it created, except those in its result (a tensor, or an
   * array or object of tensors), which move to the enclosing scope. When `fn` throws, every tensor
   * it created is disposed and the nodes it recorded are dropped.
   */
  scope<T>(fn: () => T): T {
    const mine = new Set<TapeTensor>();
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
    const kept = new Set<TapeTensor>();
    const collect = (v: unknown): void => {
      if (mine.has(v as TapeTensor)) kept.add(v as TapeTensor);
      else if (Array.isArray(v)) v.forEach(collect);
      else if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype)
        Object.values(v).forEach(collect);
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
  record<T extends TapeTensor>(
    op: string,
    inputs: readonly T[],
    output: T,
    rule: BackwardRule<T>,
    saved: readonly T[] = [],
  ): T {
    if (!this.gradEnabled || !inputs.some((t) => t.requiresGrad)) return output;
    // The rule is only ever called with gradients of the same tensor type as its inputs.
    const node: TapeNode = {
      op,
      inputs,
      output,
      saved: saved.map((t) => t.retain()),
      savedVersions: saved.map((t) => t.version),
      rule: rule as unknown as BackwardRule,
    };
    output.requiresGrad = true;
    output.node = node;
    this.nodes.push(node);
    return output;
  }

  /**
   * Keeps `t` alive until the rule of the node that produced `output` has run, or the tape is
   * cleared: how a backward rule hands a tensor to the rule of an earlier node it pairs with.
   */
  keepFor(output: TapeTensor, t: TapeTensor): void {
    if (!output.node?.rule) throw new Error(`keepFor: ${formatShape(output.shape)} has no pending backward rule`);
    output.node.saved.push(t.retain());
  }

  /** Back-propagates from `root` (a scalar unless `seed` is given), accumulating into leaves' `.grad`. */
  backward(root: TapeTensor, seed?: TapeTensor): void {
    if (!root.requiresGrad || !root.node)
      throw new Error(`backward() from ${root.toString()}: it does not depend on any tensor that requires grad`);
    if (!seed && root.size !== 1)
      throw new Error(`backward() from ${formatShape(root.shape)} needs a seed gradient (only scalars get 1)`);
    if (seed && !sameShape(seed.shape, root.shape))
      throw new Error(`seed ${formatShape(seed.shape)} does not match ${formatShape(root.shape)}`);
    this.assertSavedUnwritten(root.node);
    const grads = new Map<TapeTensor, TapeTensor>();
    const first = seed ? seed.retain() : this.kernels.full(root, 1);
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
        const into = node.inputs.map((t, k) => this.target(grads, t, needs[k]));
        const inputGrads = this.scope(() => [...node.rule!(g, needs, into)]);
        this.releaseNode(node);
        const owned = new Set<TapeTensor>();
        inputGrads.forEach((gi, k) => {
          if (!gi || !needs[k] || gi === into[k]) return;
          const input = node.inputs[k];
          if (!sameShape(gi.shape, input.shape))
            throw new Error(
              `backward of ${node.op}: gradient ${formatShape(gi.shape)} for input ${formatShape(input.shape)}`,
            );
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

  /**
   * Throws, before anything is computed, if a tensor that a rule reachable from `root` saved was
   * written after it was recorded: the rule would read the new values and return a wrong gradient.
   */
  private assertSavedUnwritten(root: TapeNode): void {
    const seen = new Set<TapeNode>();
    const stack = [root];
    while (stack.length) {
      const node = stack.pop()!;
      if (seen.has(node) || !node.rule) continue;
      seen.add(node);
      node.savedVersions.forEach((version, k) => {
        const t = node.saved[k];
        if (t.version !== version)
          throw new Error(
            `backward of ${node.op}: the ${formatShape(t.shape)} tensor it saved was written after the forward pass`,
          );
      });
      for (const input of node.inputs) if (input.node) stack.push(input.node);
    }
  }

  /** The gradient so far of `input` that a rule may add into in place, if any (see the header). */
  private target(grads: Map<TapeTensor, TapeTensor>, input: TapeTensor, needed: boolean): TapeTensor | null {
    if (!needed) return null;
    const partial = input.node ? grads.get(input) : input.alive ? input.grad : null;
    return partial?.exclusive ? partial : null;
  }

  private accumulateInto(grads: Map<TapeTensor, TapeTensor>, input: TapeTensor, gi: TapeTensor): void {
    const prev = grads.get(input);
    if (!prev) grads.set(input, gi);
    else grads.set(input, this.add(prev, gi));
  }

  private accumulateLeaf(leaf: TapeTensor, gi: TapeTensor): void {
    if (!leaf.alive) {
      gi.release();
      return;
    }
    if (leaf.grad) {
      leaf.grad = this.add(leaf.grad, gi);
    } else if (gi.exclusive) {
      // Adopted: gi was untracked and nothing else holds it.
      leaf.grad = gi;
    } else {
      // Shared with another holder: the leaf gets a copy of its own.
      leaf.grad = this.add(this.untracked(this.kernels.full(leaf, 0)), gi);
    }
  }

  /**
   * `total + gi`, releasing gi: in place where nothing else holds `total`, else into a new tensor
   * (one dispatch either way) that replaces it.
   */
  private add(total: TapeTensor, gi: TapeTensor): TapeTensor {
    let result = total;
    if (total.exclusive) {
      this.kernels.accumulate(total, gi);
    } else {
      result = this.untracked(this.kernels.sum(total, gi));
      total.release();
    }
    gi.release();
    return result;
  }

  private untracked(t: TapeTensor): TapeTensor {
    this.untrack(t);
    return t;
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
