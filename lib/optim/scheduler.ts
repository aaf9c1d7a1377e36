// Learning-rate schedulers with PyTorch 1.13's classes and semantics (torch/optim/lr_scheduler.py): the
// chainable get_lr() of each, the closed form where PyTorch uses one (step(epoch)), the initial step at
// construction, and SequentialLR's reset-and-undo. They act on the optimizer's `lr` (one parameter group).
// Usable in a manual loop (scheduler.step() after optimizer.step()) and in fit through a callback.
import { checkNumber, checkOptions, describe } from '../errors.js';
import { Optimizer } from './optimizer.js';

/** Any optimizer, as a scheduler holds it: one whose hyperparameters include a learning rate. */
export type AnyOptimizer = Optimizer<{
  /** The learning rate. */
  lr: number;
}>;

function checkOptimizer(where: string, optimizer: unknown): AnyOptimizer {
  if (!(optimizer instanceof Optimizer)) throw new TypeError(`${where}: expected an optimizer, got ${describe(optimizer)}`);
  return optimizer as AnyOptimizer;
}

/**
 * The base of the learning-rate schedulers, with PyTorch 1.13's semantics (torch.optim.lr_scheduler): each sets the
 * learning rate of every parameter group of its optimizer at step(), takes one step at construction, and saves and
 * loads its state. Call scheduler.step() after optimizer.step() (per epoch, or per batch for OneCycleLR), or use it
 * in fit through the LearningRateScheduler callback.
 */
export abstract class LRScheduler {
  /** The optimizer whose learning rates it sets. */
  readonly optimizer: AnyOptimizer;
  /** The epoch (or step) count: 0 after construction. */
  lastEpoch = -1;
  /** The learning rate each parameter group's schedule starts from (PyTorch's base_lrs). */
  baseLrs: number[];
  /** @internal Steps taken, the initial one included. */
  protected stepCount = 0;
  /** @internal Each group's rate after the last step. */
  protected lastLrs: number[] = [];

  /** @internal Sets each group's initial_lr (once) and reads the base rates; `where` names the subclass in messages. */
  protected constructor(where: string, optimizer: unknown) {
    this.optimizer = checkOptimizer(where, optimizer);
    for (const g of this.optimizer.groups) g.initialLr ??= g.options.lr;
    this.baseLrs = this.optimizer.groups.map((g) => g.initialLr!);
  }

  /** The first group's base learning rate. */
  get baseLr(): number {
    return this.baseLrs[0];
  }

  /** @internal PyTorch performs one step at construction; subclasses call this last in their constructors. */
  initialStep(): void {
    this.step();
  }

  /** Advances the schedule (or, with `epoch`, jumps to it through the closed form) and sets each group's lr. */
  step(epoch?: number): void {
    this.stepCount++;
    const groups = this.optimizer.groups;
    let lrs: number[];
    if (epoch === undefined) {
      this.lastEpoch++;
      lrs = groups.map((g, i) => this.getLr(g.options.lr, this.baseLrs[i]));
    } else {
      this.lastEpoch = checkNumber(this.constructor.name, 'epoch', epoch, { min: 0, integer: true });
      lrs = groups.map((g, i) => (this.closedFormLr ? this.closedFormLr(this.baseLrs[i]) : this.getLr(g.options.lr, this.baseLrs[i])));
    }
    groups.forEach((g, i) => (g.options.lr = lrs[i]));
    this.lastLrs = lrs;
  }

  /** The learning rate of each parameter group after the last step (PyTorch's get_last_lr()). */
  getLastLr(): number[] {
    return [...this.lastLrs];
  }

  /** @internal The next learning rate of a group from its current one (PyTorch's chainable get_lr). */
  protected abstract getLr(lr: number, base: number): number;
  /** @internal The learning rate at lastEpoch from the group's base (PyTorch's _get_closed_form_lr), where there is one. */
  protected closedFormLr?(base: number): number;

