// The Keras-style training loop: compile, fit, evaluate, predict. Each batch is gathered on the backend
// from the whole data set (one index upload per epoch), then forward → loss → backward → optimizer step,
// all queued; the loop awaits only the batch's loss value, which keeps the event loop free while the native
// thread computes, and which is where a NaN or infinite loss is caught.
import { autocast, isAutocastEnabled, type Backend } from '../backend.js';
import { checkNumber, checkOptions, describe, RetrogradError } from '../errors.js';
import { Loss } from '../losses.js';
import type { Module, Parameter } from '../nn/module.js';
import { fmtShape } from '../nn/util.js';
import { applyPenalty } from '../optim/clip.js';
import { gradPending, Optimizer } from '../optim/optimizer.js';
import { noGrad } from '../autograd/engine.js';
import { hasOwnBackward } from '../nn/graph.js';
import { permutation, uniform } from '../random.js';
import { distributed, DistributedDataParallel, DistributedSampler } from '../distributed.js';
import { checkTensor, empty, fromHost, Tensor } from '../tensor.js';
import { Workspace } from '../workspace.js';
import { ModelCheckpoint } from './callbacks.js';
import { Dashboard } from './dashboard.js';
import { GradientDiagnostics } from './diagnostics.js';
import { Progress } from './progress.js';
import { TensorBoard } from './tensorboard.js';
import { DataLoader, IterableDataset } from '../data/loader.js';
import type { Callback, CompileOptions, EvaluateOptions, FitOptions, History, Logs } from './types.js';

interface InFlight {
  step: number;
  rows: number;
  loss: Promise<Float32Array | Int32Array>;
  correct?: Promise<Float32Array | Int32Array>;
  diagnostics?: Promise<[string, string, number[]][]>;
}

/** The same promise, marked handled: a step still in flight when fit stops must not raise an unhandled rejection. */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

export interface Compiled {
  optimizer: Optimizer<{ lr: number }>;
  loss: Loss;
  metrics: 'accuracy'[];
  penalties: { params: Parameter[]; l1: number; l2: number }[];
}

export function compileModel(model: Module, options: CompileOptions): void {
  checkOptions('compile', options, ['optimizer', 'loss', 'metrics', 'penalties']);
  if (!options) throw new TypeError('compile: expected { optimizer, loss }');
  if (!(options.optimizer instanceof Optimizer)) throw new TypeError(`compile: optimizer must be an optimizer instance (new rg.Adam(model.parameters())), got ${describe(options.optimizer)}`);
  if (!(options.loss instanceof Loss)) throw new TypeError(`compile: loss must be a loss instance (new rg.CrossEntropyLoss()), got ${describe(options.loss)}`);
  const metrics = options.metrics ?? [];
  if (!Array.isArray(metrics)) throw new TypeError(`compile: metrics must be an array, got ${describe(metrics)}`);
  for (const m of metrics) if (m !== 'accuracy') throw new RangeError(`compile: unknown metric '${String(m)}'; known: accuracy`);
  const penalties = options.penalties ?? [];
  if (!Array.isArray(penalties)) throw new TypeError(`compile: penalties must be an array of { params, l1, l2 }, got ${describe(penalties)}`);
  const checked = penalties.map((pen, i) => {
    if (pen === null || typeof pen !== 'object') throw new TypeError(`compile: penalties[${i}] must be { params, l1, l2 }, got ${describe(pen)}`);
    const { params, ...weights } = pen;
    checkOptions(`compile (penalties[${i}])`, weights, ['l1', 'l2']);
    return { params: [...params], l1: checkNumber(`compile (penalties[${i}])`, 'l1', weights.l1 ?? 0, { min: 0 }), l2: checkNumber(`compile (penalties[${i}])`, 'l2', weights.l2 ?? 0, { min: 0 }) };
  });
  model.compiled = { optimizer: options.optimizer, loss: options.loss, metrics: [...metrics], penalties: checked };
}

