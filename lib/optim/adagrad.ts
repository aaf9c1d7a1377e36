// Adagrad: torch.optim.Adagrad's formulas — the squared-gradient sum starts at initialAccumulatorValue, the
// rate decays as lr / (1 + (step − 1)·lrDecay), eps outside the square root (native/cpu/optim.cc).
import { checkNumber, checkOptions } from '../errors.js';
import type { Parameter } from '../nn/module.js';
import { Optimizer, STEP, type ParamGroup, type ParamState, type StateSpec } from './optimizer.js';

/** Options of {@link Adagrad}: torch.optim.Adagrad's, camelCase. */
export interface AdagradOptions {
  /** The learning rate (default 1e-2). */
  lr?: number;
  /** The rate at step t is lr / (1 + (t − 1)·lrDecay) (default 0). */
  lrDecay?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
  /** Where the squared-gradient sum starts (default 0). */
  initialAccumulatorValue?: number;
  /** Added to the denominator, outside the square root (default 1e-10). */
  eps?: number;
  /** Maximise the objective instead of minimising it (default false). */
  maximize?: boolean;
}

function resolve(where: string, given: AdagradOptions | Record<string, unknown>): Required<AdagradOptions> {
  checkOptions(where, given, ['lr', 'lrDecay', 'weightDecay', 'initialAccumulatorValue', 'eps', 'maximize']);
  const options = given as AdagradOptions;
  const o = {
    lr: checkNumber(where, 'learning rate (lr)', options.lr ?? 1e-2, { min: 0 }),
    lrDecay: checkNumber(where, 'lrDecay', options.lrDecay ?? 0, { min: 0 }),
    weightDecay: checkNumber(where, 'weightDecay', options.weightDecay ?? 0, { min: 0 }),
    initialAccumulatorValue: checkNumber(where, 'initialAccumulatorValue', options.initialAccumulatorValue ?? 0, { min: 0 }),
    eps: checkNumber(where, 'epsilon value (eps)', options.eps ?? 1e-10, { min: 0 }),
    maximize: options.maximize ?? false,
  };
  if (typeof o.maximize !== 'boolean') throw new TypeError(`${where}: maximize must be a boolean, got ${typeof o.maximize}`);
  return o;
}

/** Adagrad: torch.optim.Adagrad's formulas, each element's rate divided by the root of its summed squared gradients. */
export class Adagrad extends Optimizer<Required<AdagradOptions>> {
  protected readonly label = 'Adagrad';
  protected readonly stateSpec: StateSpec = { buffers: ['sum'], numbers: { step: STEP } };
  /** `params`: model.parameters(), or parameter groups `[{ params, lr: 0.1 }, { params }]` whose own keys override `options`. */
  constructor(params: Iterable<Parameter> | ParamGroup[], options: AdagradOptions = {}) {
    super('Adagrad', params, resolve('Adagrad', options), resolve);
  }

  protected update(p: Parameter, s: ParamState): void {
    const o = this.activeOptions;
    s.step = ((s.step as number | undefined) ?? 0) + 1;
    let sum = s.sum;
    if (sum === undefined) {
      sum = this.buffer(p, s, 'sum');
      if (o.initialAccumulatorValue !== 0) sum.backend.k.fill(sum.buf, sum.size, o.initialAccumulatorValue);
    }
    const clr = o.lr / (1 + (s.step - 1) * o.lrDecay);
    p.value.backend.k.adagrad_step(p.value.buf, (sum as typeof p.value).buf, p.grad.buf, p.value.size, clr, o.eps, o.weightDecay, o.maximize);
  }
}
