// Adamax, Adadelta, NAdam and RAdam: torch.optim's formulas and defaults (native/cpu/optim.cc holds the
// per-element updates; the per-step scalars of NAdam's momentum schedule and RAdam's rectification are
// computed here, once per step, as PyTorch computes them in Python).
// NAdam follows PyTorch ≥ 2.0, whose second bias correction is 1 − μ_product·μ_next (1.13 multiplied μ in
// twice there, a bug fixed since).
import { checkNumber, checkOptions } from '../errors.js';
import type { Parameter } from '../nn/module.js';
import { Optimizer, type ParamGroup, type ParamState } from './optimizer.js';

function betasOf(where: string, betas: unknown): [number, number] {
  const b = betas ?? [0.9, 0.999];
  if (!Array.isArray(b) || b.length !== 2) throw new TypeError(`${where}: betas must be a pair [beta1, beta2], got ${String(b)}`);
  return [
    checkNumber(where, 'beta parameter at index 0', b[0], { min: 0, max: 1, maxExclusive: true }),
    checkNumber(where, 'beta parameter at index 1', b[1], { min: 0, max: 1, maxExclusive: true }),
  ];
}
function flag(where: string, name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new TypeError(`${where}: ${name} must be a boolean, got ${typeof v}`);
  return v;
}
function nextStep(s: ParamState): number {
  s.step = ((s.step as number | undefined) ?? 0) + 1;
  return s.step;
}

export interface AdamaxOptions { lr?: number; betas?: [number, number]; eps?: number; weightDecay?: number; maximize?: boolean }

export class Adamax extends Optimizer<Required<AdamaxOptions>> {
  protected readonly label = 'Adamax';
  constructor(params: Iterable<Parameter> | ParamGroup[], options: AdamaxOptions = {}) {
    const w = 'Adamax';
    checkOptions(w, options, ['lr', 'betas', 'eps', 'weightDecay', 'maximize']);
    super(w, params, {
      lr: checkNumber(w, 'learning rate (lr)', options.lr ?? 2e-3, { min: 0 }),
      betas: betasOf(w, options.betas),
      eps: checkNumber(w, 'epsilon value (eps)', options.eps ?? 1e-8, { min: 0 }),
      weightDecay: checkNumber(w, 'weightDecay', options.weightDecay ?? 0, { min: 0 }),
      maximize: flag(w, 'maximize', options.maximize ?? false),
    });
  }
  protected update(p: Parameter, s: ParamState): void {
    const o = this.activeOptions;
    const step = nextStep(s);
    const m = this.buffer(p, s, 'exp_avg'), u = this.buffer(p, s, 'exp_inf');
    p.value.backend.k.adamax_step(p.value.buf, m.buf, u.buf, p.grad.buf, p.value.size, o.lr, o.betas[0], o.betas[1], o.eps, o.weightDecay, step, o.maximize);
  }
}

export interface AdadeltaOptions { lr?: number; rho?: number; eps?: number; weightDecay?: number; maximize?: boolean }

export class Adadelta extends Optimizer<Required<AdadeltaOptions>> {
  protected readonly label = 'Adadelta';
  constructor(params: Iterable<Parameter> | ParamGroup[], options: AdadeltaOptions = {}) {
    const w = 'Adadelta';
    checkOptions(w, options, ['lr', 'rho', 'eps', 'weightDecay', 'maximize']);
    super(w, params, {
      lr: checkNumber(w, 'learning rate (lr)', options.lr ?? 1.0, { min: 0 }),
      rho: checkNumber(w, 'rho', options.rho ?? 0.9, { min: 0, max: 1 }),
      eps: checkNumber(w, 'epsilon value (eps)', options.eps ?? 1e-6, { min: 0 }),
      weightDecay: checkNumber(w, 'weightDecay', options.weightDecay ?? 0, { min: 0 }),
      maximize: flag(w, 'maximize', options.maximize ?? false),
    });
  }
  protected update(p: Parameter, s: ParamState): void {
    const o = this.activeOptions;
    nextStep(s);
    const v = this.buffer(p, s, 'square_avg'), d = this.buffer(p, s, 'acc_delta');
    p.value.backend.k.adadelta_step(p.value.buf, v.buf, d.buf, p.grad.buf, p.value.size, o.lr, o.rho, o.eps, o.weightDecay, o.maximize);
  }
}

