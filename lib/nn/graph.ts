// Built-in layers on the autograd graph. A module whose forward and backward are written by hand (every built-in
// layer, and a Sequential of them) runs its fused kernels as one node: its forward runs without recording anything
// inside, and the node's backward is the module's own backward — Linear + ReLU stays one GEMM each way. What the
// module's backward reads from the last forward (its cached input, output, masks…) is kept with the node and put
// back while the node's backward runs, so a module called twice in one forward (shared weights) is correct. The
// module's backward accumulates its parameters' gradients itself, as in Module.backward (under autograd.grad, into
// gradients lent for the call, which the node hands on as its parameters' gradients).
//
// Leases. Outside a training loop a module's forward returns fresh tensors, as PyTorch's do. What never leaves a
// built-in module — a layer's scratch buffers, and inside a Sequential of built-in layers every layer's output and
// gradient — is still reused from step to step, as fit reuses it, once nothing can read the last step's any more: the
// module's workspace (and those of the modules inside it) is lent to one call at a time, held by the autograd node the
// call recorded until that node's backward has run or its graph is gone. A call that finds the lease held (the module
// called again before the backward, as a GAN's discriminator is, or a graph kept with retainGraph) runs on fresh
// buffers. What leaves the call (its output, and its backward's input gradient) is copied out when it is a reused
// buffer. So a hand-written loop's steady-state step allocates only its output and loss, not the layers' activations,
// which otherwise wait for the garbage collector (a CNN step: ~100 MB a step, and major collections to free it).
import { isCapturing, isGradEnabled, noGrad, record, requiresGrad, type Node } from '../autograd/engine.js';
import { copyOf, Tensor } from '../tensor.js';
import { INFERENCE_LEASE_LIMIT, isPooled, setLeaseMode, type LeaseMode } from '../workspace.js';
import { moduleBackwardBegins, moduleBackwardDone } from './grad-writes.js';
import type { Module } from './module.js';
import { Scratch } from './util.js';

/** > 0 while a hand-written module's forward runs: its sub-modules' forwards record nothing. */
let insideFused = 0;

/** The node each module's last recorded forward made, while its backward has not run. */
const pendingNode = new WeakMap<Module, Node>();
/** true while a forward runs whose module's previous forward still awaits its backward (a module called twice in one
 * forward): what that forward made must not be freed by this one. */
let keepingPrevious = false;
export function keepPreviousForward(): boolean {
  return keepingPrevious;
}

/** Whether m's forward and backward are defined together (the same class) and so are those of all its sub-modules:
 * then its backward can stand for everything its forward did. A module whose configuration its fused kernels do not
 * cover (MultiheadAttention with attention dropout) says so by a `graphOnly` getter that returns true. */
export function hasOwnBackward(m: Module): boolean {
  return backwardWithForward(m) && m.children().every(hasOwnBackward);
}

/** hasOwnBackward for m alone, not its sub-modules. */
function backwardWithForward(m: Module): boolean {
  if ((m as { graphOnly?: unknown }).graphOnly === true) return false;
  let proto = Object.getPrototypeOf(m);
  while (proto && !Object.prototype.hasOwnProperty.call(proto, 'forward')) proto = Object.getPrototypeOf(proto);
  return !!proto && Object.prototype.hasOwnProperty.call(proto, 'backward');
}

/** The fields of m and of its sub-modules, each module's own shallow copy. */
function fieldsOf(m: Module, into = new Map<Module, Record<string, unknown>>()): Map<Module, Record<string, unknown>> {
  into.set(m, { ...m });
  for (const c of m.children()) fieldsOf(c, into);
  return into;
}

/** A lease, held from the call that took it until its node is released (its backward has run) or collected (its
 * graph is gone). Not a WeakRef to the node: a WeakRef made or dereferenced keeps its target alive until the current
 * job ends, and a training loop that never yields is one job, so every step's graph (its activations, its input)
 * stayed alive to the loop's end (a DCGAN's loop grew by 8 MB a step). */
interface Lease {
  held: boolean;
}
/** The lease each module's workspace is under (none, or one no longer held: free). */
const holders = new WeakMap<Module, Lease>();
/** Ends the lease of a node collected without its backward having run (in a later task: until then the lease stays
 * held, and the module's calls take fresh buffers). */
const collected = new FinalizationRegistry<Lease>((lease) => {
  lease.held = false;
});
/** The lease mode of each node whose forward ran under a lease: its backward runs under the same. */
const leasedNodes = new WeakMap<Node, LeaseMode>();
/** true while a leased call runs: the modules it calls take its mode instead of leasing again. */
let leasing = false;
let leasesOn = true;
/** @internal Switches leases on or off (the tests compare a leased loop with one on fresh buffers); returns the
 * previous setting. */
