// Reverse-mode automatic differentiation: the chain rule over a recorded graph of operations (PyTorch's autograd).
//
// An operation on tensors that require grad records a Node: edges to the nodes (or leaves) of its inputs, the
// tensors its backward needs (saved with their version, so that an in-place change is caught), and a backward
// that maps the gradients of its outputs to those of its inputs by calling kernels. `backward()` walks the nodes
// that lead to the root in reverse topological order, sums the gradients that meet at a tensor, accumulates into
// leaves' `.grad` (PyTorch's +=; a Parameter's deferred zero is overwritten instead, as Module.backward does) and
// releases the saved tensors unless `retainGraph`. Under `noGrad`, and when no input requires grad, nothing is
// recorded: inference pays nothing.
import { describe, RetrogradError } from '../errors.js';
import type { GradNode } from '../tensor.js';
import { copyOf, Tensor } from '../tensor.js';

/** Where a gradient goes: the node that made an input (and which of its outputs it was), or a leaf. */
export type Edge = { node: Node; index: number } | { leaf: Tensor } | null;

/** The gradients of a node's inputs from those of its outputs (null: no gradient for that input). */
export type BackwardFn = (grads: (Tensor | null)[], saved: Tensor[]) => (Tensor | null)[];

const NONE: number[] = [];

export class Node implements GradNode {
  /** The tensors the backward needs, and the version of each when saved (null once released). */
  private saved: readonly Tensor[] | null;
  private readonly versions: number[];
  /** Set once backward ran without retainGraph: the saved tensors are gone. */
  released = false;
  /** @internal Called once by release() (a leased module's call hands its workspace back then). */
  onRelease?: () => void;
  constructor(
    readonly name: string,
    readonly edges: Edge[],
    saved: readonly Tensor[],
    readonly numOutputs: number,
    private readonly fn: BackwardFn,
  ) {
    this.saved = saved;
    this.versions = saved.length === 0 ? NONE : new Array<number>(saved.length);
    for (let i = 0; i < saved.length; i++) this.versions[i] = saved[i]._version;
  }

  /** @internal Runs the backward: checks that the saved tensors are still there and unchanged. */
  apply(grads: (Tensor | null)[]): (Tensor | null)[] {
    this.check();
    return this.fn(grads, this.saved as Tensor[]);
  }

  /** @internal Throws unless the backward can run: not released, its saved tensors alive and unchanged. */
  check(): void {
    if (this.released || !this.saved)
      throw new RetrogradError(
        `backward: trying to go through the graph a second time (${this.name}'s saved tensors were released by the first backward); pass { retainGraph: true } to the first call`,
        'INVALID_ARGUMENT',
      );
    this.saved.forEach((t, i) => {
      if (t._version !== this.versions[i])
        throw new RetrogradError(
          `backward: a tensor ${this.name} saved for its gradient (shape [${t.shape.join(', ')}]) was changed by an in-place operation: version ${this.versions[i]} when saved, ${t._version} now`,
          'INVALID_ARGUMENT',
        );
      if (t.disposed)
        throw new RetrogradError(`backward: a tensor ${this.name} saved for its gradient (shape [${t.shape.join(', ')}]) has been disposed`, 'DISPOSED');
    });
  }

  release(): void {
    this.saved = null;
    if (this.released) return;
    this.released = true;
    this.onRelease?.();
  }
}

// ---- grad mode ----

let gradEnabled = true;
/** > 0 while rg.autograd.grad runs a backward: nodes must not accumulate into parameters' gradients. */
let capturing = 0;
/** @internal Whether the backward running now returns gradients (autograd.grad) rather than accumulating them. */
export function isCapturing(): boolean {
  return capturing > 0;
}

/** Whether operations record the graph now (false inside noGrad). */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording the graph (PyTorch's torch.no_grad): inference, evaluation, in-place updates. */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}
/** Runs fn recording the graph even inside noGrad. */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}
function withGradMode<T>(mode: boolean, fn: () => T): T {
  if (typeof fn !== 'function') throw new TypeError(`rg.${mode ? 'enableGrad' : 'noGrad'}: expected a function, got ${typeof fn}`);
  const before = gradEnabled;
  gradEnabled = mode;
  try {
    const r = fn();
    if (r instanceof Promise) {
      // an async fn would run its awaited parts with the mode of whatever runs then: refuse rather than surprise
      gradEnabled = before;
      throw new TypeError(`rg.${mode ? 'enableGrad' : 'noGrad'}: fn must be synchronous (it returned a promise)`);
    }
    return r;
  } finally {
    gradEnabled = before;
  }
}

