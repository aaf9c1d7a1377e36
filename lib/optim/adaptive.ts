// Adamax, Adadelta, NAdam and RAdam: torch.optim's formulas and defaults (native/cpu/optim.cc holds the
// per-element updates; the per-step scalars of NAdam's momentum schedule and RAdam's rectification are
// computed here, once per step, as PyTorch computes them in Python).
// NAdam follows PyTorch ≥ 2.0, whose second bias correction is 1 − μ_product·μ_next (1.13 multiplied μ in
// twice there, a bug fixed since).
import { checkNumber, checkOptions } from '../errors.js';
import type { Parameter } from '../nn/module.js';
import { Optimizer, STEP, type ParamGroup, type ParamState, type StateSpec } from './optimizer.js';

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

/** Options of {@link Adamax}: torch.optim.Adamax's, camelCase. */
export interface AdamaxOptions {
  /** The learning rate (default 2e-3). */
  lr?: number;
  /** Decay rates of the first moment and of the infinity norm, each in [0, 1) (default [0.9, 0.999]). */
  betas?: [number, number];
  /** Added to the infinity norm (default 1e-8). */
  eps?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
  /** Maximise the objective instead of minimising it (default false). */
  maximize?: boolean;
}

function adamaxOptions(w: string, given: AdamaxOptions | Record<string, unknown>): Required<AdamaxOptions> {
  checkOptions(w, given, ['lr', 'betas', 'eps', 'weightDecay', 'maximize']);
  const options = given as AdamaxOptions;
  return {
    lr: checkNumber(w, 'learning rate (lr)', options.lr ?? 2e-3, { min: 0 }),
    betas: betasOf(w, options.betas),
    eps: checkNumber(w, 'epsilon value (eps)', options.eps ?? 1e-8, { min: 0 }),
    weightDecay: checkNumber(w, 'weightDecay', options.weightDecay ?? 0, { min: 0 }),
    maximize: flag(w, 'maximize', options.maximize ?? false),
  };
}

/** Adamax: Adam with the infinity norm in place of the second moment, as torch.optim.Adamax. */
export class Adamax extends Optimizer<Required<AdamaxOptions>> {
  protected readonly label = 'Adamax';
  protected readonly stateSpec: StateSpec = { buffers: ['exp_avg', 'exp_inf'], numbers: { step: STEP } };
  /** `params`: model.parameters(), or parameter groups `[{ params, lr: 0.1 }, { params }]` whose own keys override `options`. */
  constructor(params: Iterable<Parameter> | ParamGroup[], options: AdamaxOptions = {}) {
    super('Adamax', params, adamaxOptions('Adamax', options), adamaxOptions);
  }
  protected update(p: Parameter, s: ParamState): void {
    const o = this.activeOptions;
    const step = nextStep(s);
    const m = this.buffer(p, s, 'exp_avg'), u = this.buffer(p, s, 'exp_inf');
    p.value.backend.k.adamax_step(p.value.buf, m.buf, u.buf, p.grad.buf, p.value.size, o.lr, o.betas[0], o.betas[1], o.eps, o.weightDecay, step, o.maximize);
  }
}

/** Options of {@link Adadelta}: torch.optim.Adadelta's, camelCase. */
export interface AdadeltaOptions {
  /** Scale of each update (default 1). */
  lr?: number;
  /** Smoothing constant of the running averages, in [0, 1] (default 0.9). */
  rho?: number;
  /** Added inside the square roots (default 1e-6). */
  eps?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
  /** Maximise the objective instead of minimising it (default false). */
  maximize?: boolean;
}

function adadeltaOptions(w: string, given: AdadeltaOptions | Record<string, unknown>): Required<AdadeltaOptions> {
  checkOptions(w, given, ['lr', 'rho', 'eps', 'weightDecay', 'maximize']);
  const options = given as AdadeltaOptions;
  return {
    lr: checkNumber(w, 'learning rate (lr)', options.lr ?? 1.0, { min: 0 }),
    rho: checkNumber(w, 'rho', options.rho ?? 0.9, { min: 0, max: 1 }),
    eps: checkNumber(w, 'epsilon value (eps)', options.eps ?? 1e-6, { min: 0 }),
    weightDecay: checkNumber(w, 'weightDecay', options.weightDecay ?? 0, { min: 0 }),
    maximize: flag(w, 'maximize', options.maximize ?? false),
  };
}