export function setLeasing(on: boolean): boolean {
  const was = leasesOn;
  leasesOn = on;
  return was;
}

/** Whether every module in `mods` has its workspace free to lend. */
function leaseFree(mods: readonly Module[]): boolean {
  for (const mod of mods) if (holders.get(mod)?.held) return false;
  return true;
}

/** The modules of m's tree, or undefined if one appears twice (its buffers would serve two calls in one forward) or
 * one lacks its own backward (hasOwnBackward, in the same walk). */
function treeOf(m: Module, into: Module[] = [], seen?: Set<Module>): Module[] | undefined {
  if (into.length > 16) seen ??= new Set(into); // (a small tree is searched as a list: this runs at every call)
  if ((seen ? seen.has(m) : into.includes(m)) || !backwardWithForward(m)) return undefined;
  into.push(m);
  seen?.add(m);
  for (const c of m.children()) if (!treeOf(c, into, seen)) return undefined;
  return into;
}

/** A built-in layer class whose forward leaves nothing the caller can reach but its output (no state it hands out,
 * such as a recurrent layer's lastState): inside a Sequential its outputs and gradients can be lent. Marked by a static
 * `buffersStayInside` of the class itself (a subclass is not covered by its parent's mark). */
function staysInside(m: Module): boolean {
  return Object.prototype.hasOwnProperty.call(m.constructor, 'buffersStayInside');
}

/** The lease m's call can take now ('none': fresh buffers) and the modules it covers. */
function leaseFor(m: Module): { mode: LeaseMode; mods: Module[] } | undefined {
  if (!leasesOn || leasing || (m as unknown as { ws: { reuse: number } }).ws.reuse > 0) return undefined;
  const mods = treeOf(m);
  if (!mods || !leaseFree(mods)) return undefined;
  return { mode: mods.length > 1 && mods.every(staysInside) ? 'all' : 'scratch', mods };
}

/** Runs fn under `mode` (inside it, nested modules don't lease again). */
function underLease<T>(mode: LeaseMode, fn: () => T, limit = Infinity): T {
  const [was, wasLimit] = setLeaseMode(mode, limit), wasLeasing = leasing;
  leasing = true;
  try {
    return fn();
  } finally {
    setLeaseMode(was, wasLimit);
    leasing = wasLeasing;
  }
}

/** t itself, or a fresh copy of it when it is a lent buffer (what leaves a leased call must not be overwritten by the
 * next one). */
function outOfLease(t: Tensor): Tensor {
  return isPooled(t) ? noGrad(() => copyOf(t)) : t;
}

