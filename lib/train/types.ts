// Options and results of the Keras-style training conveniences.
import type { DataLoader } from '../data/loader.js';
import type { Loss } from '../losses.js';
import type { Module, Parameter } from '../nn/module.js';
import type { DiagnosticsOptions } from './diagnostics.js';
import type { DashboardOptions } from './dashboard.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { Tensor } from '../tensor.js';

/** Options of Module.compile: what fit and evaluate train and measure with. */
export interface CompileOptions {
  /** The optimizer, as an instance over the model's parameters. */
  optimizer: Optimizer<{
    /** The learning rate. */
    lr: number;
  }>;
  /** The loss, as an instance (new rg.CrossEntropyLoss()). */
  loss: Loss;
  /** Metrics logged besides the loss: 'accuracy' (the argmax of the output against int32 class indices). */
  metrics?: 'accuracy'[];
  /** L1 / L2 penalties on chosen parameters (e.g. the weights and not the biases), added to the loss and its gradient. */
  penalties?: {
    /** The parameters penalised. */
    params: Iterable<Parameter>;
    /** Weight of l1·Σ|w| (default 0). */
    l1?: number;
    /** Weight of l2·Σw² (default 0). */
    l2?: number;
  }[];
}

/** Metrics by name, as callbacks receive them: `loss`, `accuracy`, `val_loss`, `val_accuracy`, `lr`, …. */
export type Logs = Record<string, number>;

/** Callback hooks, Keras style; each may be async. Set `model.stopTraining = true` to stop after the epoch. */
export interface Callback {
  /** Called by fit before training starts, with the model being trained. */
  setModel?(model: Module): void;
  /** Called once before the first epoch (logs empty). */
  onTrainBegin?(logs: Logs): void | Promise<void>;
  /** Called once after the last epoch, also when training stopped early (logs empty). */
  onTrainEnd?(logs: Logs): void | Promise<void>;
  /** Called at the start of each epoch (epoch from 0; logs empty). */
  onEpochBegin?(epoch: number, logs: Logs): void | Promise<void>;
  /** Called after each epoch with its logs (loss, metrics, val_ metrics); a callback may add entries, which reach the History. */
  onEpochEnd?(epoch: number, logs: Logs): void | Promise<void>;
  /** Called after each batch with its loss and its row count (`size`). */
  onBatchEnd?(batch: number, logs: Logs): void | Promise<void>;
}

/** Options of Module.fit. */
export interface FitOptions {
  /** Passes over the data (default 1). */
  epochs?: number;
  /** Rows per step with tensor data (default 32); a DataLoader brings its own. */
  batchSize?: number;
  /** Reshuffle tensor data every epoch (default true); a DataLoader shuffles by its own option. */
  shuffle?: boolean;
  /** Data evaluated after each epoch, logged as val_loss and val_ metrics: [x, y] or a DataLoader. */
  validationData?: [Tensor, Tensor] | DataLoader;
  /** Callbacks, called in order at each hook. */
  callbacks?: Callback[];
  /** 0 silent, 1 a progress bar on a terminal (one line per epoch elsewhere), 2 one line per epoch. */
  verbose?: 0 | 1 | 2;
  /** Per-parameter gradient norms and update/weight ratios in the History, and warnings for vanishing or exploding gradients. */
  diagnostics?: boolean | DiagnosticsOptions;
  /**
   * A live page of the training (loss, metrics, learning rate, gradient norms, throughput) served from this process:
   * a port (0: any free one), or the {@link DashboardOptions}; the address is printed when it starts.
   */
  dashboard?: number | DashboardOptions | false;
  /**
   * Data-parallel over the ranks of rg.distributed (after `await rg.distributed.init()`): rank 0's weights to every
   * rank, each rank an equal shard of every epoch (a DistributedSampler seeded by rank 0) in batches of `batchSize`,
   * the gradients averaged after each backward, the epoch's loss and accuracy over all the data; progress and the
   * callbacks that write (ModelCheckpoint, TensorBoard, the dashboard) on rank 0 only. Tensor data only.
   */
  distributed?: boolean;
  /**
   * Mixed precision for the whole fit, as wrapping it in `rg.autocast('bfloat16', …)`: matrix products and
   * convolutions with bfloat16 operands and float32 sums (on CPUs with AVX512-BF16), everything else float32.
   */
  autocast?: 'bfloat16' | false;
}

/** Options of Module.evaluate. */
export interface EvaluateOptions {
  /** Rows per batch with tensor data (default 256). */
  batchSize?: number;
  /** Each rank of rg.distributed evaluates its share of the rows; the loss and accuracy are those of all of them. */
  distributed?: boolean;
}
/** Options of Module.predict and predictAsync. */
export interface PredictOptions {
  /** Rows per forward (default 1024). */
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
  /** Coalesced batches run. */
  batches: number;
  /** predictAsync calls they served. */
  requests: number;
  /** Rows they held. */
  rows: number;
}

/** What fit returns: per-epoch logs, as Keras' History. */
export interface History {
  /** The epochs run, from 0 (fewer than asked when training stopped early). */
  epoch: number[];
  /** Each logged metric's value per epoch: `loss`, `accuracy`, `val_loss`, …. */
  history: Record<string, number[]>;
}