/** Adadelta: updates scaled by the ratio of running RMS of past updates and of gradients, as torch.optim.Adadelta. */
export class Adadelta extends Optimizer<Required<AdadeltaOptions>> {
  protected readonly label = 'Adadelta';
  protected readonly stateSpec: StateSpec = { buffers: ['square_avg', 'acc_delta'], numbers: { step: STEP } };
  /** `params`: model.parameters(), or parameter groups `[{ params, lr: 0.1 }, { params }]` whose own keys override `options`. */
  constructor(params: Iterable<Parameter> | ParamGroup[], options: AdadeltaOptions = {}) {
    super('Adadelta', params, adadeltaOptions('Adadelta', options), adadeltaOptions);
  }
  protected update(p: Parameter, s: ParamState): void {
    const o = this.activeOptions;
    nextStep(s);
    const v = this.buffer(p, s, 'square_avg'), d = this.buffer(p, s, 'acc_delta');
    p.value.backend.k.adadelta_step(p.value.buf, v.buf, d.buf, p.grad.buf, p.value.size, o.lr, o.rho, o.eps, o.weightDecay, o.maximize);
  }
}

/** Options of {@link NAdam}: torch.optim.NAdam's, camelCase. */
export interface NAdamOptions {
  /** The learning rate (default 2e-3). */
  lr?: number;
  /** Decay rates of the moment estimates, each in [0, 1) (default [0.9, 0.999]). */
  betas?: [number, number];
  /** Added to the denominator, outside the square root (default 1e-8). */
  eps?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
  /** ψ of the momentum schedule μ_t = β1·(1 − ½·0.96^(t·ψ)) (default 4e-3). */
  momentumDecay?: number;
}

function nadamOptions(w: string, given: NAdamOptions | Record<string, unknown>): Required<NAdamOptions> {
  checkOptions(w, given, ['lr', 'betas', 'eps', 'weightDecay', 'momentumDecay']);
  const options = given as NAdamOptions;
  return {
    lr: checkNumber(w, 'learning rate (lr)', options.lr ?? 2e-3, { min: 0 }),
    betas: betasOf(w, options.betas),
    eps: checkNumber(w, 'epsilon value (eps)', options.eps ?? 1e-8, { min: 0 }),
    weightDecay: checkNumber(w, 'weightDecay', options.weightDecay ?? 0, { min: 0 }),
    momentumDecay: checkNumber(w, 'momentumDecay', options.momentumDecay ?? 4e-3, { min: 0 }),
  };
}

/** NAdam: Adam with Nesterov momentum and PyTorch's momentum schedule, as torch.optim.NAdam (PyTorch ≥ 2.0's bias correction). */
export class NAdam extends Optimizer<Required<NAdamOptions>> {
  protected readonly label = 'NAdam';
  // mu_product: the product of the momentum schedule's μ so far, each in [0, 1)
  protected readonly stateSpec: StateSpec = { buffers: ['exp_avg', 'exp_avg_sq'], numbers: { step: STEP, mu_product: { min: 0, max: 1 } } };
  /** `params`: model.parameters(), or parameter groups `[{ params, lr: 0.1 }, { params }]` whose own keys override `options`. */
  constructor(params: Iterable<Parameter> | ParamGroup[], options: NAdamOptions = {}) {
    super('NAdam', params, nadamOptions('NAdam', options), nadamOptions);
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

/** Options of {@link RAdam}: torch.optim.RAdam's, camelCase. */
export interface RAdamOptions {
  /** The learning rate (default 1e-3). */
  lr?: number;
  /** Decay rates of the moment estimates, each in [0, 1) (default [0.9, 0.999]). */
  betas?: [number, number];
  /** Added to the denominator, outside the square root (default 1e-8). */
  eps?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
}

function radamOptions(w: string, given: RAdamOptions | Record<string, unknown>): Required<RAdamOptions> {
  checkOptions(w, given, ['lr', 'betas', 'eps', 'weightDecay']);
  const options = given as RAdamOptions;
  return {
    lr: checkNumber(w, 'learning rate (lr)', options.lr ?? 1e-3, { min: 0 }),
    betas: betasOf(w, options.betas),
    eps: checkNumber(w, 'epsilon value (eps)', options.eps ?? 1e-8, { min: 0 }),
    weightDecay: checkNumber(w, 'weightDecay', options.weightDecay ?? 0, { min: 0 }),
  };
}

/** RAdam: Adam with the variance of the adaptive rate rectified, as torch.optim.RAdam; the first steps (until
 * ρ_t > 5) are SGD-with-momentum steps. */
export class RAdam extends Optimizer<Required<RAdamOptions>> {
  protected readonly label = 'RAdam';
  protected readonly stateSpec: StateSpec = { buffers: ['exp_avg', 'exp_avg_sq'], numbers: { step: STEP } };
  /** `params`: model.parameters(), or parameter groups `[{ params, lr: 0.1 }, { params }]` whose own keys override `options`. */
  constructor(params: Iterable<Parameter> | ParamGroup[], options: RAdamOptions = {}) {
    super('RAdam', params, radamOptions('RAdam', options), radamOptions);
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
