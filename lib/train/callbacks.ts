// Callbacks for fit, with Keras' names and semantics: EarlyStopping (optionally restoring the best
// weights), ModelCheckpoint (rg.save at the end of an epoch, every time or only on improvement),
// LearningRateScheduler (steps a scheduler, or applies a function of the epoch, through fit) and
// LearningRateMonitor (the learning rate in the logs and the History).
import { checkNumber, checkOptions, describe } from '../errors.js';
import { save } from '../io/model.js';
import type { Module } from '../nn/module.js';
import { LRScheduler, ReduceLROnPlateau } from '../optim/scheduler.js';
import type { Callback, Logs } from './types.js';

/** Whether a monitored metric improves downwards ('min'), upwards ('max'), or as its name says ('auto': up for names with 'acc', else down). */
export type Mode = 'min' | 'max' | 'auto';

/** Whether `current` improves on `best` by more than minDelta, in the metric's direction. */
class Monitor {
  best: number;
  private readonly sign: number;
  constructor(
    readonly name: string,
    mode: Mode,
    private readonly minDelta: number,
  ) {
    const direction = mode === 'auto' ? (/acc/.test(name) ? 'max' : 'min') : mode;
    this.sign = direction === 'max' ? 1 : -1;
    this.best = -this.sign * Infinity;
  }
  reset(): void {
    this.best = -this.sign * Infinity;
  }
  read(where: string, logs: Logs): number {
    const v = logs[this.name];
    if (typeof v !== 'number') throw new RangeError(`${where}: the logs have no '${this.name}'; available: ${Object.keys(logs).join(', ')} (pass validationData to fit for val_ metrics)`);
    return v;
  }
  improves(current: number): boolean {
    return this.sign * (current - this.best) > this.minDelta;
  }
}

function checkMode(where: string, mode: unknown): Mode {
  if (mode !== 'min' && mode !== 'max' && mode !== 'auto') throw new RangeError(`${where}: mode must be 'min', 'max' or 'auto', got ${describe(mode)}`);
  return mode;
}

/** Options of {@link EarlyStopping}: Keras', camelCase. */
export interface EarlyStoppingOptions {
  /** The metric watched (default 'val_loss'). */
  monitor?: string;
  /** The least change that counts as an improvement (default 0). */
  minDelta?: number;
  /** Epochs without improvement before training stops (default 0). */
  patience?: number;
  /** The metric's direction (default 'auto'). */
  mode?: Mode;
  /** On stopping, put back the weights of the best epoch (default false). */
  restoreBestWeights?: boolean;
}

/** Stops fit when the monitored metric has not improved for `patience` epochs. */
export class EarlyStopping implements Callback {
  /** Epochs without improvement before training stops. */
  readonly patience: number;
  /** Whether the best epoch's weights are put back on stopping. */
  readonly restoreBestWeights: boolean;
  /** The epoch at which training stopped (0 when it did not stop early). */
  stoppedEpoch = 0;
  /** The epoch whose weights were best. */
  bestEpoch = -1;
  private readonly monitor: Monitor;
  private wait = 0;
  private model?: Module;
  private bestWeights?: Record<string, Float32Array | Int32Array>;

  /** Watches options.monitor (default 'val_loss'); unknown option keys are a TypeError. */
  constructor(options: EarlyStoppingOptions = {}) {
    const where = 'EarlyStopping';
    checkOptions(where, options, ['monitor', 'minDelta', 'patience', 'mode', 'restoreBestWeights']);
    this.monitor = new Monitor(options.monitor ?? 'val_loss', checkMode(where, options.mode ?? 'auto'), Math.abs(checkNumber(where, 'minDelta', options.minDelta ?? 0)));
    this.patience = checkNumber(where, 'patience', options.patience ?? 0, { min: 0, integer: true });
    this.restoreBestWeights = options.restoreBestWeights ?? false;
  }
  setModel(model: Module): void {
    this.model = model;
  }
  onTrainBegin(): void {
    this.wait = 0;
    this.stoppedEpoch = 0;
    this.bestEpoch = -1;
    this.bestWeights = undefined;
    this.monitor.reset();
  }
  onEpochEnd(epoch: number, logs: Logs): void {
    const current = this.monitor.read('EarlyStopping', logs);
    if (this.monitor.improves(current)) {
      this.monitor.best = current;
      this.bestEpoch = epoch;
      this.wait = 0;
      if (this.restoreBestWeights && this.model)
        this.bestWeights = Object.fromEntries(Object.entries(this.model.stateDict()).map(([k, t]) => [k, t.toArray()]));
      return;
    }
    this.wait++;
    if (this.wait > this.patience && this.model) {
      this.stoppedEpoch = epoch;
      this.model.stopTraining = true;
      if (this.restoreBestWeights && this.bestWeights) {
        const sd = this.model.stateDict();
        for (const [k, v] of Object.entries(this.bestWeights)) sd[k].assign(v);
      }
    }
  }
}

