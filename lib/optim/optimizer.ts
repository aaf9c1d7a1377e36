// Optimizer: keeps its state (momentum, moments) as tensors on the parameters' backend and calls one update
// kernel per parameter at each step(). Parameters with requiresGrad = false are skipped, and so are those whose
// gradient nothing has written since zeroGrad() (PyTorch 2 skips a grad of None). step() and loadStateDict()
// check everything before they change anything.
import { checkNumber, checkOptions, describe, RetrogradError } from '../errors.js';
import { Parameter, parameterList } from '../nn/module.js';
import { empty, fromHost, keep, Tensor } from '../tensor.js';

/** One parameter's optimizer state: buffers shaped like it (moments, momentum) and numbers (the step count). */
export type ParamState = Record<string, Tensor | number>;

type NumberRange = { min?: number; max?: number; integer?: boolean };

/** The per-parameter state an optimizer keeps: buffers shaped like the parameter, and numbers with their range. */
export interface StateSpec {
  readonly buffers: readonly string[];
  readonly numbers: Readonly<Record<string, NumberRange>>;
}
/** Checks a complete set of hyperparameters (`where` names the caller in messages) and returns them resolved. */
export type OptionsCheck<Options> = (where: string, options: Record<string, unknown>) => Options;

/** The step count every optimizer keeps. */
export const STEP: NumberRange = { min: 0, integer: true };

/** True while p's gradient is a zero that zeroGrad() deferred and nothing has written since: PyTorch's grad of None. */
export function gradPending(p: Parameter): boolean {
  return p.gradPending;
}

/** An optimizer's state in PyTorch's layout, as stateDict() gives it and loadStateDict() takes it. */
export interface OptimizerStateDict {
  /** Per-parameter state by the parameter's index (in groups order): buffers as Float32Array copies, and numbers. */
  state: Record<number, Record<string, Float32Array | number>>;
  /** Each group's hyperparameters, with `params` (the indices of its parameters) and `initial_lr` once a scheduler set it. */
  param_groups: Record<string, unknown>[];
}

/** A parameter group: its parameters and the hyperparameters that differ from the optimizer's (PyTorch's param_groups). */
export type ParamGroup = {
  /** The group's parameters. */
  params: Iterable<Parameter>;
} & Record<string, unknown>;

/** A parameter group as the optimizer holds it: its parameters and its complete hyperparameters. */
export interface Group<Options> {
  /** The group's parameters. */
  params: Parameter[];
  /** Its hyperparameters, the optimizer's defaults with the group's own overrides (a scheduler changes lr here). */
  options: Options;
  /** The learning rate before any scheduler changed it (PyTorch's group['initial_lr']). */
  initialLr?: number;
}

function isGroup(v: unknown): v is ParamGroup {
  return v !== null && typeof v === 'object' && !(v instanceof Parameter) && 'params' in (v as object);
}

/**
 * The base of the optimizers, as torch.optim.Optimizer: holds the parameters in groups with their hyperparameters
 * and, per parameter, its state (moments, momentum) as tensors on the parameter's backend. step() calls one update
 * kernel per parameter, with PyTorch's formulas; parameters with requiresGrad false, and those whose gradient nothing
 * has written since zeroGrad() (PyTorch's grad of None), are skipped. step() and loadStateDict() check everything
 * before they change anything.
 */
