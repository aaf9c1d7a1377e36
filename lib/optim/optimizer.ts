// Optimizer: keeps its state (momentum, moments) as tensors on the parameters' backend and calls one update
// kernel per parameter at each step(). Parameters with requiresGrad = false are skipped.
import { checkNumber, checkOptions, describe } from '../errors.js';
import { Parameter, parameterList } from '../nn/module.js';
import { empty, fromHost, type Tensor } from '../tensor.js';

export type ParamState = Record<string, Tensor | number>;

export interface OptimizerStateDict {
  state: Record<number, Record<string, Float32Array | number>>;
  param_groups: Record<string, unknown>[];
}

/** A parameter group: its parameters and the hyperparameters that differ from the optimizer's (PyTorch's param_groups). */
export type ParamGroup = { params: Iterable<Parameter> } & Record<string, unknown>;

export interface Group<Options> {
  params: Parameter[];
  options: Options;
  /** The learning rate before any scheduler changed it (PyTorch's group['initial_lr']). */
  initialLr?: number;
}

function isGroup(v: unknown): v is ParamGroup {
  return v !== null && typeof v === 'object' && !(v instanceof Parameter) && 'params' in (v as object);
}

export abstract class Optimizer<Options extends { lr: number }> {
  /** Every parameter, group by group (the indices of stateDict). */
  readonly params: readonly Parameter[];
  /** The parameter groups, each with its own hyperparameters. */
  readonly groups: readonly Group<Options>[];
  protected readonly state = new Map<Parameter, ParamState>();
  protected abstract readonly label: string;
  /** The hyperparameters of the group being updated (set by step()). */
  private active?: Options;

  /**
   * `params`: parameters (model.parameters()), or parameter groups `[{ params, weightDecay: 0 }, { params }]` whose
   * own keys override `options` for their parameters, as PyTorch's per-parameter options.
   */
  constructor(where: string, params: Iterable<Parameter> | ParamGroup[], options: Options) {
    if (params === null || typeof params !== 'object' || typeof (params as Iterable<unknown>)[Symbol.iterator] !== 'function')
      throw new TypeError(`${where}: params must be an array of Parameters (model.parameters()) or of parameter groups, got ${describe(params)}`);
    const list = [...(params as Iterable<unknown>)];
    let groups: Group<Options>[];
    if (list.length > 0 && list.every(isGroup)) {
      groups = (list as ParamGroup[]).map((g, gi) => {
        const { params: gp, ...overrides } = g;
        return { params: parameterList(where, gp, `group ${gi} params`), options: { ...options, ...checkOverrides(where, gi, overrides, options) } };
      });
    } else {
      groups = [{ params: parameterList(where, list), options }];
    }
    const all = groups.flatMap((g) => g.params);
    if (all.length === 0) throw new RangeError(`${where}: got an empty parameter list`);
    if (new Set(all).size !== all.length) throw new RangeError(`${where}: a parameter appears in more than one group`);
    this.params = all;
    this.groups = groups;
  }

  /** The hyperparameters of the first group (the only one, unless groups were given). */
  get options(): Options {
    return this.groups[0].options;
  }
  /** The hyperparameters of the group whose parameters update() is updating. */
  protected get activeOptions(): Options {
    return this.active ?? this.groups[0].options;
  }

  /** The first group's learning rate; setting it sets every group's. */
  get lr(): number {
    return this.groups[0].options.lr;
  }
  set lr(v: number) {
    for (const g of this.groups) g.options.lr = v;
  }
  /** The first group's initial learning rate (set by the first scheduler). */
  get initialLr(): number | undefined {
    return this.groups[0].initialLr;
  }

  step(): void {
    for (const g of this.groups) {
      this.active = g.options;
      try {
        for (const p of g.params) {
          if (!p.requiresGrad) continue;
          let s = this.state.get(p);
          if (!s) {
            s = {};
            this.state.set(p, s);
          }
          this.update(p, s);
        }
      } finally {
        this.active = undefined;
      }
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
    let index = 0;
    const param_groups = this.groups.map((g) => {
      const group: Record<string, unknown> = { ...g.options, params: g.params.map(() => index++) };
      if (g.initialLr !== undefined) group.initial_lr = g.initialLr;
      return group;
    });
    return { state, param_groups };
  }

  loadStateDict(sd: OptimizerStateDict): void {
    const where = `${this.label}.loadStateDict`;
    if (!sd || typeof sd !== 'object' || !sd.state || !Array.isArray(sd.param_groups) || sd.param_groups.length !== this.groups.length)
      throw new TypeError(`${where}: expected { state, param_groups: [${this.groups.length} group(s)] }, got ${describe(sd)}`);
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
    const updates = sd.param_groups.map((pg, gi) => {
      const { params: _params, initial_lr: initialLr, ...group } = pg;
      for (const key of Object.keys(group))
        if (!(key in this.groups[gi].options)) throw new RangeError(`${where}: unknown hyperparameter '${key}' for ${this.label}`);
      return { group, initialLr };
    });
    updates.forEach(({ group, initialLr }, gi) => {
      Object.assign(this.groups[gi].options, group);
      if (typeof initialLr === 'number') this.groups[gi].initialLr = initialLr;
    });
    this.state.clear();
    for (const [p, s] of loaded) this.state.set(p, s);
  }
}

/** A group's own hyperparameters: known keys only, numbers finite and ≥ 0, betas in [0, 1), flags boolean. */
function checkOverrides<O extends object>(where: string, gi: number, overrides: Record<string, unknown>, defaults: O): Partial<O> {
  const valid = Object.keys(defaults);
  checkOptions(`${where} (group ${gi})`, overrides, valid);
  for (const [key, v] of Object.entries(overrides)) {
    const d = (defaults as Record<string, unknown>)[key];
    if (typeof d === 'number') checkNumber(`${where} (group ${gi})`, key, v, { min: 0 });
    else if (typeof d === 'boolean' && typeof v !== 'boolean') throw new TypeError(`${where} (group ${gi}): ${key} must be a boolean, got ${describe(v)}`);
    else if (Array.isArray(d)) {
      if (!Array.isArray(v) || v.length !== d.length) throw new TypeError(`${where} (group ${gi}): ${key} must be a pair, got ${describe(v)}`);
      v.forEach((b, i) => checkNumber(`${where} (group ${gi})`, `${key}[${i}]`, b, { min: 0, max: 1, maxExclusive: true }));
    }
  }
  return overrides as Partial<O>;
}
