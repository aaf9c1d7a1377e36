// Adam and AdamW: torch.optim.Adam / AdamW's formulas — bias correction, eps outside the square root,
// L2 weight decay added to the gradient (Adam) or decoupled decay of the weights (AdamW), AMSGrad.
import { checkNumber, checkOptions } from '../errors.js';
import type { Parameter } from '../nn/module.js';
import { Optimizer, STEP, type ParamGroup, type ParamState, type StateSpec } from './optimizer.js';

/** Options of {@link Adam} and {@link AdamW}: torch.optim.Adam's, camelCase. */
export interface AdamOptions {
  /** The learning rate (default 1e-3). */
  lr?: number;
  /** Decay rates of the first and second moment estimates, each in [0, 1) (default [0.9, 0.999]). */
  betas?: [number, number];
  /** Added to the denominator, outside the square root (default 1e-8). */
  eps?: number;
  /** Adam: L2 penalty added to the gradient (default 0); AdamW: decoupled decay of the weights (default 1e-2). */
  weightDecay?: number;
  /** Use the maximum of past second moments (AMSGrad; default false). */
  amsgrad?: boolean;
  /** Maximise the objective instead of minimising it (default false). */
  maximize?: boolean;
}

/** Adam's options with every default filled in: what its groups hold. */
export type Resolved = Required<AdamOptions> & {
  /** The learning rate. */
  lr: number;
};

function resolve(where: string, given: AdamOptions | Record<string, unknown>, defaultDecay: number): Resolved {
  checkOptions(where, given, ['lr', 'betas', 'eps', 'weightDecay', 'amsgrad', 'maximize']);
  const options = given as AdamOptions;
  const betas = options.betas ?? [0.9, 0.999];
  if (!Array.isArray(betas) || betas.length !== 2) throw new TypeError(`${where}: betas must be a pair [beta1, beta2], got ${String(betas)}`);
  const o: Resolved = {
    lr: checkNumber(where, 'learning rate (lr)', options.lr ?? 1e-3, { min: 0 }),
    betas: [
      checkNumber(where, 'beta parameter at index 0', betas[0], { min: 0, max: 1, maxExclusive: true }),
      checkNumber(where, 'beta parameter at index 1', betas[1], { min: 0, max: 1, maxExclusive: true }),
    ],
    eps: checkNumber(where, 'epsilon value (eps)', options.eps ?? 1e-8, { min: 0 }),
    weightDecay: checkNumber(where, 'weightDecay', options.weightDecay ?? defaultDecay, { min: 0 }),
    amsgrad: options.amsgrad ?? false,
    maximize: options.maximize ?? false,
  };
  if (typeof o.amsgrad !== 'boolean') throw new TypeError(`${where}: amsgrad must be a boolean, got ${typeof o.amsgrad}`);
  if (typeof o.maximize !== 'boolean') throw new TypeError(`${where}: maximize must be a boolean, got ${typeof o.maximize}`);
  return o;
}

/**
 * Adam: torch.optim.Adam's formulas, with bias correction, eps outside the square root, L2 weight decay added to the
 * gradient, and AMSGrad on request.
 */
export class Adam extends Optimizer<Resolved> {
  protected readonly label: string = 'Adam';
  /** @internal AdamW's decoupled weight decay. */
  protected readonly decoupled: boolean = false;
  protected readonly stateSpec: StateSpec = { buffers: ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'], numbers: { step: STEP } };
  /** @internal The name in messages and the default weight decay, which AdamW overrides. */
  protected static readonly variant = { label: 'Adam', weightDecay: 0 };
  /** `params`: model.parameters(), or parameter groups `[{ params, lr: 0.1 }, { params }]` whose own keys override `options`. */
  constructor(params: Iterable<Parameter> | ParamGroup[], options: AdamOptions = {}) {
    const { label, weightDecay } = (new.target as typeof Adam).variant;
    super(label, params, resolve(label, options, weightDecay), (where, o) => resolve(where, o, weightDecay));
  }
  protected update(p: Parameter, s: ParamState): void {
    const o = this.activeOptions;
    s.step = ((s.step as number | undefined) ?? 0) + 1;
    const m = this.buffer(p, s, 'exp_avg');
    const v = this.buffer(p, s, 'exp_avg_sq');
    const vmax = o.amsgrad ? this.buffer(p, s, 'max_exp_avg_sq').buf : null;
    p.value.backend.k.adam_step(
      p.value.buf, m.buf, v.buf, vmax, p.grad.buf, p.value.size,
      o.lr, o.betas[0], o.betas[1], o.eps, o.weightDecay, s.step, o.amsgrad, this.decoupled, o.maximize,
    );
  }
}

/** AdamW: Adam with decoupled weight decay (the weights shrink by lr·weightDecay each step, default 1e-2), as torch.optim.AdamW. */
export class AdamW extends Adam {
  /** @internal */
  protected override readonly label: string = 'AdamW';
  protected override readonly decoupled: boolean = true;
  protected static override readonly variant = { label: 'AdamW', weightDecay: 1e-2 };
}
