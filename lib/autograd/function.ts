// Custom differentiable functions, as PyTorch's torch.autograd.Function: a forward and a backward written with
// tensor operations. forward runs without recording; its outputs get one node whose backward is the user's.
//
//   class Cube extends rg.autograd.Function {
//     static forward(ctx, x) { ctx.saveForBackward(x); return x.pow(3); }
//     static backward(ctx, g) { const [x] = ctx.saved; return g.mul(x.square().mul(3)); }
//   }
//   const y = Cube.apply(x);
import { describe, RetrogradError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { EW, ewKernel, toTensor } from './core.js';
import { isGradEnabled, noGrad, record } from './engine.js';
import { zerosLike } from './creation.js';

/** What forward hands to backward. */
export class FunctionContext {
  private _saved: Tensor[] = [];
  private savedNow = false;
  /** Tensors backward needs (checked for in-place changes before backward runs). */
  saveForBackward(...tensors: Tensor[]): void {
    tensors.forEach((t, i) => {
      if (!(t instanceof Tensor)) throw new TypeError(`saveForBackward: argument ${i} must be a Tensor, got ${describe(t)}`);
    });
    this._saved = tensors;
    this.savedNow = true;
  }
  /** The tensors given to saveForBackward (in backward). */
  get saved(): Tensor[] {
    return this._saved;
  }
  /** @internal */
  get savedList(): Tensor[] {
    return this.savedNow ? this._saved : [];
  }
  /** Anything else forward wants to keep for backward. */
  [key: string]: unknown;
}

type Forward = (ctx: FunctionContext, ...args: unknown[]) => Tensor | Tensor[];
type Backward = (ctx: FunctionContext, ...grads: Tensor[]) => (Tensor | null | undefined) | (Tensor | null | undefined)[];

/**
 * The base of custom differentiable functions, as torch.autograd.Function: a subclass defines static
 * `forward(ctx, ...inputs)` (run without recording) and static `backward(ctx, ...outputGrads)` (one gradient per
 * tensor input, or null), and is called with `Sub.apply(...inputs)`. Gradients a backward returns are checked
 * against the inputs' shapes.
 */
export class Function {
  /** Subclasses define static forward(ctx, ...inputs) and static backward(ctx, ...outputGrads). */
  static forward(_ctx: FunctionContext, ..._args: unknown[]): Tensor | Tensor[] {
    throw new TypeError(`${this.name}.forward is not defined: a Function subclass defines static forward(ctx, ...inputs)`);
  }
  /** The gradients of the tensor inputs, in order, from those of the outputs (zeros for outputs that got none). */
  static backward(_ctx: FunctionContext, ..._grads: Tensor[]): (Tensor | null | undefined) | (Tensor | null | undefined)[] {
    throw new TypeError(`${this.name}.backward is not defined: a Function subclass defines static backward(ctx, ...outputGrads)`);
  }

  /** Runs forward on the arguments (tensors, Parameters, anything else passed through) and records backward. */
  static apply(...args: unknown[]): Tensor | Tensor[] {
    const name = this.name || 'Function';
    const forward = this.forward as Forward, backward = this.backward as Backward;
    const ctx = new FunctionContext();
    const inputs: Tensor[] = [];
    const argsIn = args.map((a) => {
      if (a instanceof Tensor || (a !== null && typeof a === 'object' && 'value' in a && (a as { value: unknown }).value instanceof Tensor)) {
        const t = toTensor(name, a);
        inputs.push(t);
        return t;
      }
      return a;
    });
    const result = noGrad(() => forward.call(this, ctx, ...argsIn));
    const outputs = Array.isArray(result) ? result : [result];
    outputs.forEach((o, i) => {
      if (!(o instanceof Tensor)) throw new TypeError(`${name}.forward must return a Tensor or an array of Tensors; output ${i} is ${describe(o)}`);
      if (inputs.includes(o)) throw new RetrogradError(`${name}.forward returned one of its inputs as output ${i}; return a new tensor (e.g. x.mul(1))`, 'INVALID_ARGUMENT');
    });
    if (isGradEnabled()) {
      record(name, inputs, outputs, [...ctx.savedList], (grads) => {
        // outputs that got no gradient take zeros, as in PyTorch
        const gs = grads.map((g, i) => g ?? zerosLike(outputs[i]));
        const r = noGrad(() => backward.call(this, ctx, ...gs));
        const list = Array.isArray(r) ? r : [r];
        if (list.length !== inputs.length)
          throw new RetrogradError(`${name}.backward returned ${list.length} gradient${list.length === 1 ? '' : 's'}, expected ${inputs.length} (one per tensor input)`, 'INVALID_ARGUMENT');
        return list.map((g, i) => {
          if (g == null) return null;
          if (!(g instanceof Tensor)) throw new TypeError(`${name}.backward: gradient ${i} must be a Tensor or null, got ${describe(g)}`);
          const x = inputs[i];
          if (g.shape.length !== x.shape.length || g.shape.some((d, k) => d !== x.shape[k]))
            throw new RangeError(`${name}.backward: gradient ${i} has shape [${g.shape.join(', ')}], the input [${x.shape.join(', ')}]`);
          // the engine frees the gradients it passes on: a tensor the caller may still hold is copied first
          const held = [...inputs, ...outputs, ...ctx.saved].some((t) => t.viewBase === g.viewBase);
          return held ? ewKernel(name, EW.identity, [g]) : g;
        });
      });
    }
    return result;
  }
}
