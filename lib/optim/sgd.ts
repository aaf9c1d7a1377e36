// SGD with momentum, dampening, Nesterov and weight decay: torch.optim.SGD's formulas (native/cpu/optim.cc).
import { checkNumber, checkOptions } from '../errors.js';
import type { Parameter } from '../nn/module.js';
import { Optimizer, STEP, type ParamGroup, type ParamState, type StateSpec } from './optimizer.js';

/** Options of {@link SGD}: torch.optim.SGD's, camelCase. */
export interface SGDOptions {
  /** The learning rate (required, ≥ 0). */
  lr: number;
  /** Momentum factor (default 0: none). */
  momentum?: number;
  /** Dampening of the momentum (default 0). */
  dampening?: number;
  /** Nesterov momentum (default false; needs momentum > 0 and dampening 0). */
  nesterov?: boolean;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
  /** Maximise the objective instead of minimising it (default false). */
  maximize?: boolean;
}

function resolve(where: string, options: SGDOptions | Record<string, unknown>): Required<SGDOptions> {
  checkOptions(where, options, ['lr', 'momentum', 'dampening', 'nesterov', 'weightDecay', 'maximize']);
  const given = options as SGDOptions;
  if (!given || given.lr === undefined) throw new TypeError(`${where}: option lr is required (new rg.SGD(params, { lr: 0.01 }))`);
  const o = {
    lr: checkNumber(where, 'learning rate (lr)', given.lr, { min: 0 }),
    momentum: checkNumber(where, 'momentum', given.momentum ?? 0, { min: 0 }),
    dampening: checkNumber(where, 'dampening', given.dampening ?? 0),
    weightDecay: checkNumber(where, 'weightDecay', given.weightDecay ?? 0, { min: 0 }),
    nesterov: given.nesterov ?? false,
    maximize: given.maximize ?? false,
  };
  if (typeof o.nesterov !== 'boolean') throw new TypeError(`${where}: nesterov must be a boolean, got ${typeof o.nesterov}`);
  if (typeof o.maximize !== 'boolean') throw new TypeError(`${where}: maximize must be a boolean, got ${typeof o.maximize}`);
  if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0))
    throw new RangeError(`${where}: nesterov requires a momentum > 0 and zero dampening, got momentum ${o.momentum}, dampening ${o.dampening}`);
  return o;
}

/**
 * Stochastic gradient descent with momentum, dampening, Nesterov and weight decay: torch.optim.SGD's formulas, the
 * momentum buffer starting as the first gradient. Invalid hyperparameters are a RangeError naming them.
 */
export class SGD extends Optimizer<Required<SGDOptions>> {
  protected readonly label = 'SGD';
  protected readonly stateSpec: StateSpec = { buffers: ['momentum_buffer'], numbers: { step: STEP } };
  /** `params`: model.parameters(), or parameter groups `[{ params, lr: 0.1 }, { params }]` whose own keys override `options`. */
  constructor(params: Iterable<Parameter> | ParamGroup[], options: SGDOptions) {
    super('SGD', params, resolve('SGD', options), resolve);
  }

  protected update(p: Parameter, s: ParamState): void {
    const o = this.activeOptions;
    // As PyTorch: the buffer starts as the first gradient it sees (also when a scheduler turns momentum on late).
    const first = s.momentum_buffer === undefined;
    s.step = ((s.step as number | undefined) ?? 0) + 1;
    const buf = o.momentum !== 0 ? this.buffer(p, s, 'momentum_buffer').buf : null;
    p.value.backend.k.sgd_step(p.value.buf, buf, p.grad.buf, p.value.size, o.lr, o.momentum, o.dampening, o.weightDecay, o.nesterov, o.maximize, first);
  }
}
