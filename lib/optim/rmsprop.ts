// RMSprop: torch.optim.RMSprop's formulas — eps added outside the square root, optional centring (the
// running mean of the gradient subtracted) and momentum (native/cpu/optim.cc).
import { checkNumber, checkOptions } from '../errors.js';
import type { Parameter } from '../nn/module.js';
import { Optimizer, STEP, type ParamGroup, type ParamState, type StateSpec } from './optimizer.js';

/** Options of {@link RMSprop}: torch.optim.RMSprop's, camelCase. */
export interface RMSpropOptions {
  /** The learning rate (default 1e-2). */
  lr?: number;
  /** Smoothing constant of the squared-gradient average (default 0.99). */
  alpha?: number;
  /** Added to the denominator, outside the square root (default 1e-8). */
  eps?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
  /** Momentum factor (default 0: none). */
  momentum?: number;
  /** Subtract the running mean of the gradient (centred RMSprop; default false). */
  centered?: boolean;
  /** Maximise the objective instead of minimising it (default false). */
  maximize?: boolean;
}

function resolve(where: string, given: RMSpropOptions | Record<string, unknown>): Required<RMSpropOptions> {
  checkOptions(where, given, ['lr', 'alpha', 'eps', 'weightDecay', 'momentum', 'centered', 'maximize']);
  const options = given as RMSpropOptions;
  const o = {
    lr: checkNumber(where, 'learning rate (lr)', options.lr ?? 1e-2, { min: 0 }),
    alpha: checkNumber(where, 'alpha', options.alpha ?? 0.99, { min: 0 }),
    eps: checkNumber(where, 'epsilon value (eps)', options.eps ?? 1e-8, { min: 0 }),
    weightDecay: checkNumber(where, 'weightDecay', options.weightDecay ?? 0, { min: 0 }),
    momentum: checkNumber(where, 'momentum', options.momentum ?? 0, { min: 0 }),
    centered: options.centered ?? false,
    maximize: options.maximize ?? false,
  };
  for (const flag of ['centered', 'maximize'] as const)
    if (typeof o[flag] !== 'boolean') throw new TypeError(`${where}: ${flag} must be a boolean, got ${typeof o[flag]}`);
  return o;
}

/** RMSprop: torch.optim.RMSprop's formulas, eps outside the square root, with optional centring and momentum. */
export class RMSprop extends Optimizer<Required<RMSpropOptions>> {
  protected readonly label = 'RMSprop';
  protected readonly stateSpec: StateSpec = { buffers: ['square_avg', 'grad_avg', 'momentum_buffer'], numbers: { step: STEP } };
  /** `params`: model.parameters(), or parameter groups `[{ params, lr: 0.1 }, { params }]` whose own keys override `options`. */
  constructor(params: Iterable<Parameter> | ParamGroup[], options: RMSpropOptions = {}) {
    super('RMSprop', params, resolve('RMSprop', options), resolve);
  }

  protected update(p: Parameter, s: ParamState): void {
    const o = this.activeOptions;
    s.step = ((s.step as number | undefined) ?? 0) + 1;
    const squareAvg = this.buffer(p, s, 'square_avg');
    const gradAvg = o.centered ? this.buffer(p, s, 'grad_avg').buf : null;
    const momentumBuf = o.momentum > 0 ? this.buffer(p, s, 'momentum_buffer').buf : null;
    p.value.backend.k.rmsprop_step(p.value.buf, squareAvg.buf, gradAvg, momentumBuf, p.grad.buf, p.value.size,
      o.lr, o.alpha, o.eps, o.weightDecay, o.momentum, o.centered, o.maximize);
  }
}
