// Module and Parameter: PyTorch's shape of a layer. A module owns its parameters (value + grad, with
// PyTorch's state-dict names), its buffers (running statistics) and what its backward needs from the last
// forward. backward(dy) returns dL/dx and ACCUMULATES dL/dparam into each param.grad.
import { backendByName, currentBackend, type Backend, type Buf } from '../backend.js';
import { describe, RetrogradError } from '../errors.js';
import { checkTensor, empty, keep, Tensor } from '../tensor.js';
import { Workspace } from '../workspace.js';
import { wrapForward } from './graph.js';
import { gradTargeted, gradWritten } from './grad-writes.js';
import { summary, type SummaryOptions } from './summary.js';
import type { BatchingOptions, BatchingStats, CompileOptions, EvaluateOptions, FitOptions, History, PredictOptions } from '../train/types.js';
import type { DataLoader } from '../data/loader.js';
import type { Compiled } from '../train/fit.js';

/**
 * The training loop behind Module's Keras-style methods. lib/train/ installs it when it loads (lib/index.ts loads
 * it), so that the house reads top to bottom: train uses nn and optim, nn imports nothing of train.
 */
export interface Trainer {
  compile(m: Module, options: CompileOptions): void;
  fit(m: Module, x: Tensor | DataLoader, y?: Tensor | FitOptions, options?: FitOptions): Promise<History>;
  evaluate(m: Module, x: Tensor | DataLoader, y?: Tensor | EvaluateOptions, options?: EvaluateOptions): Promise<Record<string, number>>;
  predict(m: Module, x: Tensor, options?: PredictOptions): Tensor;
  predictAsync(m: Module, x: Tensor, options?: PredictOptions): Promise<Tensor>;
  setBatching(m: Module, options: BatchingOptions): void;
  batchingStats(m: Module): BatchingStats;
}
let trainer: Trainer | undefined;
/** @internal lib/train/index.ts */
export function installTrainer(t: Trainer): void {
  trainer = t;
}
function training(): Trainer {
  if (!trainer) throw new RetrogradError('the training loop is not loaded: import retrograd (its index), not lib/nn/ alone', 'INTERNAL');
  return trainer;
}

/**
 * A trainable tensor, as torch.nn.Parameter: `value` (a leaf of the autograd graph) and `grad` (same shape, zeros
 * from the start), which backward accumulates into and optimizers read at each step before updating `value` in
 * place. Every tensor method works on a Parameter too, on its value (`p.matmul(x)`, `p.sum()`).
 */
export class Parameter {
  private _value!: Tensor;
  private _requiresGrad = true;
  private _grad: Tensor;
  /** zeroGrad() was called and nothing has written the gradient since: it reads as zeros. */
  private zeroPending = false;

  /** A parameter holding `t` (a float tensor, used as is, not copied), its gradient zeros on the same backend. */
  constructor(t: Tensor) {
    checkTensor('Parameter', t, 'value');
    if (t.dtype === 'int32') throw new TypeError('Parameter: value must be a float tensor, got int32');
    this.value = t;
    this._grad = keep(empty(t.backend, t.shape)); // the parameter's, even when it is made inside rg.tidy
  }

  /** The parameter's tensor: a leaf of the autograd graph whose gradient accumulates into this.grad. */
  get value(): Tensor {
    return this._value;
  }
  /** Replaces the tensor (the gradient is kept: it must keep the shape); the old value is released from the graph. */
  set value(t: Tensor) {
    if (this._value && this._value._param === this) {
      this._value._param = undefined;
      this._value._requiresGrad = false;
    }
    this._value = t;
    t._param = this;
    t._requiresGrad = this._requiresGrad;
  }

  /** false freezes the parameter: backward leaves its grad alone and optimizers skip it. */
  get requiresGrad(): boolean {
    return this._requiresGrad;
  }
  /** Freezes (false) or unfreezes (true) the parameter; anything but a boolean is a TypeError. */
  set requiresGrad(on: boolean) {
    if (typeof on !== 'boolean') throw new TypeError(`Parameter.requiresGrad: expected a boolean, got ${describe(on)}`);
    this._requiresGrad = on;
    this._value._requiresGrad = on;
  }