  /** The scheduler's state (epoch, base and last rates), JSON-ready, for loadStateDict and checkpoints. */
  stateDict(): Record<string, unknown> {
    return { lastEpoch: this.lastEpoch, baseLrs: [...this.baseLrs], stepCount: this.stepCount, lastLrs: [...this.lastLrs] };
  }
  /** Loads a state written by stateDict(); checks all of it first (children included) and loads nothing on an error. */
  loadStateDict(sd: Record<string, unknown>): void {
    this.checkState(sd);
    this.applyState(sd);
  }
  /** @internal Throws unless `sd` is a state this scheduler can load. */
  checkState(sd: unknown): void {
    const where = `${this.constructor.name}.loadStateDict`;
    if (sd === null || typeof sd !== 'object' || Array.isArray(sd)) throw new TypeError(`${where}: expected an object, got ${describe(sd)}`);
    const state = sd as Record<string, unknown>;
    count(where, state, 'lastEpoch', -1);
    count(where, state, 'stepCount', 0);
    const n = this.optimizer.groups.length;
    for (const key of ['baseLrs', 'lastLrs'] as const) {
      const v = state[key];
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) throw new TypeError(`${where}: '${key}' must be an array of numbers`);
      if (v.length !== n) throw new RangeError(`${where}: '${key}' must hold ${n} learning rate${n === 1 ? '' : 's'} (one per parameter group), got ${v.length}`);
      v.forEach((x: number, i) => {
        if (!Number.isFinite(x) || x < 0) throw new RangeError(`${where}: '${key}[${i}]' must be a finite number >= 0, got ${x}`);
      });
    }
  }
  /** @internal Loads a state that checkState() accepted. */
  applyState(sd: Record<string, unknown>): void {
    this.lastEpoch = sd.lastEpoch as number;
    this.stepCount = sd.stepCount as number;
    this.baseLrs = [...(sd.baseLrs as number[])];
    this.lastLrs = [...(sd.lastLrs as number[])];
  }
}