/** Installs the forward that records the module as one node (called by Module's constructor). */
export function wrapForward(m: Module): void {
  const own = (m as unknown as { forward: (...a: unknown[]) => Tensor }).forward;
  Object.defineProperty(m, 'forward', {
    configurable: true,
    writable: true,
    value: function forward(this: Module, ...args: unknown[]): Tensor {
      if (insideFused > 0 || leasing || args.length !== 1 || !(args[0] instanceof Tensor)) return own.apply(this, args);
      const x = args[0];
      const grad = isGradEnabled();
      const params = grad ? [...new Set(this.parameters())].filter((p) => p.requiresGrad) : []; // a layer held twice: its parameters once
      if (!grad || (!requiresGrad(x) && params.length === 0)) {
        // nothing recorded (inference): the lease is free again once the output is out; it lends small buffers only
        // (a batch-1 request's), as keeping a large batch's activations with the module would pin a whole data set's
        const lease = leaseFor(this);
        if (!lease) return own.apply(this, args);
        const y = underLease(lease.mode, () => own.apply(this, args), INFERENCE_LEASE_LIMIT);
        return y === x || !(y instanceof Tensor) ? y : outOfLease(y);
      }
      // (a lease is taken only by a tree of modules that have their own backward: the walk is not made twice)
      const lease = leaseFor(this);
      if (!lease && !hasOwnBackward(this)) return own.apply(this, args);
      const before = fieldsOf(this);
      // called again before the last call's backward ran (shared weights): the scratch tensors of that call stay with
      // its node instead of being freed by this forward
      const previous = pendingNode.get(this);
      const keep = previous !== undefined && !previous.released;
      if (keep) for (const fields of before.values()) for (const v of Object.values(fields)) if (v instanceof Scratch) v.disown();
      let y: Tensor;
      const wasKeeping = keepingPrevious;
      insideFused++;
      keepingPrevious = keep;
      try {
        y = noGrad(() => (lease ? underLease(lease.mode, () => own.apply(this, args)) : own.apply(this, args)));
      } finally {
        insideFused--;
        keepingPrevious = wasKeeping;
      }
      // what the forward changed is what its backward will read: a field that holds something new, or that holds the
      // same object as before this call where that is this call's input, a reused buffer or a tensor's shape (the same
      // objects at every step with the same sizes, which a later call may replace before this node's backward runs)
      const after = fieldsOf(this);
      const changed: [Module, string, unknown][] = [];
      const saved: Tensor[] = [];
      for (const [mod, fields] of after) {
        const was = before.get(mod) ?? {};
        for (const [k, v] of Object.entries(fields)) {
          if (was[k] === v && v !== x && !(v instanceof Tensor && isPooled(v)) && !(Array.isArray(v) && Object.isFrozen(v))) continue;
          changed.push([mod, k, v]);
          // (a tensor the forward disposed itself, e.g. a sub-layer output it consumed, is not read by its backward)
          if (v instanceof Tensor && v !== y && !v.disposed) saved.push(v);
        }
      }
      if (y === x) return y; // an identity (Dropout in eval mode, Identity): nothing to record
      if (lease) y = outOfLease(y);
      const label = (this as unknown as { label?: string }).label ?? this.constructor.name;
      const inputs = [x, ...params.map((p) => p.value)];
      const self = this;
      const node = record(label, inputs, [y], saved, ([g]) => {
        if (!g) return inputs.map(() => null);
        // put back this forward's state, run the hand-written backward, then restore whatever is there now
        const now = changed.map(([mod, k]) => (mod as unknown as Record<string, unknown>)[k]);
        for (const [mod, k, v] of changed) (mod as unknown as Record<string, unknown>)[k] = v;
        // under autograd.grad nothing accumulates into .grad: the layer's backward writes its parameters' gradients into
        // lent ones, which become this node's gradients for them
        // (each lent gradient is given back once, whatever throws: the parameter's own gradient is always restored)
        const lent: (() => Tensor)[] = [];
        const givenBack: Tensor[] = [];
        const giveBack = () => {
          while (givenBack.length < lent.length) givenBack.push(lent[givenBack.length]());
        };
        try {
          if (isCapturing()) for (const p of params) lent.push(p.lendGrad());
          const wantInput = requiresGrad(x);
          const dx = leasedBackward(self, node, g, wantInput);
          giveBack();
          return [wantInput ? dx : null, ...params.map((_, i) => givenBack[i] ?? null)];
        } catch (e) {
          giveBack();
          for (const t of givenBack) t.dispose();
          throw e;
        } finally {
          changed.forEach(([mod, k], i) => ((mod as unknown as Record<string, unknown>)[k] = now[i]));
        }
      });
      if (node) {
        pendingNode.set(this, node);
        if (lease) {
          leasedNodes.set(node, lease.mode);
          const held: Lease = { held: true };
          node.onRelease = () => {
            held.held = false;
          };
          collected.register(node, held);
          for (const mod of lease.mods) holders.set(mod, held);
        }
      }
      return y;
    },
  });
  // Module.backward called by hand consumes the last forward's state, as the node's backward would: the node is done
  const ownBackward = (m as unknown as { backward: (dy: Tensor, inputGrad?: boolean) => Tensor }).backward;
  Object.defineProperty(m, 'backward', {
    configurable: true,
    writable: true,
    value: function backward(this: Module, dy: Tensor, inputGrad?: boolean): Tensor {
      const node = pendingNode.get(this);
      pendingNode.delete(this);
      try {
        return leasedBackward(this, node, dy, inputGrad);
      } finally {
        node?.release();
      }
    },
  });
  /** The module's own backward, under the lease its forward ran under (node: the forward's; none if it recorded none),
   * reporting its gradient writes; a lent input gradient is copied out. */
  function leasedBackward(self: Module, node: Node | undefined, dy: Tensor, inputGrad?: boolean): Tensor {
    // (a node already released, its backward run through the graph, no longer holds the lease: fresh buffers)
    const mode = node && !node.released ? leasedNodes.get(node) : undefined;
    const mark = moduleBackwardBegins();
    const dx = mode ? underLease(mode, () => ownBackward.call(self, dy, inputGrad)) : ownBackward.call(self, dy, inputGrad);
    moduleBackwardDone(mark);
    return mode && inputGrad !== false ? outOfLease(dx) : dx;
  }
}