/** Mini-batches of x (and y) gathered on the backend by an index tensor. */
export class Batches {
  readonly n: number;
  /** Rows an epoch takes: all n, or a rank's shard of them (distributed fit). */
  private rows: number;
  private readonly ws = new Workspace();
  private index?: Tensor;
  constructor(
    private readonly backend: Backend,
    private readonly x: Tensor,
    private readonly y: Tensor | undefined,
    readonly batchSize: number,
    rowsPerEpoch?: number,
  ) {
    this.n = x.shape[0];
    this.rows = rowsPerEpoch ?? this.n;
    this.ws.reuse = 1; // the batch tensors never leave the loop
  }
  get count(): number {
    return Math.ceil(this.rows / this.batchSize);
  }
  /** Starts an epoch in the given row order (default: every row, in order); a shorter order takes only those rows. */
  begin(order: Int32Array = Int32Array.from({ length: this.n }, (_, i) => i)): void {
    this.index?.dispose();
    this.index = fromHost(this.backend, order, [order.length]);
    this.rows = order.length;
  }
  get(i: number): [Tensor, Tensor] {
    return [this.getX(i), this.gather('y', this.y!, i)];
  }
  getX(i: number): Tensor {
    return this.gather('x', this.x, i);
  }
  private gather(key: string, src: Tensor, i: number): Tensor {
    const start = i * this.batchSize;
    const rows = Math.min(this.batchSize, this.rows - start);
    const cols = this.n === 0 ? 0 : src.size / this.n;
    const out = this.ws.get(key, this.backend, [rows, ...src.shape.slice(1)], src.dtype === 'int32' ? 'int32' : 'float');
    out.intRange = src.intRange;
    this.backend.k.gather_rows(out.buf, src.buf, this.index!.buf, rows, cols, this.n, start);
    return out;
  }
  dispose(): void {
    this.index?.dispose();
    this.ws.clear();
  }
}

function checkData(where: string, model: Module, x: unknown, y: unknown): [Tensor, Tensor] {
  const xt = checkTensor(where, x, 'x');
  const yt = checkTensor(where, y, 'y');
  if (xt.shape.length === 0 || yt.shape.length === 0) throw new RangeError(`${where}: x and y need a batch dimension, got ${fmtShape(xt.shape)} and ${fmtShape(yt.shape)}`);
  if (xt.shape[0] !== yt.shape[0]) throw new RangeError(`${where}: x has ${xt.shape[0]} samples but y has ${yt.shape[0]}`);
  const b = model.backend;
  for (const [name, t] of [['x', xt], ['y', yt]] as const)
    if (t.backend !== b) throw new TypeError(`${where}: ${name} is on '${t.device}' but the model is on '${b.name}'; move it with .to('${b.name}')`);
  return [xt, yt];
}

/** The targets metric 'accuracy' needs (int32 class indices [N]), checked before anything runs. */
function accuracyTargets(where: string, y: Tensor): void {
  if (y.dtype !== 'int32' || y.shape.length !== 1)
    throw new TypeError(`${where}: metric 'accuracy' needs int32 class targets [N], got ${y.dtype} targets ${fmtShape(y.shape)}; compile without metrics: ['accuracy'] for this loss`);
}

function accuracyShape(where: string, out: Tensor, y: Tensor): number {
  if (out.shape.length !== 2 || y.dtype !== 'int32' || y.shape.length !== 1)
    throw new TypeError(`${where}: metric 'accuracy' needs [N, C] outputs and int32 class targets [N], got outputs ${fmtShape(out.shape)} and ${y.dtype} targets ${fmtShape(y.shape)}`);
  return out.shape[1];
}

interface StepResult {
  loss: Tensor;
  stepStats?: Promise<[string, string, number[]][]>;
}

/** Marks the model busy (refusing overlapping calls); returns the undo. Buffer reuse is switched on per step (inStep). */
export function claim(model: Module, where: string): () => void {
  if (model.busy)
    throw new RetrogradError(`${where}: the model is busy with another fit, evaluate or predictAsync call; await it first`, 'BUSY');
  model.busy = true;
  const wasTraining = model.training;
  return () => {
    model.train(wasTraining);
    model.busy = false;
  };
}

function switchReuse(model: Module, loss: Loss | undefined, delta: 1 | -1): void {
  model.reuseBuffers(delta);
  if (loss) loss.ws.reuse += delta;
}

/** Runs fn (which queues one training or evaluation step) with the model's buffer reuse on. fit and evaluate await
 * reads between steps: a forward the caller runs meanwhile must get fresh tensors, not buffers the next step
 * overwrites, so reuse is on only while a step is being queued. */
