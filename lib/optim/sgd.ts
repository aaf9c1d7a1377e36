// SGD with momentum, dampening, Nesterov and weight decay: torch.optim.SGD's formulas (native/cpu/optim.cc).
import { checkNumber, checkOptions } from '../errors.js';
import type { Parameter } from '../nn/module.js';
import { Optimizer, type ParamGroup, type ParamState } from './optimizer.js';

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
  maximize?: boolean;
}

export class SGD extends Optimizer<Required<SGDOptions>> {
  protected readonly label = 'SGD';
  constructor(params: Iterable<Parameter> | ParamGroup[], options: SGDOptions) {
    checkOptions('SGD', options, ['lr', 'momentum', 'dampening', 'nesterov', 'weightDecay', 'maximize']);
    if (!options || options.lr === undefined) throw new TypeError('SGD: option lr is required (new rg.SGD(params, { lr: 0.01 }))');
    const o = {
      lr: checkNumber('SGD', 'learning rate (lr)', options.lr, { min: 0 }),
      momentum: checkNumber('SGD', 'momentum', options.momentum ?? 0, { min: 0 }),
      dampening: checkNumber('SGD', 'dampening', options.dampening ?? 0),
      weightDecay: checkNumber('SGD', 'weightDecay', options.weightDecay ?? 0, { min: 0 }),
      nesterov: options.nesterov ?? false,
      maximize: options.maximize ?? false,
    };
    if (typeof o.nesterov !== 'boolean') throw new TypeError(`SGD: nesterov must be a boolean, got ${typeof o.nesterov}`);
    if (typeof o.maximize !== 'boolean') throw new TypeError(`SGD: maximize must be a boolean, got ${typeof o.maximize}`);
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0))
      throw new RangeError(`SGD: nesterov requires a momentum > 0 and zero dampening, got momentum ${o.momentum}, dampening ${o.dampening}`);
    super('SGD', params, o);
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
