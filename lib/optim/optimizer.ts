// Optimizer: keeps its state (momentum, moments) as tensors on the parameters' backend and calls one update
// kernel per parameter at each step(). Parameters with requiresGrad = false are skipped.
import { describe } from '../errors.js';
import { Parameter } from '../nn/module.js';
import { empty, fromHost, type Tensor } from '../tensor.js';

export type ParamState = Record<string, Tensor | number>;

export interface OptimizerStateDict {
  state: Record<number, Record<string, Float32Array | number>>;
  param_groups: Record<string, unknown>[];
}

export abstract class Optimizer<Options extends { lr: number }> {
  readonly params: readonly Parameter[];
  /** The hyperparameters of the (single) parameter group; schedulers change `lr` here. */
  readonly options: Options;
  protected readonly state = new Map<Parameter, ParamState>();
  /** The learning rate before any scheduler changed it (PyTorch's group['initial_lr']); set by the first scheduler. */
  initialLr?: number;
  protected abstract readonly label: string;

  constructor(where: string, params: Iterable<Parameter>, options: Options) {
    if (params === null || typeof params !== 'object' || typeof (params as Iterable<Parameter>)[Symbol.iterator] !== 'function')
      throw new TypeError(`${where}: params must be an array of Parameters (model.parameters()), got ${describe(params)}`);
    const list = [...params];
    list.forEach((p, i) => {
      if (!(p instanceof Parameter)) throw new TypeError(`${where}: params[${i}] is ${describe(p)}, expected a Parameter`);
    });
    if (list.length === 0) throw new RangeError(`${where}: got an empty parameter list`);
    this.params = list;
    this.options = options;
  }

  get lr(): number {
    return this.options.lr;
  }
  set lr(v: number) {
    this.options.lr = v;
  }

  step(): void {
    for (const p of this.params) {
      if (!p.requiresGrad) continue;
      let s = this.state.get(p);
      if (!s) {
        s = {};
        this.state.set(p, s);
      }
      this.update(p, s);
    }
  }

  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }

  /** Updates one parameter in place from its grad. */
  protected abstract update(p: Parameter, state: ParamState): void;

  /** A state tensor shaped like p, created zero-filled on first use. */
  protected buffer(p: Parameter, s: ParamState, name: string): Tensor {
    let t = s[name] as Tensor | undefined;
    if (!t) {
      t = empty(p.value.backend, p.value.shape);
      s[name] = t;
    }
    return t;
  }

  /** PyTorch's layout: per-parameter state by index, and the hyperparameters with the parameter indices. */
  stateDict(): OptimizerStateDict {
    const state: OptimizerStateDict['state'] = {};
    this.params.forEach((p, i) => {
      const s = this.state.get(p);
      if (!s) return;
      state[i] = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, typeof v === 'number' ? v : (v.toArray() as Float32Array)]));
    });
    const group: Record<string, unknown> = { ...this.options, params: this.params.map((_, i) => i) };
    if (this.initialLr !== undefined) group.initial_lr = this.initialLr;
    return { state, param_groups: [group] };
  }

  loadStateDict(sd: OptimizerStateDict): void {
    const where = `${this.label}.loadStateDict`;
    if (!sd || typeof sd !== 'object' || !sd.state || !Array.isArray(sd.param_groups) || sd.param_groups.length !== 1)
      throw new TypeError(`${where}: expected { state, param_groups: [one group] }, got ${describe(sd)}`);
    const loaded = new Map<Parameter, ParamState>();
    for (const [key, entry] of Object.entries(sd.state)) {
      const i = Number(key);
      const p = this.params[i];
      if (!p) throw new RangeError(`${where}: state for parameter ${key}, but the optimizer has ${this.params.length}`);
      const s: ParamState = {};
      for (const [name, v] of Object.entries(entry)) {
        if (typeof v === 'number') s[name] = v;
        else if (v instanceof Float32Array && v.length === p.value.size) s[name] = fromHost(p.value.backend, v, p.value.shape);
        else throw new RangeError(`${where}: state '${name}' of parameter ${key} must hold ${p.value.size} float32 values`);
      }
      loaded.set(p, s);
    }
    const { params: _params, initial_lr: initialLr, ...group } = sd.param_groups[0];
    for (const key of Object.keys(group))
      if (!(key in this.options)) throw new RangeError(`${where}: unknown hyperparameter '${key}' for ${this.label}`);
    Object.assign(this.options, group);
    if (typeof initialLr === 'number') this.initialLr = initialLr;
    this.state.clear();
    for (const [p, s] of loaded) this.state.set(p, s);
  }
}