export function inStep<T>(model: Module, loss: Loss | undefined, fn: () => T): T {
  switchReuse(model, loss, 1);
  try {
    return fn();
  } finally {
    switchReuse(model, loss, -1);
  }
}

/** An inference step (evaluate, predict): nothing recorded; buffers reused only by a model of built-in layers (a
 * module written with operations may call a layer twice in one forward, whose first output must survive). */
export function inferenceStep<T>(model: Module, loss: Loss | undefined, fn: () => T): T {
  return noGrad(() => (hasOwnBackward(model) ? inStep(model, loss, fn) : fn()));
}

/**
 * fit's guard against a non-finite step (NaN or infinity in the loss or a gradient): check_finite runs over the loss
 * and every written gradient before the optimizer; one that finds a bad value fails, and the native queue then skips
 * the optimizer kernels after it (a synchronous backend throws at once), so the weights stay those from before the
 * step. The failure surfaces at the step's loss read and is reported with the epoch, the step and the tensor's name.
 * Tags: 0 the loss, i + 1 the gradient of parameter i.
 */
class FiniteGuard {
  private readonly first: Tensor;
  private readonly named: [string, Parameter][];
  /** The optimizer's counters before each step still in flight, to undo the steps a failure skipped. */
  private readonly before = new Map<number, Map<Parameter, Record<string, number>>>();
  constructor(
    backend: Backend,
    model: Module,
    private readonly optimizer: Optimizer<{ lr: number }>,
  ) {
    this.first = fromHost(backend, Int32Array.of(-1), [1]); // no failure yet (check_finite's failures stick to it)
    this.named = model.namedParameters();
  }
  /** Queues the checks of step `step`, before its optimizer step. */
  check(loss: Tensor, step: number): void {
    this.before.set(step, this.optimizer.countersSnapshot());
    this.before.delete(step - 2); // at most two steps are in flight
    const k = this.first.backend.k;
    k.check_finite(this.first.buf, loss.buf, loss.size, 0);
    this.named.forEach(([, p], i) => {
      if (p.requiresGrad && !gradPending(p)) k.check_finite(this.first.buf, p.grad.buf, p.grad.size, i + 1);
    });
  }
  /** The error for a failed check at (epoch, step), both counted from 0; anything else as it came. */
  explain(e: unknown, epoch: number, step: number): unknown {
    if (!(e instanceof RetrogradError) || e.code !== 'NON_FINITE') return e;
    // the failed step and the one queued after it did not run: their step counts go back
    const counters = this.before.get(step);
    if (counters) this.optimizer.restoreCounters(counters);
    const m = /tensor (\d+) holds (\S+) at element (\d+)/.exec(e.message);
    if (!m) return e;
    const tag = Number(m[1]), value = m[2], kind = value === 'NaN' ? 'NaN' : 'infinite';
    const what = tag === 0 ? `the loss became ${kind}` : `the gradient of '${this.named[tag - 1]?.[0] ?? `parameter ${tag - 1}`}' became ${kind} (${value} at element ${m[3]})`;
    return new RetrogradError(`fit: ${what} at epoch ${epoch + 1}, step ${step + 1}; the step was not applied, the weights are those from before it`, 'NON_FINITE');
  }
  dispose(): void {
    this.first.dispose();
  }
}

async function runCallbacks(callbacks: Callback[], fn: (c: Callback) => void | Promise<void>): Promise<void> {
  for (const c of callbacks) await fn(c);
}

/** The batches of one epoch, from tensors (gathered on the backend) or from a DataLoader (owned: disposed after use). */
interface BatchSource {
  count?: number;
  epoch(shuffle: boolean): AsyncIterable<[Tensor, Tensor, boolean]>;
  dispose(): void;
}

/** Batches of tensor data; with `orderOf` (distributed fit and evaluate), each epoch takes the rows it gives. */
function tensorSource(batches: Batches, orderOf?: (epoch: number) => Int32Array): BatchSource {
  let epochs = 0;
  return {
    count: batches.count,
    async *epoch(shuffle) {
      batches.begin(orderOf ? orderOf(epochs++) : shuffle ? permutation(batches.n) : undefined);
      for (let i = 0; i < batches.count; i++) yield [...batches.get(i), false];
    },
    dispose: () => batches.dispose(),
  };
}