  /** @internal Autograd's accumulation into the gradient: a pending zero is overwritten, else added to (+=). */
  accumulate(g: Tensor): void {
    if (!this._requiresGrad) return;
    const k = this._grad.backend.k;
    if (g.backend !== this._grad.backend)
      throw new TypeError(`Parameter: a gradient on '${g.device}' for a parameter on '${this._grad.device}'`);
    if (this.zeroPending) {
      k.copy(this._grad.buf, g.buf, g.size);
      this.zeroPending = false;
    } else {
      k.axpy(this._grad.buf, g.buf, g.size, 1);
    }
    gradWritten(this);
  }

  /** dL/dvalue, accumulated by backward; zeros after zeroGrad(). */
  get grad(): Tensor {
    if (this.zeroPending) {
      this._grad.backend.k.fill(this._grad.buf, this._grad.size, 0);
      this.zeroPending = false;
    }
    return this._grad;
  }
  /** Replaces the gradient tensor (same shape and backend as the value). */
  set grad(t: Tensor) {
    this._grad = t;
    this.zeroPending = false;
  }

  /** The value's shape. */
  get shape(): readonly number[] {
    return this.value.shape;
  }

  /** @internal For autograd.grad through a built-in layer: the layer's backward accumulates into a fresh gradient (which
   * starts as a pending zero) instead of this one; the function returned gives the gradient written there (zeros if
   * none was) and puts this parameter's own gradient back as it was. */
  lendGrad(): () => Tensor {
    const grad = this._grad, pending = this.zeroPending;
    this._grad = empty(grad.backend, grad.shape);
    this.zeroPending = true;
    return () => {
      const lent = this.grad;
      this._grad = grad;
      this.zeroPending = pending;
      return lent;
    };
  }

  /** @internal true while the gradient is a zero that zeroGrad() deferred and nothing has written since (PyTorch's
   * grad of None): optimizers, clipping and fit's finite check leave it alone. */
  get gradPending(): boolean {
    return this.zeroPending;
  }

  /** Zeroes the gradient. The fill is deferred: a backward that comes first overwrites instead of adding,
   * so the training step spends no pass over memory on it. */
  zeroGrad(): void {
    this.zeroPending = true;
  }

  /** @internal Moves value and grad to another backend. */
  moveTo(b: Backend): void {
    if (this.value.backend === b) return;
    const value = this.value.toBackend(b);
    // A pending zero stays pending: "no gradient since zeroGrad()" must survive the move (optimizers skip it).
    const pending = this.zeroPending;
    let grad: Tensor;
    try {
      grad = pending ? empty(b, this._grad.shape) : this._grad.toBackend(b);
    } catch (e) {
      value.dispose();
      throw e;
    }
    this.value.dispose();
    this._grad.dispose();
    this.value = value;
    this._grad = grad;
    this.zeroPending = pending;
  }

  /** @internal The gradient buffers a backward kernel writes for `params` (null for absent or frozen ones) and
   * whether the kernel must add to them (false when every one of them is freshly zeroed). */
  static gradTargets(params: (Parameter | null)[]): { bufs: (Buf | null)[]; accumulate: boolean } {
    const live = params.filter((p): p is Parameter => p !== null && p.requiresGrad);
    const overwrite = live.length > 0 && live.every((p) => p.zeroPending);
    gradTargeted(live);
    if (overwrite) for (const p of live) p.zeroPending = false;
    // Mixed states: the getter fills the pending ones with zeros, and everything accumulates.
    const bufs = params.map((p) => (p && p.requiresGrad ? (overwrite ? p._grad.buf : p.grad.buf) : null));
    return { bufs, accumulate: !overwrite };
  }
}

/** Checks that `params` is an iterable of Parameters (`at` names it in messages) and returns them as an array. */
export function parameterList(where: string, params: unknown, at = 'params'): Parameter[] {
  if (params === null || typeof params !== 'object' || typeof (params as Iterable<unknown>)[Symbol.iterator] !== 'function')
    throw new TypeError(`${where}: ${at} must be an array of Parameters (model.parameters()), got ${describe(params)}`);
  return [...(params as Iterable<unknown>)].map((p, i) => {
    if (!(p instanceof Parameter)) throw new TypeError(`${where}: ${at}[${i}] is ${describe(p)}, expected a Parameter`);
    return p;
  });
}

/**
 * The base of every layer and model, as torch.nn.Module. A module owns its parameters (with PyTorch's state-dict
 * names), its buffers (running statistics) and its sub-modules; fields holding a Module or a Parameter register
 * themselves under the field's name. A subclass defines `forward`: written with tensor operations, its backward
 * comes from the graph (`loss.backward()`); the built-in layers also have a hand-written `backward(dy)` over fused
 * kernels, which returns dL/dx and accumulates (+=) into each parameter's grad. Training conveniences in Keras'
 * style: `compile`, `fit`, `evaluate`, `predict`.
 */