// ---- recording ----

/** Whether x takes part in the graph: a leaf that requires grad, or the output of a recorded operation. */
export function requiresGrad(x: Tensor): boolean {
  return x.gradFn !== null || x._requiresGrad;
}

export function edgeOf(x: Tensor): Edge {
  if (x.gradFn) return { node: x.gradFn as Node, index: x.outputIndex };
  if (x._requiresGrad) return { leaf: x };
  return null;
}

/**
 * Records an operation when the graph is on and an input requires grad: `outputs` get the node (and become
 * non-leaves). `inputs` are the differentiable inputs in the order the backward returns their gradients.
 */
export function record(name: string, inputs: readonly Tensor[], outputs: readonly Tensor[], saved: readonly Tensor[], backward: BackwardFn): Node | undefined {
  if (!gradEnabled) return undefined;
  let any = false;
  for (const x of inputs) if (requiresGrad(x)) any = true;
  if (!any) return undefined;
  const node = new Node(name, inputs.map(edgeOf), saved, outputs.length, backward);
  outputs.forEach((o, i) => {
    o.gradFn = node;
    o.outputIndex = i;
  });
  return node;
}

// ---- the backward pass ----

/** Adds g into a leaf's gradient: a Parameter's (deferred zero overwritten), else the tensor's own .grad. */
function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  if (leaf._param) {
    leaf._param.accumulate(g);
    return;
  }
  if (!leaf._grad || leaf._grad.disposed) {
    leaf._grad = copyOf(g, leaf.shape);
    leaf._grad._kept = true;
  } else {
    g.backend.k.axpy(leaf._grad.buf, g.buf, g.size, 1);
  }
}

/** a + b into a new tensor (the gradients that meet at one tensor). */
let sum: (a: Tensor, b: Tensor) => Tensor;
/** A tensor of ones shaped like x (the seed of a scalar's backward). */
let onesLike: (x: Tensor) => Tensor;
/** @internal lib/autograd/ops wires the two kernels the engine itself needs. */
export function setEngineOps(ops: { add(a: Tensor, b: Tensor): Tensor; onesLike(x: Tensor): Tensor }): void {
  sum = ops.add;
  onesLike = ops.onesLike;
}

/** Options of `tensor.backward()`. */
export interface BackwardOptions {
  /** Keep the saved tensors, so that the graph can be gone through again. */
  retainGraph?: boolean;
}

/**
 * The chain rule from `roots` (each with its incoming gradient) back to the leaves. With `capture`, the gradients
 * that reach those tensors are returned instead of being accumulated into leaves (rg.autograd.grad). A root whose
 * third entry is true gives its gradient to the engine (the implied seed of ones: not copied, freed as it is used).
 */