function loaderSource(loader: DataLoader, backend: Backend): BatchSource {
  return {
    count: loader.batchCount,
    async *epoch() {
      for await (const { x, y } of loader.batches(backend)) yield [x, y, true];
    },
    dispose: () => {},
  };
}

export async function fitModel(model: Module, x: Tensor | DataLoader, yOrOptions?: Tensor | FitOptions, maybeOptions?: FitOptions): Promise<History> {
  let options: FitOptions;
  let y: Tensor | undefined;
  if (x instanceof DataLoader) {
    if (yOrOptions instanceof Tensor) throw new TypeError('fit: a DataLoader brings its own targets; call fit(loader, options)');
    options = (yOrOptions as FitOptions | undefined) ?? maybeOptions ?? {};
  } else {
    y = yOrOptions as Tensor;
    options = maybeOptions ?? {};
  }
  checkOptions('fit', options, ['epochs', 'batchSize', 'shuffle', 'validationData', 'callbacks', 'verbose', 'diagnostics', 'dashboard', 'distributed', 'autocast']);
  const cast = options.autocast ?? false;
  if (cast !== false && cast !== 'bfloat16') throw new RangeError(`fit: autocast must be 'bfloat16' or false, got ${describe(cast)}`);
  if (cast && !isAutocastEnabled()) return autocast('bfloat16', () => fitModel(model, x, yOrOptions, maybeOptions));
  const compiled = model.compiled;
  if (!compiled) throw new Error('fit: the model is not compiled; call model.compile({ optimizer, loss }) first');
  const loader = x instanceof DataLoader ? x : undefined;
  const [xt, yt] = loader ? [undefined, undefined] : checkData('fit', model, x, y);
  const epochs = checkNumber('fit', 'epochs', options.epochs ?? 1, { min: 1, integer: true });
  const batchSize = checkNumber('fit', 'batchSize', options.batchSize ?? 32, { min: 1, integer: true });
  const distributedFit = options.distributed ?? false;
  if (typeof distributedFit !== 'boolean') throw new TypeError(`fit: distributed must be a boolean, got ${describe(distributedFit)}`);
  if (distributedFit && !distributed.initialized) throw new RetrogradError('fit: distributed: true needs await rg.distributed.init() first', 'INVALID_ARGUMENT');
  const sharding = loader?.dataset instanceof IterableDataset ? loader.dataset.sharding : undefined;
  const sharded = loader && (loader.dataset instanceof IterableDataset ? sharding?.worldSize === distributed.worldSize && sharding.rank === distributed.rank : loader.sampler instanceof DistributedSampler);
  if (distributedFit && loader && !sharded)
    throw new TypeError(
      loader.dataset instanceof IterableDataset
        ? `fit: distributed: true with a stream needs this rank's share of it: new rg.DataLoader(stream.shard(), { batchSize }) (every rank reads the stream and keeps one sample in ${distributed.worldSize})`
        : 'fit: distributed: true with a DataLoader needs one whose sampler is an rg.DistributedSampler (new rg.DataLoader(dataset, { batchSize, sampler: new rg.DistributedSampler(dataset.length, { seed }) })), so that each rank reads its own shard',
    );
  // several ranks: progress and the callbacks that write (checkpoints, TensorBoard, the dashboard) on rank 0 only
  const otherRank = distributedFit && distributed.rank !== 0;
  const verbose = otherRank ? 0 : checkNumber('fit', 'verbose', options.verbose ?? 1, { min: 0, max: 2, integer: true });
  const shuffle = options.shuffle ?? true;
  if (typeof shuffle !== 'boolean') throw new TypeError(`fit: shuffle must be a boolean, got ${describe(shuffle)}`);
  const given = options.callbacks ?? [];
  if (!Array.isArray(given)) throw new TypeError(`fit: callbacks must be an array, got ${describe(given)}`);
  // `dashboard: port` (or its options): the live page, as one more callback
  const all = options.dashboard === undefined || options.dashboard === false || otherRank ? given : [...given, new Dashboard(options.dashboard)];
  const callbacks = otherRank ? all.filter((c) => !(c instanceof ModelCheckpoint || c instanceof TensorBoard || c instanceof Dashboard)) : all;
  const validation = options.validationData;
  if (validation !== undefined && !(validation instanceof DataLoader)) {
    if (!Array.isArray(validation) || validation.length !== 2) throw new TypeError('fit: validationData must be [x, y] or a DataLoader');
    checkData('fit (validationData)', model, validation[0], validation[1]);
  }
  if (xt && xt.shape[0] === 0) throw new RangeError('fit: x has no samples');
  if (yt && compiled.metrics.includes('accuracy')) accuracyTargets('fit', yt);
  if (validation !== undefined && !(validation instanceof DataLoader) && compiled.metrics.includes('accuracy')) accuracyTargets('fit (validationData)', validation[1]);

  const release = claim(model, 'fit');
  const backend = model.backend;
  const { optimizer, loss: lossFn, metrics } = compiled;
  const wantAccuracy = metrics.includes('accuracy');
  // distributed: rank 0's weights everywhere, and a sampler seeded by rank 0 dealing each rank its shard per epoch
  const ddp = distributedFit && distributed.worldSize > 1 ? new DistributedDataParallel(model) : undefined;
  let sampler: DistributedSampler | undefined;
  if (ddp) await ddp.broadcastParameters();
  if (ddp && !loader) {
    const seed = await distributed.broadcast(fromHost(backend, Float32Array.of(Math.floor(uniform() * 2 ** 24)), [1]));
    sampler = new DistributedSampler(xt!.shape[0], { seed: seed.toArray('float32')[0], shuffle });
    seed.dispose();
  }
  const source = loader ? loaderSource(loader, backend) : tensorSource(new Batches(backend, xt!, yt!, batchSize, sampler?.perRank), sampler && ((e) => sampler.indices(e)));
  const history: History = { epoch: [], history: {} };
  const progress = new Progress(verbose, epochs, source.count ?? 0);
  const correct = empty(backend, [1]);
  const diagnostics = options.diagnostics ? new GradientDiagnostics(model, options.diagnostics) : undefined;
  const guard = new FiniteGuard(backend, model, optimizer);
  let lastQueued: InFlight | undefined;
  const handWritten = hasOwnBackward(model);
  model.stopTraining = false;
  try {
    {
      for (const c of callbacks) c.setModel?.(model);
      await runCallbacks(callbacks, (c) => c.onTrainBegin?.({}));
      for (let epoch = 0; epoch < epochs; epoch++) {
        model.train();
        await runCallbacks(callbacks, (c) => c.onEpochBegin?.(epoch, {}));
        backend.k.fill(correct.buf, 1, 0);
        progress.epochBegin(epoch);
        let lossSum = 0, seen = 0;
        // One step in flight: step s + 1 is queued before the loss of step s is awaited, so the native thread
        // never waits for JavaScript to queue work. Reads are snapshots taken in queue order.
        const settle = async (f: InFlight) => {
          let value: number;
          try {
            value = (await f.loss)[0];
          } catch (e) {
            throw guard.explain(e, epoch, f.step);
          }
          if (!Number.isFinite(value))
            throw new Error(`fit: the loss became ${Number.isNaN(value) ? 'NaN' : 'infinite'} at epoch ${epoch + 1}, step ${f.step + 1}`);
          lossSum += value * f.rows;
          seen += f.rows;
          progress.batchEnd(f.step + 1, lossSum / seen, f.correct ? (await f.correct)[0] / seen : undefined);
          if (f.diagnostics) diagnostics!.record(await f.diagnostics);
          if (callbacks.length) {
            const logs: Logs = { loss: value, size: f.rows };
            await runCallbacks(callbacks, (c) => c.onBatchEnd?.(f.step, logs));
          }
        };
        let inflight: InFlight | undefined;
        let step = 0;
        for await (const [xb, yb, owned] of source.epoch(shuffle)) {
          if (xb.backend !== backend) throw new TypeError(`fit: a batch is on '${xb.device}' but the model is on '${backend.name}'`);
          if (owned && wantAccuracy) accuracyTargets('fit', yb);
          // A model of built-in layers runs its hand-written backward with buffers reused and nothing recorded; a
          // model written with tensor operations runs on the graph, with fresh tensors (a module called twice in one
          // forward must not overwrite its first output).
          const runStep = <T>(f: () => T): T => (handWritten ? noGrad(() => inStep(model, lossFn, f)) : f());
          // forward and backward, then (distributed) the gradients averaged over the ranks, then the update
          // (distributed: the forward through ddp starts each bucket's average once the backward has written it; the
          // penalties, the same on every rank, are added to the averaged gradients)
          const penalize = (loss: Tensor) => {
            for (const pen of compiled.penalties) {
              const value = applyPenalty(pen.params, { l1: pen.l1, l2: pen.l2 });
              backend.k.axpy(loss.buf, value.buf, 1, 1); // the reported loss includes the penalty, as in Keras
              value.dispose();
            }
          };
          const forwardBackward = () => {
            const out = ddp ? ddp.forward(xb) : model.forward(xb);
            const loss = lossFn.forward(out, yb);
            const classes = wantAccuracy ? accuracyShape('fit', out, yb) : 0;
            model.zeroGrad();
            if (handWritten) model.backward(lossFn.backward(), false); // nothing needs dL/dx of the data
            else loss.backward();
            if (!ddp) penalize(loss);
            return { out, loss, classes };
          };
          const update = ({ out, loss, classes }: ReturnType<typeof forwardBackward>): StepResult => {
            guard.check(loss, step);
            diagnostics?.beforeStep();
            optimizer.step();
            const stepStats = diagnostics?.afterStep();
            if (wantAccuracy) backend.k.accuracy_count(correct.buf, out.buf, yb.buf, xb.shape[0], classes);
            return { loss, stepStats };
          };
          const explained = <T>(f: () => T): T => {
            try {
              return f();
            } catch (e) {
              throw guard.explain(e, epoch, step);
            }
          };
          let result: StepResult;
          if (ddp) {
            const fb = runStep(() => explained(forwardBackward));
            await ddp.syncGradients();
            result = runStep(() => explained(() => (penalize(fb.loss), update(fb))));
          } else result = runStep(() => explained(() => update(forwardBackward())));
          const { loss, stepStats } = result;
          const current: InFlight = {
            step, rows: xb.shape[0], loss: quiet(loss.data()),
            correct: wantAccuracy && progress.showsBar ? quiet(correct.data()) : undefined,
            diagnostics: stepStats,
          };
          lastQueued = current;
          // On a synchronous backend reads resolve at once: yield so that timers and I/O still run.
          if (owned) {
            // queued kernels keep their storages alive: the loader's tensors can go now
            xb.dispose();
            yb.dispose();
          }
          step++;
          if (!backend.async) await new Promise((resolve) => setImmediate(resolve));
          if (inflight) await settle(inflight);
          inflight = current;
        }
        if (!inflight) throw new RangeError('fit: the data gave no batch');
        await settle(inflight);
        let count = wantAccuracy ? (await correct.data())[0] : 0;
        if (ddp) {
          // every rank's sums: the epoch's logs are those of the whole data, the same on every rank
          [lossSum, seen, count] = await sumOverRanks(backend, [lossSum, seen, count]);
        }
        const logs: Logs = { loss: lossSum / seen };
        if (wantAccuracy) logs.accuracy = count / seen;
        if (validation) {
          const v = validation instanceof DataLoader
            ? await evaluateInner(model, loaderSource(validation, backend))
            : await evaluateInner(model, rankSource(backend, validation[0], validation[1], batchSize, ddp !== undefined), ddp !== undefined);
          for (const [k, val] of Object.entries(v)) logs[`val_${k}`] = val;
        }
        diagnostics?.epochEnd(logs);
        // Callbacks first (as Keras' History is the last of them): they may add to the logs (the learning rate).
        await runCallbacks(callbacks, (c) => c.onEpochEnd?.(epoch, logs));
        history.epoch.push(epoch);
        for (const [k, v] of Object.entries(logs)) (history.history[k] ??= []).push(v);
        progress.epochEnd(epoch, logs);
        if (model.stopTraining) break;
      }
      await runCallbacks(callbacks, (c) => c.onTrainEnd?.({}));
    }
  } finally {
    // a step queued after a failed one was refused by the guard: its read takes that refusal, so that it does not
    // surface at the caller's next read
    if (lastQueued) await Promise.allSettled([lastQueued.loss, lastQueued.correct, lastQueued.diagnostics]);
    progress.stop();
    source.dispose();
    correct.dispose();
    diagnostics?.dispose();
    guard.dispose();
    release();
  }
  return history;
}