export interface NAdamOptions { lr?: number; betas?: [number, number]; eps?: number; weightDecay?: number; momentumDecay?: number }

export class NAdam extends Optimizer<Required<NAdamOptions>> {
  protected readonly label = 'NAdam';
  constructor(params: Iterable<Parameter> | ParamGroup[], options: NAdamOptions = {}) {
    const w = 'NAdam';
    checkOptions(w, options, ['lr', 'betas', 'eps', 'weightDecay', 'momentumDecay']);
    super(w, params, {
      lr: checkNumber(w, 'learning rate (lr)', options.lr ?? 2e-3, { min: 0 }),
      betas: betasOf(w, options.betas),
      eps: checkNumber(w, 'epsilon value (eps)', options.eps ?? 1e-8, { min: 0 }),
      weightDecay: checkNumber(w, 'weightDecay', options.weightDecay ?? 0, { min: 0 }),
      momentumDecay: checkNumber(w, 'momentumDecay', options.momentumDecay ?? 4e-3, { min: 0 }),
    });
  }
  protected update(p: Parameter, s: ParamState): void {
    const o = this.activeOptions;
    const [b1, b2] = o.betas;
    const step = nextStep(s);
    const mu = b1 * (1 - 0.5 * 0.96 ** (step * o.momentumDecay));
    const muNext = b1 * (1 - 0.5 * 0.96 ** ((step + 1) * o.momentumDecay));
    const muProduct = ((s.mu_product as number | undefined) ?? 1) * mu;
    s.mu_product = muProduct;
    const cGrad = (o.lr * (1 - mu)) / (1 - muProduct);
    const cAvg = (o.lr * muNext) / (1 - muProduct * muNext);
    const m = this.buffer(p, s, 'exp_avg'), v = this.buffer(p, s, 'exp_avg_sq');
    p.value.backend.k.nadam_radam_step(p.value.buf, m.buf, v.buf, p.grad.buf, p.value.size, b1, b2, o.eps, o.weightDecay, 1 - b2 ** step, cGrad, cAvg, false, false);
  }
}

export interface RAdamOptions { lr?: number; betas?: [number, number]; eps?: number; weightDecay?: number }

export class RAdam extends Optimizer<Required<RAdamOptions>> {
  protected readonly label = 'RAdam';
  constructor(params: Iterable<Parameter> | ParamGroup[], options: RAdamOptions = {}) {
    const w = 'RAdam';
    checkOptions(w, options, ['lr', 'betas', 'eps', 'weightDecay']);
    super(w, params, {
      lr: checkNumber(w, 'learning rate (lr)', options.lr ?? 1e-3, { min: 0 }),
      betas: betasOf(w, options.betas),
      eps: checkNumber(w, 'epsilon value (eps)', options.eps ?? 1e-8, { min: 0 }),
      weightDecay: checkNumber(w, 'weightDecay', options.weightDecay ?? 0, { min: 0 }),
    });
  }
  protected update(p: Parameter, s: ParamState): void {
    const o = this.activeOptions;
    const [b1, b2] = o.betas;
    const step = nextStep(s);
    const bc1 = 1 - b1 ** step, bc2 = 1 - b2 ** step;
    // The variance of the adaptive rate is tractable only once ρ_t > 5; before that RAdam takes SGD-with-momentum steps.
    const rhoInf = 2 / (1 - b2) - 1;
    const rhoT = rhoInf - (2 * step * b2 ** step) / bc2;
    const rectified = rhoT > 5;
    const rect = rectified ? Math.sqrt(((rhoT - 4) * (rhoT - 2) * rhoInf) / ((rhoInf - 4) * (rhoInf - 2) * rhoT)) : 1;
    const m = this.buffer(p, s, 'exp_avg'), v = this.buffer(p, s, 'exp_avg_sq');
    p.value.backend.k.nadam_radam_step(p.value.buf, m.buf, v.buf, p.grad.buf, p.value.size, b1, b2, o.eps, o.weightDecay, bc2, 0, (o.lr * rect) / bc1, true, rectified);
  }
}
