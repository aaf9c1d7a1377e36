// Options and results of the Keras-style training conveniences.
import type { DataLoader } from '../data/loader.js';
import type { Loss } from '../losses.js';
import type { Module, Parameter } from '../nn/module.js';
import type { DiagnosticsOptions } from './diagnostics.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { Tensor } from '../tensor.js';

export interface CompileOptions {
  optimizer: Optimizer<{ lr: number }>;
  loss: Loss;
  metrics?: 'accuracy'[];
  /** L1 / L2 penalties on chosen parameters (e.g. the weights and not the biases), added to the loss and its gradient. */
  penalties?: { params: Iterable<Parameter>; l1?: number; l2?: number }[];
}

export type Logs = Record<string, number>;

/** Callback hooks, Keras style; each may be async. Set `model.stopTraining = true` to stop after the epoch. */
export interface Callback {
  /** Called by fit before training starts, with the model being trained. */
  setModel?(model: Module): void;
  onTrainBegin?(logs: Logs): void | Promise<void>;
  onTrainEnd?(logs: Logs): void | Promise<void>;
  onEpochBegin?(epoch: number, logs: Logs): void | Promise<void>;
  onEpochEnd?(epoch: number, logs: Logs): void | Promise<void>;
  onBatchEnd?(batch: number, logs: Logs): void | Promise<void>;
}

export interface FitOptions {
  epochs?: number;
  batchSize?: number;
  shuffle?: boolean;
  validationData?: [Tensor, Tensor] | DataLoader;
  callbacks?: Callback[];
  /** 0 silent, 1 a progress bar on a terminal (one line per epoch elsewhere), 2 one line per epoch. */
  verbose?: 0 | 1 | 2;
  /** Per-parameter gradient norms and update/weight ratios in the History, and warnings for vanishing or exploding gradients. */
  diagnostics?: boolean | DiagnosticsOptions;
}

export interface EvaluateOptions {
  batchSize?: number;
}
export interface PredictOptions {
  batchSize?: number;
}
/**
 * Dynamic batching of concurrent `predictAsync` calls on one model (`model.setBatching`): calls that arrive while a
 * batch runs, or within `maxDelayMs` of the first queued one, share one forward of up to `maxBatch` rows.
 */
export interface BatchingOptions {
  /** Most rows of one coalesced batch (default 256); a single larger call still runs, alone. 1 turns coalescing off. */
  maxBatch?: number;
  /** How long an idle model waits for more calls before it starts a batch (default 0: at once, after the current tick; at most 60,000). */
  maxDelayMs?: number;
}
/** Counts since the model was made: coalesced batches run, predictAsync calls they served, and their rows. */
export interface BatchingStats {
  batches: number;
  requests: number;
  rows: number;
}

/** What fit returns: per-epoch logs, as Keras' History. */
export interface History {
  epoch: number[];
  history: Record<string, number[]>;
}