export abstract class Module {
  /** Training mode (the default) or eval mode: what Dropout and BatchNorm do. Set with train() and eval(). */
  training = true;
  /** Set by a callback to end `fit` after the current epoch. */
  stopTraining = false;
  /** @internal */
  compiled?: Compiled;
  /** @internal true while fit / evaluate / predictAsync run, to refuse overlapping calls. */
  busy = false;

  private fieldCount = -1;
  /** Fields registered by discovery, with what they held then. */
  private readonly discovered = new Map<string, Module | Parameter>();
  private readonly _parameters = new Map<string, Parameter>();
  private readonly _buffers = new Map<string, Tensor>();
  private readonly _modules = new Map<string, Module>();
  /** @internal Output buffers, reused inside the training loop. */
  protected readonly ws = new Workspace();

  /** A module with nothing registered yet: what a subclass assigns to its fields (modules, Parameters) registers itself. */
  constructor() {
    wrapForward(this);
  }

  /** The module's computation. A module written with tensor operations needs only this: its backward comes from
   * the graph (loss.backward()). It may take and return several tensors. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- PyTorch's freedom: any inputs, any outputs (a subclass types its own)
  abstract forward(...inputs: any[]): any;
  /**
   * dL/dx from dL/dy; accumulates parameter gradients. The built-in layers implement it with their fused kernels
   * (`inputGrad = false`, internal: the training loop's first layer, skips dL/dx). A module written with tensor
   * operations has no hand-written backward: build the loss from its output and call loss.backward().
   */
  backward(_dy: Tensor, _inputGrad?: boolean): Tensor {
    throw new TypeError(
      `${this.constructor.name}.backward: this module is written with tensor operations and has no hand-written backward; compute a loss from its output and call loss.backward() (fit does this by itself)`,
    );
  }

  /** Registers a sub-module under `name` (its parameters appear as name.…) and returns it:
   * `fc1 = this.add('fc1', new rg.Linear(4, 8))`. Sub-modules and Parameters assigned to fields register by
   * themselves under the field's name too. */
  add<M extends Module>(name: string, m: M): M {
    if (typeof name !== 'string' || name === '' || name.includes('.')) throw new TypeError(`${this.constructor.name}.add: name must be a non-empty string without dots, got ${describe(name)}`);
    if (!(m instanceof Module)) throw new TypeError(`${this.constructor.name}.add: expected a Module, got ${describe(m)}`);
    this._modules.set(name, m);
    return m;
  }
  /** Registers a Parameter under `name` and returns it. */
  addParameter(name: string, p: Parameter): Parameter {
    if (typeof name !== 'string' || name === '' || name.includes('.')) throw new TypeError(`${this.constructor.name}.addParameter: name must be a non-empty string without dots, got ${describe(name)}`);
    if (!(p instanceof Parameter)) throw new TypeError(`${this.constructor.name}.addParameter: expected a Parameter, got ${describe(p)}`);
    this._parameters.set(name, p);
    return p;
  }

  /** Fields holding a Module or a Parameter that were assigned rather than registered: registered under the field's
   * name (PyTorch's attribute registration), in the order they were assigned. */
  private discover(): void {
    // fields are rarely added after construction: look again only when their number changed (this runs at every
    // parameters() call, zeroGrad's included)
    const self = this as unknown as Record<string, unknown>;
    // a field that was registered by discovery and now holds something else (a new head, null) is registered anew
    let changed = false;
    for (const [key, was] of this.discovered) {
      if (self[key] === was) continue;
      this._modules.delete(key);
      this._parameters.delete(key);
      this.discovered.delete(key);
      changed = true;
    }
    const keys = Object.keys(this);
    if (!changed && keys.length === this.fieldCount) return;
    this.fieldCount = keys.length;
    for (const key of keys) {
      const v = self[key];
      if (key.startsWith('_')) continue;
      if (v instanceof Module && v !== this) {
        if (![...this._modules.values()].includes(v)) {
          this._modules.set(key, v);
          this.discovered.set(key, v);
        }
      } else if (v instanceof Parameter) {
        if (![...this._parameters.values()].includes(v)) {
          this._parameters.set(key, v);
          this.discovered.set(key, v);
        }
      }
    }
  }