function run(roots: [Tensor, Tensor, boolean?][], retainGraph: boolean, capture?: Tensor[]): Map<Tensor, Tensor> {
  const captured = new Map<Tensor, Tensor>();
  const captureSet = new Set(capture ?? []);
  // nodes that lead to the roots, and how many gradients each waits for
  const pending = new Map<Node, number>();
  const stack: Node[] = [];
  for (const [t] of roots) if (t.gradFn && !pending.has(t.gradFn as Node)) {
    pending.set(t.gradFn as Node, 0);
    stack.push(t.gradFn as Node);
  }
  while (stack.length) {
    const n = stack.pop()!;
    for (const e of n.edges) {
      if (!e || !('node' in e)) continue;
      const seen = pending.has(e.node);
      pending.set(e.node, (pending.get(e.node) ?? 0) + 1);
      if (!seen) stack.push(e.node);
    }
  }
  // with capture, only the nodes that lead to a captured tensor run: the rest of the graph is left as it is
  let needed: ((n: Node) => boolean) | undefined;
  if (capture) {
    // reaches(n): a captured tensor is n's output or lies behind n; a node runs when one lies behind it (a captured
    // intermediate takes its gradient where it arrives, and the nodes below it run only for other captured tensors)
    const memo = new Map<Node, boolean>();
    const producesCaptured = (n: Node) => [...captureSet].some((t) => t.gradFn === n);
    const behind = (n: Node): boolean => n.edges.some((e) => e !== null && ('leaf' in e ? captureSet.has(e.leaf) : reaches(e.node)));
    const reaches = (n: Node): boolean => {
      const known = memo.get(n);
      if (known !== undefined) return known;
      memo.set(n, false); // a graph has no cycles: this only guards the recursion
      const r = producesCaptured(n) || behind(n);
      memo.set(n, r);
      return r;
    };
    needed = behind;
  }
  // every node that will run is checked before any runs: a backward that would fail on a changed or released tensor
  // changes nothing
  for (const n of pending.keys()) if (!needed || needed(n)) n.check();
  // gradients arriving at each node's outputs
  const inbox = new Map<Node, (Tensor | null)[]>();
  const deliver = (node: Node, index: number, g: Tensor) => {
    let slots = inbox.get(node);
    if (!slots) inbox.set(node, (slots = new Array<Tensor | null>(node.numOutputs).fill(null)));
    const have = slots[index];
    if (have) {
      slots[index] = sum(have, g);
      drop(have);
      drop(g);
    } else {
      slots[index] = g;
    }
  };
  const toLeaf = (leaf: Tensor, g: Tensor, own: boolean) => {
    if (capture) {
      if (captureSet.has(leaf)) {
        const have = captured.get(leaf);
        captured.set(leaf, have ? sum(have, g) : own ? g : copyOf(g));
        if (have) drop(have);
        if (have && own) drop(g);
      } else if (own) drop(g);
      return;
    }
    accumulateLeaf(leaf, g);
    if (own) drop(g);
  };
  const ready: Node[] = [];
  for (const [t, g, given = false] of roots) {
    if (t.gradFn) deliver(t.gradFn as Node, t.outputIndex, given ? g : copyOf(g));
    else if (t._requiresGrad) toLeaf(t, g, given);
  }
  for (const [n, c] of pending) if (c === 0) ready.push(n);
  while (ready.length) {
    const node = ready.pop()!;
    const grads = inbox.get(node) ?? new Array<Tensor | null>(node.numOutputs).fill(null);
    inbox.delete(node);
    // a captured non-leaf (autograd.grad with respect to an intermediate tensor) takes the gradient of its output
    if (capture) grads.forEach((g, i) => {
      if (!g) return;
      for (const t of captureSet) if (t.gradFn === node && t.outputIndex === i) captured.set(t, copyOf(g));
    });
    if (needed && !needed(node)) {
      // not on a path to a captured tensor: its gradients are dropped, its inputs stop waiting for it
      for (const g of grads) if (g) drop(g);
      for (const e of node.edges) {
        if (!e || !('node' in e)) continue;
        const left = pending.get(e.node)! - 1;
        pending.set(e.node, left);
        if (left === 0) ready.push(e.node);
      }
      continue;
    }
    const out = node.apply(grads);
    if (!retainGraph) node.release();
    // Which gradient goes to which edge, decided before anything is freed: a tensor given for two inputs (x + x) goes
    // to the first as itself and to the others as copies; every tensor of `grads` and `out` (by storage) that no
    // edge takes is freed, once.
    // (a node has a few edges: arrays, not sets)
    const edges = node.edges;
    const given: (Tensor | null)[] = new Array<Tensor | null>(edges.length).fill(null);
    const taken: Tensor[] = [];
    for (let i = 0; i < edges.length; i++) {
      const g = out[i];
      if (!g || !edges[i]) continue;
      const base = g.viewBase;
      given[i] = taken.includes(base) ? copyOf(g) : g;
      taken.push(base);
    }
    const unused: Tensor[] = [];
    for (const list of [grads, out]) {
      for (const g of list) {
        if (!g) continue;
        const base = g.viewBase;
        if (!taken.includes(base) && !unused.includes(base)) unused.push(base);
      }
    }
    for (const g of unused) g.dispose();
    node.edges.forEach((e, i) => {
      const g = given[i];
      if (!e) return;
      if ('leaf' in e) {
        if (g) toLeaf(e.leaf, g, true);
        return;
      }
      if (g) deliver(e.node, e.index, g);
      const left = pending.get(e.node)! - 1;
      pending.set(e.node, left);
      if (left === 0) ready.push(e.node);
    });
  }
  return captured;
}