/** Mean loss (and accuracy when compiled with it) over (x, y), in eval mode, accumulated on the backend. */
/** Mean loss (and accuracy when compiled with it), in eval mode, accumulated on the backend; one read at the end. */
/** Host numbers summed over the ranks of rg.distributed (an epoch's or an evaluation's loss sum and counts). */
async function sumOverRanks(backend: Backend, values: number[]): Promise<number[]> {
  const t = await distributed.allReduce(fromHost(backend, Float32Array.from(values), [values.length]));
  const sums = [...t.toArray('float32')];
  t.dispose();
  return sums;
}

/** Tensor data for evaluation; `shard` (several ranks): this rank's rows r, r + N, … only (no padding: each row counts once). */
function rankSource(backend: Backend, x: Tensor, y: Tensor, batchSize: number, shard: boolean): BatchSource {
  if (!shard) return tensorSource(new Batches(backend, x, y, batchSize));
  const { rank, worldSize } = distributed;
  const mine = Int32Array.from({ length: Math.max(0, Math.ceil((x.shape[0] - rank) / worldSize)) }, (_, k) => rank + k * worldSize);
  return tensorSource(new Batches(backend, x, y, batchSize, mine.length), () => mine);
}

/** `reduce`: every rank evaluated its shard; the sums of all ranks make the logs (the same on every rank). */
async function evaluateInner(model: Module, source: BatchSource, reduce = false): Promise<Logs> {
  const compiled = model.compiled!;
  const backend = model.backend;
  const wantAccuracy = compiled.metrics.includes('accuracy');
  const lossSum = empty(backend, [1]);
  const correct = empty(backend, [1]);
  const wasTraining = model.training;
  model.eval();
  try {
    let n = 0;
    for await (const [xb, yb, owned] of source.epoch(false)) {
      inferenceStep(model, compiled.loss, () => {
        const out = model.forward(xb);
        const loss = compiled.loss.forward(out, yb);
        backend.k.axpy(lossSum.buf, loss.buf, 1, xb.shape[0]);
        if (wantAccuracy) backend.k.accuracy_count(correct.buf, out.buf, yb.buf, xb.shape[0], accuracyShape('evaluate', out, yb));
      });
      n += xb.shape[0];
      if (owned) {
        xb.dispose();
        yb.dispose();
      }
    }
    let sum = (await lossSum.data())[0], right = wantAccuracy ? (await correct.data())[0] : 0;
    if (reduce) {
      [sum, n, right] = await sumOverRanks(backend, [sum, n, right]);
    }
    n = Math.max(1, n);
    const logs: Logs = { loss: sum / n };
    if (wantAccuracy) logs.accuracy = right / n;
    return logs;
  } finally {
    model.train(wasTraining);
    source.dispose();
    lossSum.dispose();
    correct.dispose();
  }
}