  /** Registers `p` under `name` (a state-dict key) without add()'s checks: the built-in layers' way. */
  protected registerParameter(name: string, p: Parameter): Parameter {
    this._parameters.set(name, p);
    return p;
  }
  /** Registers a buffer: a tensor of the state dict that is not trained (running statistics), kept from rg.tidy and
   * moved by to(). */
  protected registerBuffer(name: string, t: Tensor): Tensor {
    this._buffers.set(name, keep(t)); // the module's, even when it is built inside rg.tidy
    return t;
  }
  /** Registers a sub-module under `name` without add()'s checks. */
  protected registerModule(name: string, m: Module): Module {
    this._modules.set(name, m);
    return m;
  }
  /** Removes the sub-module registered under `name`, if any. */
  protected unregisterModule(name: string): void {
    this._modules.delete(name);
  }
  /** @internal The buffer registered under `name` (the current tensor: a move to another backend replaces it). */
  protected getBuffer(name: string): Tensor {
    return this._buffers.get(name)!;
  }

  /** The direct sub-modules, in registration order (PyTorch's children()). */
  children(): Module[] {
    this.discover();
    return [...this._modules.values()];
  }

  /** This module and every module inside it, each with its name in the state dict ('' for this one; PyTorch's
   * named_modules, with dots): '2.attn', '2.attn.out_proj', … */
  namedModules(prefix = ''): [string, Module][] {
    this.discover();
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, m] of this._modules) out.push(...m.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  /** Every parameter with its state-dict name (`0.weight`, `attn.in_proj_bias`, …, after `prefix`): this module's
   * own first, then each sub-module's. */
  namedParameters(prefix = ''): [string, Parameter][] {
    this.discover();
    const out: [string, Parameter][] = [];
    for (const [n, p] of this._parameters) out.push([prefix + n, p]);
    for (const [n, m] of this._modules) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }
  /** Every parameter of this module and its sub-modules, in namedParameters' order (what an optimizer takes). */
  parameters(): Parameter[] {
    const out: Parameter[] = [];
    this.collectParameters(out);
    return out;
  }
  /** Appends the parameters in namedParameters' order, without making their names (a forward asks at every call). */
  private collectParameters(out: Parameter[]): void {
    this.discover();
    for (const p of this._parameters.values()) out.push(p);
    for (const m of this._modules.values()) m.collectParameters(out);
  }
  /** The first of parameters(), found without listing them. */
  private firstParameter(): Parameter | undefined {
    this.discover();
    for (const p of this._parameters.values()) return p;
    for (const m of this._modules.values()) {
      const p = m.firstParameter();
      if (p) return p;
    }
    return undefined;
  }
  /** Every buffer (`running_mean`, `running_var`, `num_batches_tracked`, …) with its state-dict name. */
  namedBuffers(prefix = ''): [string, Tensor][] {
    this.discover();
    const out: [string, Tensor][] = [];
    for (const [n, t] of this._buffers) out.push([prefix + n, t]);
    for (const [n, m] of this._modules) out.push(...m.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  /** Parameters and buffers by PyTorch state-dict name (the live tensors), in PyTorch's order: each module's own
   * parameters, then its buffers, then its children's. */
  stateDict(): Record<string, Tensor> {
    const sd: Record<string, Tensor> = {};
    const visit = (m: Module, prefix: string) => {
      m.discover();
      for (const [n, p] of m._parameters) sd[prefix + n] = p.value;
      for (const [n, t] of m._buffers) sd[prefix + n] = t;
      for (const [n, c] of m._modules) visit(c, `${prefix}${n}.`);
    };
    visit(this, '');
    return sd;
  }

  /** Loads every parameter and buffer; checks every key, shape, dtype and value first, and loads nothing on a mismatch. */
  loadStateDict(sd: Record<string, Tensor | Float32Array | Int32Array>): void {
    const where = `${this.constructor.name}.loadStateDict`;
    if (sd === null || typeof sd !== 'object') throw new TypeError(`${where}: expected an object of tensors, got ${describe(sd)}`);
    const own = this.stateDict();
    for (const key of Object.keys(own)) if (!Object.hasOwn(sd, key)) throw new RangeError(`${where}: missing key '${key}'`);
    // The assignments run once every value has passed; a tensor on another backend is read here already, so that
    // a failing read stops the load before anything is assigned.
    const assign: (() => void)[] = [];
    for (const [key, v] of Object.entries(sd)) {
      const target = Object.hasOwn(own, key) ? own[key] : undefined; // not a name Object.prototype has
      if (!target) throw new RangeError(`${where}: unknown key '${key}'; expected keys: ${Object.keys(own).join(', ')}`);
      if (target.disposed) throw new RetrogradError(`${where}: the module's own '${key}' has been disposed`, 'DISPOSED');
      if (v instanceof Tensor) {
        if (v.disposed) throw new RetrogradError(`${where}: '${key}' has been disposed`, 'DISPOSED');
        if (v.shape.length !== target.shape.length || v.shape.some((d, i) => d !== target.shape[i]))
          throw new RangeError(`${where}: '${key}' has shape [${v.shape.join(', ')}], expected [${target.shape.join(', ')}]`);
        if ((v.dtype === 'int32') !== (target.dtype === 'int32')) throw new TypeError(`${where}: '${key}' has dtype ${v.dtype}, expected ${target.dtype}`);
        if (v.backend === target.backend) assign.push(() => target.assign(v));
        else {
          const data = v.backend.read(v.buf);
          // as Tensor.assign across backends: the data as read (float64 stays float64), the int range along
          assign.push(() => {
            target.backend.write(target.buf, data);
            target.intRange = v.intRange;
          });
        }
      } else if (v instanceof Float32Array || v instanceof Int32Array) {
        // the host copies a state dict's toArray() gives: Float32Array for float tensors, Int32Array for int32 buffers
        if ((v instanceof Int32Array) !== (target.dtype === 'int32'))
          throw new TypeError(`${where}: '${key}' is ${v.constructor.name}, expected ${target.dtype === 'int32' ? 'Int32Array' : 'Float32Array'} for ${target.dtype === 'int32' ? 'an' : 'a'} ${target.dtype} tensor`);
        if (v.length !== target.size) throw new RangeError(`${where}: '${key}' has ${v.length} values, expected ${target.size} (shape [${target.shape.join(', ')}])`);
        assign.push(() => target.assign(v));
      } else {
        throw new TypeError(`${where}: '${key}' must be a Tensor, a Float32Array or (int32 buffers) an Int32Array, got ${describe(v)}`);
      }
    }
    for (const f of assign) f();
  }

  /** Sets training mode (or, with false, eval mode) on this module and every sub-module; returns this. */
  train(mode = true): this {
    this.discover();
    this.training = mode;
    for (const m of this._modules.values()) m.train(mode);
    return this;
  }
  /** Eval mode: Dropout passes its input through, BatchNorm uses its running statistics. Returns this. */
  eval(): this {
    return this.train(false);
  }

  /** Zeroes every parameter's gradient (deferred: see Parameter.zeroGrad). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /** The backend the module's parameters live on (the current backend for a module without any). */
  get backend(): Backend {
    const p = this.firstParameter();
    return p ? p.value.backend : currentBackend();
  }

  /** Moves parameters and buffers to another backend ('cpu', 'reference', 'cuda'). */
  to(backendName: string): this {
    return this.moveTo(backendByName(backendName));
  }
  /** @internal */
  moveTo(b: Backend, moved = this.parameters().some((p) => p.value.backend !== b) || this.namedBuffers().some(([, t]) => t.backend !== b)): this {
    this.discover();
    for (const p of this._parameters.values()) p.moveTo(b);
    for (const [n, t] of this._buffers) {
      if (t.backend !== b) {
        this._buffers.set(n, t.toBackend(b));
        t.dispose();
      }
    }
    // (a move of a model that is already there keeps its buffers, which a pending backward may still read)
    if (moved) this.ws.clear();
    this.onMoved();
    for (const m of this._modules.values()) m.moveTo(b, moved);
    return this;
  }
  /** @internal Runs fn with every parameter and buffer replaced by a copy on backend b (grads zeroed), then
   * puts the original tensors back untouched. Used by gradient checks in float64. */
  withStateOn<T>(b: Backend, fn: () => T): T {
    const saved: [Parameter, Tensor, Tensor][] = [];
    const savedBuffers: [Module, string, Tensor][] = [];
    const visit = (m: Module) => {
      m.discover();
      for (const p of m._parameters.values()) {
        saved.push([p, p.value, p.grad]);
        p.value = p.value.toBackend(b);
        p.grad = empty(b, p.value.shape);
      }
      for (const [n, t] of m._buffers) {
        savedBuffers.push([m, n, t]);
        m._buffers.set(n, t.toBackend(b));
      }
      for (const c of m._modules.values()) visit(c);
    };
    visit(this);
    try {
      return fn();
    } finally {
      for (const [p, value, grad] of saved) {
        p.value.dispose();
        p.grad.dispose(); // the float64 copy
        p.value = value;
        p.grad = grad;
      }
      for (const [m, n, t] of savedBuffers) {
        m._buffers.get(n)?.dispose();
        m._buffers.set(n, t);
      }
    }
  }

  private reusingOutputs = false;
  /**
   * Hand-written training loops: with `on`, every forward and backward of this module (and its children) writes into
   * the buffers it returned last time for the same shapes, as inside `fit`, so that a steady-state step allocates
   * nothing. A step's outputs are then valid until the next step overwrites them (keep a copy with `.to()` or
   * `toArray()`). `reuseOutputs(false)` goes back to fresh tensors.
   */
  reuseOutputs(on = true): this {
    if (typeof on !== 'boolean') throw new TypeError(`reuseOutputs: expected a boolean, got ${describe(on)}`);
    if (on !== this.reusingOutputs) this.reuseBuffers(on ? 1 : -1);
    this.reusingOutputs = on;
    return this;
  }

  /** @internal Switches output-buffer reuse on (+1) or off (−1) for this module and its children. */
  reuseBuffers(delta: 1 | -1): void {
    this.discover();
    this.ws.reuse += delta;
    for (const m of this._modules.values()) m.reuseBuffers(delta);
  }

  /** @internal Hook for modules that cache buffer references. */
  protected onMoved(): void {}

  /** Checks that x is a tensor on the module's backend (for a layer with state); `label` names the layer. */
  protected checkInput(x: unknown, label: string): Tensor {
    const t = checkTensor(label, x);
    // A layer without parameters or buffers follows its input to whatever backend it is on.
    if (this._parameters.size === 0 && this._buffers.size === 0) return t;
    // (its own first parameter when it has one: the backend getter looks for new fields first, at every call)
    const own: Parameter | undefined = this._parameters.values().next().value;
    const b = own ? own.value.backend : this.backend;
    if (t.backend !== b)
      throw new TypeError(`${label}: input is on '${t.device}' but the layer is on '${b.name}'; move one of them with .to()`);
    return t;
  }

  /**
   * Prints (and returns) the model's layers, their parameter counts and the totals, as Keras's model.summary() does;
   * with { inputShape } (one input, without the batch) or { input } the model runs once, in eval mode without
   * gradients, and each layer's output shape is shown too.
   */
  summary(options: SummaryOptions = {}): string {
    return summary(this, options);
  }

  // ---- Keras-style training conveniences (lib/train/) ----
  /** Sets the optimizer, the loss and the metrics that fit and evaluate use (Keras' compile). */
  compile(options: CompileOptions): void {
    training().compile(this, options);
  }
  /** fit(x, y, options) with tensors, or fit(loader, options) with a DataLoader. */
  fit(x: Tensor | DataLoader, y?: Tensor | FitOptions, options?: FitOptions): Promise<History> {
    return training().fit(this, x, y, options);
  }
  /** evaluate(x, y, options) with tensors, or evaluate(loader) with a DataLoader. */
  evaluate(x: Tensor | DataLoader, y?: Tensor | EvaluateOptions, options?: EvaluateOptions): Promise<Record<string, number>> {
    return training().evaluate(this, x, y, options);
  }
  /** The model's output for x in eval mode without gradients, in batches of options.batchSize (Keras' predict). */
  predict(x: Tensor, options?: PredictOptions): Tensor {
    return training().predict(this, x, options);
  }
  /** predict without blocking the event loop (off the main thread on the native backends); concurrent calls are
   * coalesced into shared batches (setBatching). */
  predictAsync(x: Tensor, options?: PredictOptions): Promise<Tensor> {
    return training().predictAsync(this, x, options);
  }
  /** How concurrent predictAsync calls on this model are coalesced into shared batches ({ maxBatch, maxDelayMs }). */
  setBatching(options: BatchingOptions): this {
    training().setBatching(this, options);
    return this;
  }
  /** Batches formed from predictAsync calls so far: { batches, requests, rows }. */
  batchingStats(): BatchingStats {
    return training().batchingStats(this);
  }
}