/** Options of {@link ModelCheckpoint}: Keras', camelCase. */
export interface ModelCheckpointOptions {
  /** The metric saveBestOnly watches (default 'val_loss'). */
  monitor?: string;
  /** Save only when the monitored metric improved (default false: every epoch). */
  saveBestOnly?: boolean;
  /** The metric's direction (default 'auto'). */
  mode?: Mode;
}

/** Saves the model with rg.save at the end of each epoch; `{epoch}` in the path is replaced (1-based). */
export class ModelCheckpoint implements Callback {
  /** Whether only improving epochs are saved. */
  readonly saveBestOnly: boolean;
  /** Paths written so far. */
  readonly saved: string[] = [];
  private readonly monitor: Monitor;
  private model?: Module;

  /** Saves to `path` (`{epoch}` replaced by the epoch, from 1). */
  constructor(
    /** Where the model is saved; `{epoch}` is replaced by the epoch, from 1. */
    readonly path: string,
    options: ModelCheckpointOptions = {},
  ) {
    const where = 'ModelCheckpoint';
    if (typeof path !== 'string') throw new TypeError(`${where}: path must be a string, got ${describe(path)}`);
    checkOptions(where, options, ['monitor', 'saveBestOnly', 'mode']);
    this.monitor = new Monitor(options.monitor ?? 'val_loss', checkMode(where, options.mode ?? 'auto'), 0);
    this.saveBestOnly = options.saveBestOnly ?? false;
  }
  setModel(model: Module): void {
    this.model = model;
  }
  async onEpochEnd(epoch: number, logs: Logs): Promise<void> {
    if (!this.model) return;
    if (this.saveBestOnly) {
      const current = this.monitor.read('ModelCheckpoint', logs);
      if (!this.monitor.improves(current)) return;
      this.monitor.best = current;
    }
    const file = this.path.replaceAll('{epoch}', String(epoch + 1));
    await save(this.model, file);
    this.saved.push(file);
  }
}

/** Records the optimizer's learning rate as `lr` in each epoch's logs (and so in the History). */
export class LearningRateMonitor implements Callback {
  private model?: Module;
  setModel(model: Module): void {
    this.model = model;
  }
  onEpochEnd(_epoch: number, logs: Logs): void {
    const optimizer = this.model?.compiled?.optimizer;
    if (optimizer) logs.lr = optimizer.lr;
  }
}

/**
 * Drives the learning rate from fit: steps an LRScheduler at the end of each epoch (ReduceLROnPlateau with the
 * monitored metric), or, given a function (epoch, lr) → lr as in Keras, sets the rate at the start of each epoch.
 */
export class LearningRateScheduler implements Callback {
  private model?: Module;
  /** `schedule`: a scheduler of the compiled optimizer, or a function (epoch, lr) → lr. */
  constructor(
    /** The scheduler stepped after each epoch, or the function that sets the rate before it. */
    readonly schedule: LRScheduler | ReduceLROnPlateau | ((epoch: number, lr: number) => number),
    /** With ReduceLROnPlateau: the metric it is stepped with. */
    readonly options: {
      /** The metric given to ReduceLROnPlateau.step (default 'val_loss'). */
      monitor?: string;
    } = {},
  ) {
    if (!(schedule instanceof LRScheduler) && !(schedule instanceof ReduceLROnPlateau) && typeof schedule !== 'function')
      throw new TypeError(`LearningRateScheduler: expected a scheduler or a function (epoch, lr) => lr, got ${describe(schedule)}`);
    checkOptions('LearningRateScheduler', options, ['monitor']);
  }
  setModel(model: Module): void {
    this.model = model;
  }
  onEpochBegin(epoch: number): void {
    const optimizer = this.model?.compiled?.optimizer;
    if (typeof this.schedule === 'function' && optimizer) optimizer.lr = checkNumber('LearningRateScheduler', 'scheduled lr', this.schedule(epoch, optimizer.lr), { min: 0 });
  }
  onEpochEnd(_epoch: number, logs: Logs): void {
    if (this.schedule instanceof ReduceLROnPlateau) {
      const name = this.options.monitor ?? 'val_loss';
      const v = logs[name];
      if (typeof v !== 'number') throw new RangeError(`LearningRateScheduler: the logs have no '${name}' for ReduceLROnPlateau`);
      this.schedule.step(v);
    } else if (this.schedule instanceof LRScheduler) {
      this.schedule.step();
    }
  }
}