/** Frees a gradient the engine owns; a view's storage is its base's, which the engine owns as well. */
function drop(g: Tensor): void {
  g.viewBase.dispose();
}


function checkRoot(where: string, t: Tensor, gradient?: Tensor): Tensor {
  if (!(t instanceof Tensor)) throw new TypeError(`${where}: expected a Tensor, got ${typeof t}`);
  if (!requiresGrad(t))
    throw new RetrogradError(`${where}: the tensor does not require grad and has no gradient function (was it made under noGrad, or from tensors that do not require grad?)`, 'INVALID_ARGUMENT');
  if (gradient === undefined) {
    if (t.size !== 1)
      throw new RetrogradError(`${where}: a gradient can be implied only for a one-element output, this one has shape [${t.shape.join(', ')}]; pass the gradient`, 'INVALID_ARGUMENT');
    return onesLike(t);
  }
  if (!(gradient instanceof Tensor)) throw new TypeError(`${where}: gradient must be a Tensor, got ${typeof gradient}`);
  if (gradient.size !== t.size || gradient.shape.length !== t.shape.length || gradient.shape.some((d, i) => d !== t.shape[i]))
    throw new RangeError(`${where}: gradient has shape [${gradient.shape.join(', ')}], expected [${t.shape.join(', ')}]`);
  if (gradient.backend !== t.backend) throw new TypeError(`${where}: gradient is on '${gradient.device}' but the tensor is on '${t.device}'`);
  return gradient;
}

/** tensor.backward(gradient?, { retainGraph }): accumulates dL/dleaf into every leaf's .grad. */
export function backward(t: Tensor, gradient?: Tensor, options: BackwardOptions = {}): void {
  const g = checkRoot('backward', t, gradient);
  try {
    run([[t, g, g !== gradient]], options.retainGraph ?? false);
  } finally {
    if (g !== gradient) g.dispose(); // (a second dispose of a given seed does nothing)
  }
}

/** Options of rg.autograd.grad. */
export interface GradOptions extends BackwardOptions {
  /** The gradients of the outputs (needed for outputs with more than one element). */
  gradOutputs?: (Tensor | undefined)[];
  /** Inputs the outputs do not depend on get null instead of an error. */
  allowUnused?: boolean;
}

/** What autograd.grad differentiates with respect to: a tensor that requires grad, or a Parameter (its value). */
export type GradInput = Tensor | {
  /** The tensor a Parameter stands for. */
  readonly value: Tensor;
};

/**
 * rg.autograd.grad(outputs, inputs): the gradients of the outputs with respect to any tensors (leaves or
 * intermediates, e.g. a model's input), returned and not accumulated into .grad.
 */
export function grad(outputs: Tensor | Tensor[], inputs: GradInput | GradInput[], options: GradOptions = {}): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  // a Parameter stands for its value
  const ins = (Array.isArray(inputs) ? inputs : [inputs]).map((x: unknown, i): Tensor => {
    const t = x !== null && typeof x === 'object' && !(x instanceof Tensor) && (x as { value?: unknown }).value instanceof Tensor ? (x as { value: Tensor }).value : x;
    if (!(t instanceof Tensor)) throw new TypeError(`autograd.grad: inputs[${i}] must be a Tensor or a Parameter, got ${describe(x)}`);
    return t;
  });
  ins.forEach((x, i) => {
    if (!requiresGrad(x)) throw new RetrogradError(`autograd.grad: inputs[${i}] (shape [${x.shape.join(', ')}]) does not require grad`, 'INVALID_ARGUMENT');
  });
  const roots: [Tensor, Tensor][] = outs.map((o, i) => [o, checkRoot(`autograd.grad (outputs[${i}])`, o, options.gradOutputs?.[i])]);
  let captured: Map<Tensor, Tensor>;
  capturing++;
  try {
    captured = run(roots, options.retainGraph ?? false, ins);
  } finally {
    capturing--;
    roots.forEach(([, g], i) => { if (g !== options.gradOutputs?.[i]) g.dispose(); });
  }
  return ins.map((x, i) => {
    const g = captured.get(x);
    if (!g && !options.allowUnused)
      throw new RetrogradError(`autograd.grad: inputs[${i}] (shape [${x.shape.join(', ')}]) is not used to compute the outputs; pass { allowUnused: true } to get null`, 'INVALID_ARGUMENT');
    return g ?? null;
  });
}