export abstract class Optimizer<Options extends {
  /** The learning rate. */
  lr: number;
}> {
  /** Every parameter, group by group (the indices of stateDict). */
  readonly params: readonly Parameter[];
  /** The parameter groups, each with its own hyperparameters. */
  readonly groups: readonly Group<Options>[];
  /** @internal Each parameter's state. */
  protected readonly state = new Map<Parameter, ParamState>();
  /** @internal The optimizer's name in messages. */
  protected abstract readonly label: string;
  /** @internal What loadStateDict accepts as per-parameter state. */
  protected abstract readonly stateSpec: StateSpec;
  /** The constructor's check of a complete set of hyperparameters, for groups, loaded states and each step. */
  private readonly resolveOptions: OptionsCheck<Options>;
  /** The hyperparameters of the group being updated (set by step()). */
  private active?: Options;

  /**
   * `params`: parameters (model.parameters()), or parameter groups `[{ params, weightDecay: 0 }, { params }]` whose
   * own keys override `options` for their parameters, as PyTorch's per-parameter options. `resolve`: the subclass's
   * check of a complete set of hyperparameters (the one that gave `options`).
   */
  constructor(where: string, params: Iterable<Parameter> | ParamGroup[], options: Options, resolve: OptionsCheck<Options>) {
    if (params === null || typeof params !== 'object' || typeof (params as Iterable<unknown>)[Symbol.iterator] !== 'function')
      throw new TypeError(`${where}: params must be an array of Parameters (model.parameters()) or of parameter groups, got ${describe(params)}`);
    const list = [...(params as Iterable<unknown>)];
    let groups: Group<Options>[];
    if (list.length > 0 && list.every(isGroup)) {
      groups = (list as ParamGroup[]).map((g, gi) => {
        const { params: gp, ...overrides } = g;
        const merged = { ...options, ...checkOverrides(where, gi, overrides, options) };
        // the group as a whole too (SGD's nesterov needs the group's momentum): step() checks it so at every call
        return { params: parameterList(where, gp, `group ${gi} params`), options: resolve(`${where} (group ${gi})`, merged) };
      });
    } else {
      groups = [{ params: parameterList(where, list), options }];
    }
    const all = groups.flatMap((g) => g.params);
    if (all.length === 0) throw new RangeError(`${where}: got an empty parameter list`);
    if (new Set(all).size !== all.length) throw new RangeError(`${where}: a parameter appears in more than one group`);
    this.params = all;
    this.groups = groups;
    this.resolveOptions = resolve;
  }

  /** The hyperparameters of the first group (the only one, unless groups were given). */
  get options(): Options {
    return this.groups[0].options;
  }
  /** @internal The hyperparameters of the group whose parameters update() is updating. */
  protected get activeOptions(): Options {
    return this.active ?? this.groups[0].options;
  }

  /** The first group's learning rate; setting it sets every group's. */
  get lr(): number {
    return this.groups[0].options.lr;
  }
  /** Sets every group's learning rate to v. */
  set lr(v: number) {
    for (const g of this.groups) g.options.lr = v;
  }
  /** The first group's initial learning rate (set by the first scheduler). */
  get initialLr(): number | undefined {
    return this.groups[0].initialLr;
  }

  /** Updates every parameter that has a gradient, in place, from its grad (one kernel per parameter). */
  step(): void {
    const where = `${this.label}.step`;
    // Everything is checked first: a step that throws leaves every parameter, step count and buffer as it was.
    const todo: [Parameter, Options][] = [];
    this.groups.forEach((g, gi) => {
      this.resolveOptions(`${where} (group ${gi})`, g.options);
      for (const p of g.params) {
        if (!p.requiresGrad || gradPending(p)) continue;
        this.checkParameter(where, p);
        todo.push([p, g.options]);
      }
    });
    for (const [p] of todo) this.follow(p);
    try {
      for (const [p, options] of todo) {
        this.active = options;
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

  /** Throws unless p, its gradient and its state can be updated. */
  private checkParameter(where: string, p: Parameter): void {
    const at = () => `${where}: parameter ${this.params.indexOf(p)}`; // only on failure: indexOf is a scan
    const of = () => `${where}: the gradient of parameter ${this.params.indexOf(p)}`;
    if (p.value.disposed) throw new RetrogradError(`${at()} (shape [${p.shape.join(', ')}]) has been disposed`, 'DISPOSED');
    const g: unknown = p.grad;
    if (!(g instanceof Tensor)) throw new TypeError(`${of()} must be a Tensor, got ${describe(g)}`);
    if (g.disposed) throw new RetrogradError(`${of()} (shape [${g.shape.join(', ')}]) has been disposed`, 'DISPOSED');
    if (g.backend !== p.value.backend) throw new TypeError(`${of()} is on '${g.device}' but the parameter is on '${p.value.device}'`);
    if (g.shape.length !== p.shape.length || g.shape.some((d, k) => d !== p.shape[k]))
      throw new RangeError(`${of()} has shape [${g.shape.join(', ')}], expected [${p.shape.join(', ')}]`);
    if (g.dtype !== p.value.dtype) throw new TypeError(`${of()} has dtype ${g.dtype}, expected ${p.value.dtype}`);
    const s = this.state.get(p);
    for (const name in s) {
      const v = s[name];
      if (typeof v === 'number') continue;
      if (v.disposed) throw new RetrogradError(`${at()}: its state '${name}' has been disposed`, 'DISPOSED');
      if (v.size !== p.value.size) throw new RangeError(`${at()} has ${p.value.size} values but its state '${name}' has ${v.size}; was its value replaced?`);
    }
  }

  /** Moves p's state tensors to the backend p lives on now (after model.to()): copied there, the old ones freed. */
  private follow(p: Parameter): void {
    const s = this.state.get(p);
    if (!s) return;
    const b = p.value.backend;
    const moved: [string, Tensor][] = [];
    try {
      for (const name in s) {
        const v = s[name];
        if (typeof v !== 'number' && v.backend !== b) moved.push([name, keep(v.toBackend(b))]);
      }
    } catch (e) {
      for (const [, t] of moved) t.dispose();
      throw e;
    }
    for (const [name, t] of moved) {
      (s[name] as Tensor).dispose();
      s[name] = t;
    }
  }

  /** Zeroes the gradients of every parameter (deferred: see Parameter.zeroGrad). */
  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }

  /** @internal Updates one parameter in place from its grad. */
  protected abstract update(p: Parameter, state: ParamState): void;

  /** @internal The numbers of the per-parameter state (step counts…), for undoing steps whose kernels a failure
   * skipped: fit's guard against a non-finite step (lib/train/fit.ts). */
  countersSnapshot(): Map<Parameter, Record<string, number>> {
    const snap = new Map<Parameter, Record<string, number>>();
    for (const [p, s] of this.state) {
      const numbers: Record<string, number> = {};
      for (const [k, v] of Object.entries(s)) if (typeof v === 'number') numbers[k] = v;
      snap.set(p, numbers);
    }
    return snap;
  }
  /** @internal Puts the numbers of a snapshot back; state created since (its buffers never updated) is dropped. */
  restoreCounters(snap: Map<Parameter, Record<string, number>>): void {
    for (const [p, s] of this.state) {
      const numbers = snap.get(p);
      if (numbers) {
        Object.assign(s, numbers);
      } else {
        for (const v of Object.values(s)) if (typeof v !== 'number') v.dispose();
        this.state.delete(p);
      }
    }
  }

  /** @internal A state tensor shaped like p, created zero-filled on first use. */
  protected buffer(p: Parameter, s: ParamState, name: string): Tensor {
    let t = s[name] as Tensor | undefined;
    if (!t) {
      t = keep(empty(p.value.backend, p.value.shape)); // the optimizer's, even when the first step runs inside rg.tidy
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

  /**
   * Loads a state written by stateDict(): the hyperparameters are checked as the constructor checks them, the
   * per-parameter state against what this optimizer keeps; on any error nothing is loaded.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const where = `${this.label}.loadStateDict`;
    if (!sd || typeof sd !== 'object' || !sd.state || typeof sd.state !== 'object' || !Array.isArray(sd.param_groups) || sd.param_groups.length !== this.groups.length)
      throw new TypeError(`${where}: expected { state, param_groups: [${this.groups.length} group(s)] }, got ${describe(sd)}`);
    const groups = sd.param_groups.map((pg, gi) => {
      const at = `${where} (group ${gi})`;
      if (pg === null || typeof pg !== 'object' || Array.isArray(pg)) throw new TypeError(`${at}: expected an object of hyperparameters, got ${describe(pg)}`);
      const { params, initial_lr: initialLr, ...group } = pg;
      const n = this.groups[gi].params.length;
      if (params !== undefined && (!Array.isArray(params) || params.length !== n))
        throw new RangeError(`${at}: params must list the group's ${n} parameter${n === 1 ? '' : 's'}, got ${describe(params)}`);
      if (initialLr !== undefined) checkNumber(at, 'initial_lr', initialLr, { min: 0 });
      return { options: this.resolveOptions(at, { ...this.groups[gi].options, ...group }), initialLr: initialLr as number | undefined };
    });
    const checked = new Map<Parameter, Record<string, Float32Array | number>>();
    for (const [key, entry] of Object.entries(sd.state)) {
      const p = /^\d+$/.test(key) ? this.params[Number(key)] : undefined;
      if (!p) throw new RangeError(`${where}: state for parameter ${key}, but the optimizer has ${this.params.length} (indices 0 to ${this.params.length - 1})`);
      checked.set(p, this.checkState(where, key, p, entry));
    }
    const loaded = new Map<Parameter, ParamState>();
    const created: Tensor[] = [];
    try {
      for (const [p, entry] of checked) {
        const s: ParamState = {};
        for (const [name, v] of Object.entries(entry)) {
          if (typeof v === 'number') s[name] = v;
          else created.push((s[name] = keep(fromHost(p.value.backend, v, p.value.shape))));
        }
        loaded.set(p, s);
      }
    } catch (e) {
      for (const t of created) t.dispose();
      throw e;
    }
    // Nothing below can fail.
    groups.forEach(({ options, initialLr }, gi) => {
      Object.assign(this.groups[gi].options, options);
      if (initialLr !== undefined) this.groups[gi].initialLr = initialLr;
    });
    for (const s of this.state.values()) for (const v of Object.values(s)) if (typeof v !== 'number') v.dispose();
    this.state.clear();
    for (const [p, s] of loaded) this.state.set(p, s);
  }

  /** One parameter's loaded state: only the keys this optimizer keeps, numbers in range, buffers of p's size. */
  private checkState(where: string, key: string, p: Parameter, entry: unknown): Record<string, Float32Array | number> {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry))
      throw new TypeError(`${where}: the state of parameter ${key} must be an object, got ${describe(entry)}`);
    const { buffers, numbers } = this.stateSpec;
    for (const [name, v] of Object.entries(entry)) {
      const what = `state '${name}' of parameter ${key}`;
      const range = Object.hasOwn(numbers, name) ? numbers[name] : undefined;
      if (range) {
        if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`${where}: ${what} must be a number, got ${describe(v)}`);
        const { min = -Infinity, max = Infinity, integer = false } = range;
        if (v < min || v > max || !Number.isFinite(v) || (integer && !Number.isInteger(v)))
          throw new RangeError(`${where}: ${what} must be ${integer ? `an integer >= ${min}` : `a number in [${min}, ${max}]`}, got ${v}`);
      } else if (buffers.includes(name)) {
        if (!(v instanceof Float32Array)) throw new TypeError(`${where}: ${what} must be a Float32Array of ${p.value.size} values, got ${describe(v)}`);
        if (v.length !== p.value.size) throw new RangeError(`${where}: ${what} has ${v.length} values, expected ${p.value.size} (shape [${p.shape.join(', ')}])`);
      } else {
        throw new RangeError(`${where}: unknown state '${name}' for parameter ${key}; ${this.label} keeps ${[...Object.keys(numbers), ...buffers].join(', ')}`);
      }
    }
    return entry as Record<string, Float32Array | number>;
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