/** Throws unless sd[key] is an integer >= min (a step or epoch count). */
function count(where: string, sd: Record<string, unknown>, key: string, min: number): void {
  const v = sd[key];
  if (typeof v !== 'number') throw new TypeError(`${where}: '${key}' must be a number`);
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${where}: '${key}' must be an integer >= ${min}, got ${v}`);
}

/** lr × gamma every stepSize epochs. */
export class StepLR extends LRScheduler {
  /** Epochs between decays. */
  readonly stepSize: number;
  /** The factor of each decay. */
  readonly gamma: number;
  /** Decays by gamma (default 0.1) every stepSize epochs, as torch's StepLR. */
  constructor(optimizer: unknown, stepSize: number, options: { gamma?: number } = {}) {
    super('StepLR', optimizer);
    checkOptions('StepLR', options, ['gamma']);
    this.stepSize = checkNumber('StepLR', 'stepSize', stepSize, { min: 1, integer: true });
    this.gamma = checkNumber('StepLR', 'gamma', options.gamma ?? 0.1);
    this.initialStep();
  }
  protected getLr(lr: number): number {
    return this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0 ? lr : lr * this.gamma;
  }
  protected override closedFormLr(base: number): number {
    return base * this.gamma ** Math.floor(this.lastEpoch / this.stepSize);
  }
}

/** lr × gamma at each milestone (a milestone listed twice multiplies twice). */
export class MultiStepLR extends LRScheduler {
  /** The epochs at which the rate decays, sorted. */
  readonly milestones: readonly number[];
  /** The factor of each decay. */
  readonly gamma: number;
  /** Decays by gamma (default 0.1) at each of the milestones (epochs), as torch's MultiStepLR. */
  constructor(optimizer: unknown, milestones: number[], options: { gamma?: number } = {}) {
    super('MultiStepLR', optimizer);
    checkOptions('MultiStepLR', options, ['gamma']);
    if (!Array.isArray(milestones)) throw new TypeError(`MultiStepLR: milestones must be an array of epochs, got ${describe(milestones)}`);
    milestones.forEach((m) => checkNumber('MultiStepLR', 'milestone', m, { min: 0, integer: true }));
    this.milestones = [...milestones].sort((a, b) => a - b);
    this.gamma = checkNumber('MultiStepLR', 'gamma', options.gamma ?? 0.1);
    this.initialStep();
  }
  protected getLr(lr: number): number {
    const count = this.milestones.filter((m) => m === this.lastEpoch).length;
    return lr * this.gamma ** count;
  }
  protected override closedFormLr(base: number): number {
    return base * this.gamma ** this.milestones.filter((m) => m <= this.lastEpoch).length;
  }
}

/** lr × gamma every epoch. */
export class ExponentialLR extends LRScheduler {
  /** The factor of each epoch's decay. */
  readonly gamma: number;
  /** Multiplies the rate by gamma every epoch, as torch's ExponentialLR. */
  constructor(optimizer: unknown, gamma: number) {
    super('ExponentialLR', optimizer);
    this.gamma = checkNumber('ExponentialLR', 'gamma', gamma);
    this.initialStep();
  }
  protected getLr(lr: number): number {
    return this.lastEpoch === 0 ? lr : lr * this.gamma;
  }
  protected override closedFormLr(base: number): number {
    return base * this.gamma ** this.lastEpoch;
  }
}

/** Cosine from the base lr down to etaMin over TMax epochs (and back up after, as PyTorch's recursion does). */
export class CosineAnnealingLR extends LRScheduler {
  /** Epochs of the half-cosine from the base rate down to etaMin. */
  readonly TMax: number;
  /** The lowest rate. */
  readonly etaMin: number;
  /** Anneals over TMax epochs down to etaMin (default 0), as torch's CosineAnnealingLR. */
  constructor(optimizer: unknown, TMax: number, options: { etaMin?: number } = {}) {
    super('CosineAnnealingLR', optimizer);
    checkOptions('CosineAnnealingLR', options, ['etaMin']);
    this.TMax = checkNumber('CosineAnnealingLR', 'TMax', TMax, { min: 1, integer: true });
    this.etaMin = checkNumber('CosineAnnealingLR', 'etaMin', options.etaMin ?? 0);
    this.initialStep();
  }
  protected getLr(lr: number, base: number): number {
    const e = this.lastEpoch, T = this.TMax;
    if (e === 0) return lr;
    if ((((e - 1 - T) % (2 * T)) + 2 * T) % (2 * T) === 0) return lr + ((base - this.etaMin) * (1 - Math.cos(Math.PI / T))) / 2;
    return ((1 + Math.cos((Math.PI * e) / T)) / (1 + Math.cos((Math.PI * (e - 1)) / T))) * (lr - this.etaMin) + this.etaMin;
  }
  protected override closedFormLr(base: number): number {
    return this.etaMin + ((base - this.etaMin) * (1 + Math.cos((Math.PI * this.lastEpoch) / this.TMax))) / 2;
  }
}

/** Linear warm-up: the factor goes from startFactor to endFactor over totalIters epochs. */
export class LinearLR extends LRScheduler {
  /** The factor of the first epoch, in (0, 1]. */
  readonly startFactor: number;
  /** The factor reached after totalIters epochs, in [0, 1]. */
  readonly endFactor: number;
  /** Epochs from startFactor to endFactor. */
  readonly totalIters: number;
  /** The factor goes linearly from startFactor (default 1/3) to endFactor (default 1) over totalIters (default 5) epochs, as torch's LinearLR. */
  constructor(optimizer: unknown, options: { startFactor?: number; endFactor?: number; totalIters?: number } = {}) {
    super('LinearLR', optimizer);
    checkOptions('LinearLR', options, ['startFactor', 'endFactor', 'totalIters']);
    this.startFactor = checkNumber('LinearLR', 'startFactor', options.startFactor ?? 1 / 3, { min: 0, max: 1, minExclusive: true });
    this.endFactor = checkNumber('LinearLR', 'endFactor', options.endFactor ?? 1, { min: 0, max: 1 });
    this.totalIters = checkNumber('LinearLR', 'totalIters', options.totalIters ?? 5, { min: 1, integer: true });
    this.initialStep();
  }
  protected getLr(lr: number): number {
    const e = this.lastEpoch;
    if (e === 0) return lr * this.startFactor;
    if (e > this.totalIters) return lr;
    const d = this.endFactor - this.startFactor;
    return lr * (1 + d / (this.totalIters * this.startFactor + (e - 1) * d));
  }
  protected override closedFormLr(base: number): number {
    return base * (this.startFactor + ((this.endFactor - this.startFactor) * Math.min(this.totalIters, this.lastEpoch)) / this.totalIters);
  }
}

/** One scheduler after another, switching at the milestones (warm-up then decay). */
export class SequentialLR extends LRScheduler {
  /** The schedulers, in the order they take over. */
  readonly schedulers: readonly LRScheduler[];
  /** The epochs at which the next scheduler takes over (one fewer than the schedulers). */
  readonly milestones: readonly number[];
  /** Runs schedulers[0] until milestones[0], then schedulers[1], …, as torch's SequentialLR (each must belong to
   * `optimizer`; their construction steps are undone). */
  constructor(optimizer: unknown, schedulers: LRScheduler[], milestones: number[]) {
    super('SequentialLR', optimizer);
    if (!Array.isArray(schedulers) || schedulers.length === 0) throw new TypeError('SequentialLR: expected a non-empty array of schedulers');
    schedulers.forEach((s, i) => {
      if (!(s instanceof LRScheduler)) throw new TypeError(`SequentialLR: schedulers[${i}] is ${describe(s)}, expected a scheduler`);
      if (s.optimizer !== this.optimizer) throw new RangeError(`SequentialLR: schedulers[${i}] belongs to another optimizer`);
    });
    if (!Array.isArray(milestones) || milestones.length !== schedulers.length - 1)
      throw new RangeError(`SequentialLR: expected ${schedulers.length - 1} milestones for ${schedulers.length} schedulers, got ${Array.isArray(milestones) ? milestones.length : describe(milestones)}`);
    this.schedulers = [...schedulers];
    this.milestones = [...milestones];
    this.lastEpoch = 0;
    // As PyTorch: reset the learning rate, undo the step each scheduler took at construction, and take the
    // initial step of the first one only.
    for (const g of this.optimizer.groups) g.options.lr = g.initialLr!;
    for (const s of this.schedulers) s.lastEpoch -= 1;
    this.schedulers[0].initialStep();
    this.lastLrs = this.schedulers[0].getLastLr();
  }
  /** Steps the scheduler whose turn it is (restarting it at its milestone). */
  override step(): void {
    this.lastEpoch++;
    let idx = 0;
    while (idx < this.milestones.length && this.milestones[idx] <= this.lastEpoch) idx++;
    const s = this.schedulers[idx];
    if (idx > 0 && this.milestones[idx - 1] === this.lastEpoch) s.step(0);
    else s.step();
    this.lastLrs = s.getLastLr();
  }
  protected getLr(lr: number): number {
    return lr;
  }
  /** Its own state and each scheduler's. */
  override stateDict(): Record<string, unknown> {
    return { ...super.stateDict(), schedulers: this.schedulers.map((s) => s.stateDict()) };
  }
  override checkState(sd: unknown): void {
    super.checkState(sd);
    const children = (sd as Record<string, unknown>).schedulers;
    if (!Array.isArray(children) || children.length !== this.schedulers.length)
      throw new TypeError(`SequentialLR.loadStateDict: expected the state of ${this.schedulers.length} schedulers`);
    this.schedulers.forEach((s, i) => s.checkState(children[i]));
  }
  override applyState(sd: Record<string, unknown>): void {
    super.applyState(sd);
    const children = sd.schedulers as Record<string, unknown>[];
    this.schedulers.forEach((s, i) => s.applyState(children[i]));
  }
}

/** Options of {@link OneCycleLR}: torch's, camelCase. Give totalSteps, or epochs and stepsPerEpoch. */
export interface OneCycleOptions {
  /** Steps in the cycle (scheduler.step() calls). */
  totalSteps?: number;
  /** With stepsPerEpoch, the cycle's length in epochs. */
  epochs?: number;
  /** With epochs, steps per epoch. */
  stepsPerEpoch?: number;
  /** The share of the cycle spent raising the rate (default 0.3). */
  pctStart?: number;
  /** How the rate moves between its points: 'cos' (default) or 'linear'. */
  annealStrategy?: 'cos' | 'linear';
  /** Cycle the momentum (or Adam's β1) inversely to the rate (default true). */
  cycleMomentum?: boolean;
  /** The lowest momentum, at the peak rate (default 0.85). */
  baseMomentum?: number;
  /** The highest momentum, at the start and the end (default 0.95). */
  maxMomentum?: number;
  /** The initial rate is maxLr / divFactor (default 25). */
  divFactor?: number;
  /** The final rate is the initial rate / finalDivFactor (default 1e4). */
  finalDivFactor?: number;
  /** Three phases (up, back down to the initial rate, then the annihilation) instead of two (default false). */
  threePhase?: boolean;
}

/** The 1cycle policy: lr up to maxLr and back down far below the start, momentum (or Adam's β1) the other way. */
export class OneCycleLR extends LRScheduler {
  /** Steps in the cycle. */
  readonly totalSteps: number;
  /** The peak rate. */
  readonly maxLr: number;
  /** The final rate: the initial one / finalDivFactor. */
  readonly minLr: number;
  private readonly phases: { end: number; lr: [number, number]; momentum: [number, number] }[];
  private readonly anneal: (start: number, end: number, pct: number) => number;
  private readonly cycleMomentum: boolean;

  /** A cycle peaking at maxLr; stepped once per batch. Stepping past totalSteps is a RangeError. */
  constructor(optimizer: unknown, maxLr: number, options: OneCycleOptions = {}) {
    const where = 'OneCycleLR';
    const opt = checkOptimizer(where, optimizer);
    checkOptions(where, options, ['totalSteps', 'epochs', 'stepsPerEpoch', 'pctStart', 'annealStrategy', 'cycleMomentum', 'baseMomentum', 'maxMomentum', 'divFactor', 'finalDivFactor', 'threePhase']);
    const lrMax = checkNumber(where, 'maxLr', maxLr, { min: 0 });
    const divFactor = checkNumber(where, 'divFactor', options.divFactor ?? 25, { min: 0, minExclusive: true });
    for (const g of opt.groups) g.initialLr = lrMax / divFactor; // PyTorch sets group['initial_lr'] before the base class reads it
    super(where, opt);
    let total: number;
    if (options.totalSteps !== undefined) total = checkNumber(where, 'totalSteps', options.totalSteps, { min: 1, integer: true });
    else if (options.epochs !== undefined && options.stepsPerEpoch !== undefined)
      total = checkNumber(where, 'epochs', options.epochs, { min: 1, integer: true }) * checkNumber(where, 'stepsPerEpoch', options.stepsPerEpoch, { min: 1, integer: true });
    else throw new TypeError('OneCycleLR: give totalSteps, or epochs and stepsPerEpoch');
    this.totalSteps = total;
    const pct = checkNumber(where, 'pctStart', options.pctStart ?? 0.3, { min: 0, max: 1 });
    const strategy = options.annealStrategy ?? 'cos';
    if (strategy !== 'cos' && strategy !== 'linear') throw new RangeError(`OneCycleLR: annealStrategy must be 'cos' or 'linear', got ${String(strategy)}`);
    this.anneal = strategy === 'cos'
      ? (s, e, p) => e + ((s - e) / 2) * (Math.cos(Math.PI * p) + 1)
      : (s, e, p) => (e - s) * p + s;
    this.maxLr = lrMax;
    const initial = this.baseLr;
    this.minLr = initial / checkNumber(where, 'finalDivFactor', options.finalDivFactor ?? 1e4, { min: 0, minExclusive: true });
    const baseM = checkNumber(where, 'baseMomentum', options.baseMomentum ?? 0.85);
    const maxM = checkNumber(where, 'maxMomentum', options.maxMomentum ?? 0.95);
    this.phases = options.threePhase
      ? [
          { end: pct * total - 1, lr: [initial, lrMax], momentum: [maxM, baseM] },
          { end: 2 * pct * total - 2, lr: [lrMax, initial], momentum: [baseM, maxM] },
          { end: total - 1, lr: [initial, this.minLr], momentum: [maxM, maxM] },
        ]
      : [
          { end: pct * total - 1, lr: [initial, lrMax], momentum: [maxM, baseM] },
          { end: total - 1, lr: [lrMax, this.minLr], momentum: [baseM, maxM] },
        ];
    this.cycleMomentum = options.cycleMomentum ?? true;
    if (this.cycleMomentum) {
      if (!('momentum' in this.optimizer.options) && !('betas' in this.optimizer.options))
        throw new TypeError('OneCycleLR: the optimizer has neither momentum nor betas; pass { cycleMomentum: false }');
      this.setMomentum(maxM);
    }
    this.initialStep();
  }

  private setMomentum(m: number): void {
    for (const g of this.optimizer.groups) {
      const o = g.options as { momentum?: number; betas?: [number, number] };
      if (o.betas) o.betas = [m, o.betas[1]];
      else o.momentum = m;
    }
  }

  protected getLr(): number {
    const step = this.lastEpoch;
    if (step > this.totalSteps) throw new RangeError(`OneCycleLR: tried to step ${step + 1} times; totalSteps is ${this.totalSteps}`);
    let start = 0;
    for (let i = 0; i < this.phases.length; i++) {
      const phase = this.phases[i];
      if (step <= phase.end || i === this.phases.length - 1) {
        const pct = (step - start) / (phase.end - start);
        if (this.cycleMomentum) this.setMomentum(this.anneal(phase.momentum[0], phase.momentum[1], pct));
        return this.anneal(phase.lr[0], phase.lr[1], pct);
      }
      start = phase.end;
    }
    return this.baseLr;
  }
}

/** Options of {@link ReduceLROnPlateau}: torch's, camelCase. */
export interface PlateauOptions {
  /** Whether the metric should go down ('min', the default) or up ('max'). */
  mode?: 'min' | 'max';
  /** The factor a reduction multiplies the rate by, in [0, 1) (default 0.1). */
  factor?: number;
  /** Epochs without improvement before a reduction (default 10). */
  patience?: number;
  /** The least change that counts as an improvement (default 1e-4). */
  threshold?: number;
  /** threshold relative to the best value ('rel', the default) or absolute ('abs'). */
  thresholdMode?: 'rel' | 'abs';
  /** Epochs to wait after a reduction before counting again (default 0). */
  cooldown?: number;
  /** The rate is never reduced below this (default 0). */
  minLr?: number;
  /** A reduction smaller than this is skipped (default 1e-8). */
  eps?: number;
}

/** Multiplies the rate by `factor` when a watched metric has stopped improving for `patience` epochs, as
 * torch.optim.lr_scheduler.ReduceLROnPlateau; step(metric) once per epoch. */
export class ReduceLROnPlateau {
  /** The optimizer whose learning rates it reduces. */
  readonly optimizer: AnyOptimizer;
  /** Whether the metric should go down or up. */
  readonly mode: 'min' | 'max';
  /** The factor of a reduction. */
  readonly factor: number;
  /** Epochs without improvement before a reduction. */
  readonly patience: number;
  /** The least change that counts as an improvement. */
  readonly threshold: number;
  /** Whether threshold is relative or absolute. */
  readonly thresholdMode: 'rel' | 'abs';
  /** Epochs to wait after a reduction. */
  readonly cooldown: number;
  /** The lowest rate. */
  readonly minLr: number;
  /** A reduction smaller than this is skipped. */
  readonly eps: number;
  /** The best metric so far (±Infinity before the first). */
  best: number;
  /** Epochs since the last improvement. */
  numBadEpochs = 0;
  /** Epochs of cooldown left. */
  cooldownCounter = 0;
  /** Steps taken. */
  lastEpoch = 0;

  /** Watches the metric given to step() (mode 'min' by default). */
  constructor(optimizer: unknown, options: PlateauOptions = {}) {
    const where = 'ReduceLROnPlateau';
    this.optimizer = checkOptimizer(where, optimizer);
    checkOptions(where, options, ['mode', 'factor', 'patience', 'threshold', 'thresholdMode', 'cooldown', 'minLr', 'eps']);
    this.mode = options.mode ?? 'min';
    if (this.mode !== 'min' && this.mode !== 'max') throw new RangeError(`${where}: mode must be 'min' or 'max', got ${String(this.mode)}`);
    this.thresholdMode = options.thresholdMode ?? 'rel';
    if (this.thresholdMode !== 'rel' && this.thresholdMode !== 'abs') throw new RangeError(`${where}: thresholdMode must be 'rel' or 'abs', got ${String(this.thresholdMode)}`);
    this.factor = checkNumber(where, 'factor', options.factor ?? 0.1, { min: 0, max: 1, maxExclusive: true });
    this.patience = checkNumber(where, 'patience', options.patience ?? 10, { min: 0, integer: true });
    this.threshold = checkNumber(where, 'threshold', options.threshold ?? 1e-4, { min: 0 });
    this.cooldown = checkNumber(where, 'cooldown', options.cooldown ?? 0, { min: 0, integer: true });
    this.minLr = checkNumber(where, 'minLr', options.minLr ?? 0, { min: 0 });
    this.eps = checkNumber(where, 'eps', options.eps ?? 1e-8, { min: 0 });
    this.best = this.mode === 'min' ? Infinity : -Infinity;
  }

  private isBetter(a: number): boolean {
    const t = this.threshold;
    if (this.mode === 'min') return this.thresholdMode === 'rel' ? a < this.best * (1 - t) : a < this.best - t;
    return this.thresholdMode === 'rel' ? a > this.best * (t + 1) : a > this.best + t;
  }

  /** Records one epoch's metric and reduces the rates when it has not improved for more than `patience` epochs. */
  step(metric: number): void {
    const current = checkNumber('ReduceLROnPlateau.step', 'metric', metric);
    this.lastEpoch++;
    if (this.isBetter(current)) {
      this.best = current;
      this.numBadEpochs = 0;
    } else {
      this.numBadEpochs++;
    }
    if (this.cooldownCounter > 0) {
      this.cooldownCounter--;
      this.numBadEpochs = 0;
    }
    if (this.numBadEpochs > this.patience) {
      for (const g of this.optimizer.groups) {
        const old = g.options.lr;
        const next = Math.max(old * this.factor, this.minLr);
        if (old - next > this.eps) g.options.lr = next;
      }
      this.cooldownCounter = this.cooldown;
      this.numBadEpochs = 0;
    }
  }

  /** The current learning rate of each parameter group. */
  getLastLr(): number[] {
    return this.optimizer.groups.map((g) => g.options.lr);
  }

  /** The state (best, counters, epoch), JSON-ready, for loadStateDict and checkpoints. */
  stateDict(): Record<string, unknown> {
    return { best: this.best, numBadEpochs: this.numBadEpochs, cooldownCounter: this.cooldownCounter, lastEpoch: this.lastEpoch };
  }
  /** Loads a state written by stateDict(); checks all of it first and loads nothing on an error. */
  loadStateDict(sd: Record<string, unknown>): void {
    const where = 'ReduceLROnPlateau.loadStateDict';
    if (sd === null || typeof sd !== 'object' || Array.isArray(sd)) throw new TypeError(`${where}: expected an object, got ${describe(sd)}`);
    for (const key of ['numBadEpochs', 'cooldownCounter', 'lastEpoch'] as const) count(where, sd, key, 0);
    // null: ±Infinity (no improvement seen yet) after a trip through JSON
    if (sd.best !== null && (typeof sd.best !== 'number' || Number.isNaN(sd.best)))
      throw new TypeError(`${where}: 'best' must be a number or null, got ${describe(sd.best)}`);
    this.best = sd.best === null ? (this.mode === 'min' ? Infinity : -Infinity) : (sd.best as number);
    this.numBadEpochs = sd.numBadEpochs as number;
    this.cooldownCounter = sd.cooldownCounter as number;
    this.lastEpoch = sd.lastEpoch as number;
  }
}
