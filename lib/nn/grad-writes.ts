// Notices of writes into parameters' gradients, so that DistributedDataParallel can start averaging a bucket of
// gradients while the rest of the backward still runs (PyTorch's gradient-ready hooks). A write is reported once its
// kernel has been queued: autograd's accumulation into a parameter reports at once; a built-in layer's backward names
// its parameters first (Parameter.gradTargets) and queues the kernels that write them after, so what it named is
// reported when that module's backward returns (nested backwards report their own names, not their parent's).
// Writes under autograd.grad go to lent gradients and are not reported. Nothing is recorded while no one watches.
import { isCapturing } from '../autograd/engine.js';
import type { Parameter } from './module.js';

type Watcher = (p: Parameter) => void;
const watchers = new Set<Watcher>();
/** Parameters named by the module backwards now running, outermost first. */
const named: Parameter[] = [];

/** Calls `fn` with every parameter whose gradient a queued kernel writes, until the function returned is called. */
export function watchGradWrites(fn: Watcher): () => void {
  watchers.add(fn);
  named.length = 0; // names left by a backward that threw
  return () => watchers.delete(fn);
}

/** A kernel that writes p's gradient has been queued. */
export function gradWritten(p: Parameter): void {
  if (watchers.size === 0 || isCapturing()) return;
  for (const w of watchers) w(p);
}

/** The module backward now running will queue kernels that write these parameters' gradients. */
export function gradTargeted(params: readonly Parameter[]): void {
  if (watchers.size === 0 || isCapturing()) return;
  named.push(...params);
}

/** Where a module's backward begins: the mark to pass to moduleBackwardDone. */
export function moduleBackwardBegins(): number {
  return named.length;
}

/** A module's backward that began at `mark` has returned: what it named is written (queued). */
export function moduleBackwardDone(mark: number): void {
  if (named.length <= mark) return;
  for (const p of named.splice(mark)) gradWritten(p);
}
