// Gradient clipping, as torch.nn.utils.clip_grad_norm_ and clip_grad_value_, and L1/L2 weight penalties: in
// place, on the backend, over every parameter that requires a gradient.
import { checkNumber, checkOptions } from '../errors.js';
import { parameterList, type Parameter } from '../nn/module.js';
import { currentBackend } from '../backend.js';
import { empty, type Tensor } from '../tensor.js';
import { gradPending } from './optimizer.js';

function gradParams(where: string, params: Iterable<Parameter>): Parameter[] {
  return parameterList(where, params).filter((p) => p.requiresGrad);
}
/** The parameters that have a gradient to clip: as PyTorch skips a grad of None, one that zeroGrad() left pending
 * is left alone (reading it would write the zeros and make the next step() update the parameter). */
function clipParams(where: string, params: Iterable<Parameter>): Parameter[] {
  return gradParams(where, params).filter((p) => !gradPending(p));
}

/**
 * Scales the gradients so that their total norm (over all of them together) is at most maxNorm, with
 * PyTorch's coefficient maxNorm / (total + 1e-6) clamped to 1. Returns the total norm before clipping
 * (reading it waits for the queued work). normType: 2 (default) or Infinity.
 */
export function clipGradNorm(params: Iterable<Parameter>, maxNorm: number, options: { normType?: number } = {}): number {
  const where = 'clipGradNorm';
  checkOptions(where, options, ['normType']);
  checkNumber(where, 'maxNorm', maxNorm, { min: 0 });
  const normType = options.normType ?? 2;
  if (normType !== 2 && normType !== Infinity) throw new RangeError(`${where}: normType must be 2 or Infinity, got ${normType}`);
  const list = clipParams(where, params);
  if (list.length === 0) return 0;
  const backend = list[0].value.backend;
  const inf = normType === Infinity;
  const acc = empty(backend, [1]);
  try {
    for (const p of list) backend.k.norm_accumulate(acc.buf, p.grad.buf, p.grad.size, inf);
    for (const p of list) backend.k.clip_by_norm(p.grad.buf, acc.buf, p.grad.size, maxNorm, inf);
    const v = acc.item();
    return inf ? v : Math.sqrt(v);
  } finally {
    acc.dispose();
  }
}

/** Clamps every gradient element to [−clipValue, clipValue]. */
export function clipGradValue(params: Iterable<Parameter>, clipValue: number): void {
  checkNumber('clipGradValue', 'clipValue', clipValue, { min: 0 });
  for (const p of clipParams('clipGradValue', params)) p.grad.backend.k.clamp(p.grad.buf, p.grad.size, -clipValue, clipValue);
}

/** Options of {@link applyPenalty}. */
export interface PenaltyOptions {
  /** Weight of the L1 penalty l1·Σ|w| (default 0). */
  l1?: number;
  /** Weight of the L2 penalty l2·Σw² (default 0). */
  l2?: number;
}

/**
 * Adds the gradient of the penalty l1·Σ|w| + l2·Σw² to each parameter's gradient (call it after backward) and
 * returns the penalty's value as a one-element tensor (reading it waits for the queued work). fit applies the
 * penalties given to compile({ penalties }) this way and reports the loss with them.
 */
export function applyPenalty(params: Iterable<Parameter>, options: PenaltyOptions): Tensor {
  const where = 'applyPenalty';
  checkOptions(where, options, ['l1', 'l2']);
  const l1 = checkNumber(where, 'l1', options.l1 ?? 0, { min: 0 });
  const l2 = checkNumber(where, 'l2', options.l2 ?? 0, { min: 0 });
  const list = gradParams(where, params);
  const backend = list.length ? list[0].value.backend : currentBackend();
  const acc = empty(backend, [1]);
  for (const p of list) backend.k.penalty(acc.buf, p.grad.buf, p.value.buf, p.value.size, l1, l2);
  return acc;
}
