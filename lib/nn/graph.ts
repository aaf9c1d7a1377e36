// Built-in layers on the autograd graph. A module whose forward and backward are written by hand (every built-in
// layer, and a Sequential of them) runs its fused kernels as one node: its forward runs without recording anything
// inside, and the node's backward is the module's own backward — Linear + ReLU stays one GEMM each way. What the
// module's backward reads from the last forward (its cached input, output, masks…) is kept with the node and put
// back while the node's backward runs, so a module called twice in one forward (shared weights) is correct. The
// module's backward accumulates its parameters' gradients itself, as in Module.backward (under autograd.grad, into
// gradients lent for the call, which the node hands on as its parameters' gradients).
import { isCapturing, isGradEnabled, noGrad, record, requiresGrad, type Node } from '../autograd/engine.js';
import { Tensor } from '../tensor.js';
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
  if ((m as { graphOnly?: unknown }).graphOnly === true) return false;
  let proto = Object.getPrototypeOf(m);
  while (proto && !Object.prototype.hasOwnProperty.call(proto, 'forward')) proto = Object.getPrototypeOf(proto);
  if (!proto || !Object.prototype.hasOwnProperty.call(proto, 'backward')) return false;
  return m.children().every(hasOwnBackward);
}

/** The fields of m and of its sub-modules, each module's own shallow copy. */
function fieldsOf(m: Module, into = new Map<Module, Record<string, unknown>>()): Map<Module, Record<string, unknown>> {
  into.set(m, { ...m });
  for (const c of m.children()) fieldsOf(c, into);
  return into;
}

/** Installs the forward that records the module as one node (called by Module's constructor). */
export function wrapForward(m: Module): void {
  const own = (m as unknown as { forward: (...a: unknown[]) => Tensor }).forward;
  Object.defineProperty(m, 'forward', {
    configurable: true,
    writable: true,
    value: function forward(this: Module, ...args: unknown[]): Tensor {
      if (insideFused > 0 || !isGradEnabled() || args.length !== 1 || !(args[0] instanceof Tensor)) return own.apply(this, args);
      const x = args[0];
      const params = [...new Set(this.parameters())].filter((p) => p.requiresGrad); // a layer held twice: its parameters once
      if (!requiresGrad(x) && params.length === 0) return own.apply(this, args);
      if (!hasOwnBackward(this)) return own.apply(this, args);
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
        y = noGrad(() => own.apply(this, args));
      } finally {
        insideFused--;
        keepingPrevious = wasKeeping;
      }
      // what the forward changed is what its backward will read
      const after = fieldsOf(this);
      const changed: [Module, string, unknown][] = [];
      const saved: Tensor[] = [];
      for (const [mod, fields] of after) {
        const was = before.get(mod) ?? {};
        for (const [k, v] of Object.entries(fields)) {
          if (was[k] === v) continue;
          changed.push([mod, k, v]);
          // (a tensor the forward disposed itself, e.g. a sub-layer output it consumed, is not read by its backward)
          if (v instanceof Tensor && v !== y && !v.disposed) saved.push(v);
        }
      }
      if (y === x) return y; // an identity (Dropout in eval mode, Identity): nothing to record
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
          const mark = moduleBackwardBegins();
          const dx = ownBackward.call(self, g, wantInput);
          moduleBackwardDone(mark);
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
      if (node) pendingNode.set(this, node);
      return y;
    },
  });
  // Module.backward called by hand consumes the last forward's state, as the node's backward would: the node is done
  const ownBackward = (m as unknown as { backward: (dy: Tensor, inputGrad?: boolean) => Tensor }).backward;
  Object.defineProperty(m, 'backward', {
    configurable: true,
    writable: true,
    value: function backward(this: Module, dy: Tensor, inputGrad?: boolean): Tensor {
      pendingNode.get(this)?.release();
      pendingNode.delete(this);
      const mark = moduleBackwardBegins();
      const dx = ownBackward.call(this, dy, inputGrad);
      moduleBackwardDone(mark);
      return dx;
    },
  });
}