/** evaluate(x, y, options) with tensors, or evaluate(loader) with a DataLoader. */
export async function evaluateModel(model: Module, x: Tensor | DataLoader, yOrOptions?: Tensor | EvaluateOptions, maybeOptions?: EvaluateOptions): Promise<Logs> {
  const loader = x instanceof DataLoader ? x : undefined;
  if (loader && yOrOptions instanceof Tensor) throw new TypeError('evaluate: a DataLoader brings its own targets; call evaluate(loader)');
  const options = (loader ? (yOrOptions as EvaluateOptions | undefined) : maybeOptions) ?? {};
  checkOptions('evaluate', options, ['batchSize', 'distributed']);
  if (!model.compiled) throw new Error('evaluate: the model is not compiled; call model.compile({ optimizer, loss }) first');
  const batchSize = checkNumber('evaluate', 'batchSize', options.batchSize ?? 256, { min: 1, integer: true });
  const dist = options.distributed ?? false;
  if (typeof dist !== 'boolean') throw new TypeError(`evaluate: distributed must be a boolean, got ${describe(dist)}`);
  if (dist && !distributed.initialized) throw new RetrogradError('evaluate: distributed: true needs await rg.distributed.init() first', 'INVALID_ARGUMENT');
  if (dist && loader) throw new TypeError('evaluate: distributed: true takes tensor data (x, y)');
  const shard = dist && distributed.worldSize > 1;
  const source = loader ? loaderSource(loader, model.backend) : rankSource(model.backend, ...checkData('evaluate', model, x, yOrOptions), batchSize, shard);
  const release = claim(model, 'evaluate');
  try {
    return await evaluateInner(model, source, shard);
  } finally {
    release();
  }
}
