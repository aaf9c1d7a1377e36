// Losses: forward(pred, target) returns a one-element tensor with PyTorch's reduction='mean', computed
// together with its gradient in one fused kernel; backward() returns that gradient, dL/dpred.
import type { Backend } from './backend.js';
import { checkNumber, checkOptions, describe } from './errors.js';
import { checkTensor, type Tensor } from './tensor.js';
import { EW, ewKernel } from './autograd/core.js';
import { record } from './autograd/engine.js';
import { fmtShape } from './nn/util.js';
import { sameShape, Workspace } from './workspace.js';

/**
 * The base of the loss classes. forward(pred, target) returns a one-element tensor with PyTorch's reduction='mean',
 * computed together with its gradient by one fused kernel; backward() returns that gradient, dL/dpred (for a
 * hand-written training loop over the layers' backward). On the autograd graph, `loss.backward()` on the returned
 * tensor works as for any tensor.
 */
export abstract class Loss {
  /** @internal */
  readonly ws = new Workspace();
  private dpred?: Tensor;
  private reusingOutputs = false;
  /** The loss's name in messages: 'MSELoss', 'CrossEntropyLoss', …. */
  abstract readonly label: string;

  /** As Module.reuseOutputs: the loss value and its gradient are written into the same two tensors at every step. */
  reuseOutputs(on = true): this {
    if (typeof on !== 'boolean') throw new TypeError(`${this.label}.reuseOutputs: expected a boolean, got ${describe(on)}`);
    if (on !== this.reusingOutputs) this.ws.reuse += on ? 1 : -1;
    this.reusingOutputs = on;
    return this;
  }

  /** The mean loss of pred against target as a one-element tensor (read it with `.item()`); pred must be float32
   * and on target's backend. The gradient for backward() is computed in the same kernel. */
  forward(pred: Tensor, target: Tensor): Tensor {
    checkTensor(this.label, pred, 'prediction');
    checkTensor(this.label, target, 'target');
    if (pred.dtype === 'int32') throw new TypeError(`${this.label}: prediction must be a float32 tensor, got int32`);
    if (target.backend !== pred.backend)
      throw new TypeError(`${this.label}: target is on '${target.device}' but the prediction is on '${pred.device}'`);
    this.check(pred, target);
    const b = pred.backend;
    const loss = this.ws.get('loss', b, []);
    const dpred = this.ws.get('dpred', b, pred.shape);
    this.run(b, loss, dpred, pred, target);
    this.dpred = dpred;
    // on the autograd graph: dL/dpred is the fused kernel's, scaled by the gradient that reaches the loss; the target
    // gets its negative where the loss is symmetric in the two (MSE, L1, Huber)
    const targetGrad = this.symmetric && target.dtype !== 'int32';
    const inputs = targetGrad ? [pred, target] : [pred];
    record(this.label, inputs, [loss], [dpred], ([g], [d]) => {
      if (!g) return inputs.map(() => null);
      const gp = ewKernel(this.label, EW.mul, [d, g]);
      return targetGrad ? [gp, ewKernel(this.label, EW.neg, [gp])] : [gp];
    });
    return loss;
  }

  /** @internal Whether dL/dtarget = −dL/dpred (the losses of pred − target). */
  protected readonly symmetric: boolean = false;

  /** dL/dpred of the mean loss of the last forward. */
  backward(): Tensor {
    if (!this.dpred) throw new Error(`${this.label}: backward called before forward`);
    return this.dpred;
  }

  /** @internal Throws unless target fits pred (shape, dtype, class range). */
  protected abstract check(pred: Tensor, target: Tensor): void;
  /** @internal The fused kernel: the mean loss into `loss`, its gradient into `dpred`. */
  protected abstract run(b: Backend, loss: Tensor, dpred: Tensor, pred: Tensor, target: Tensor): void;

  /** @internal pred and target: the same shape, both float. */
  protected checkSameShape(pred: Tensor, target: Tensor): void {
    if (target.dtype === 'int32') throw new TypeError(`${this.label}: target must be a float32 tensor, got int32`);
    if (!sameShape(pred.shape, target.shape))
      throw new RangeError(`${this.label}: target has shape ${fmtShape(target.shape)}, expected the prediction's shape ${fmtShape(pred.shape)}`);
  }
}

/** Mean squared error, mean((pred − target)²), as torch.nn.MSELoss; pred and target of one shape. */
export class MSELoss extends Loss {
  readonly label = 'MSELoss';
  protected override readonly symmetric = true;
  protected check(pred: Tensor, target: Tensor) { this.checkSameShape(pred, target); }
  protected run(b: Backend, loss: Tensor, dpred: Tensor, pred: Tensor, target: Tensor) {
    b.k.mse_loss(loss.buf, dpred.buf, pred.buf, target.buf, pred.size);
  }
}

/** Options of {@link CrossEntropyLoss}. */
export interface CrossEntropyOptions {
  /** A target value that contributes nothing to the loss or its gradient (default −100, PyTorch's). */
  ignoreIndex?: number;
}

/** Cross-entropy over logits [N, C] or [N, C, d…] with int32 class indices [N] or [N, d…]; log-softmax fused, the mean
 * over the targets that are not ignoreIndex, as torch.nn.CrossEntropyLoss. An index outside [0, C) is an error naming it. */
export class CrossEntropyLoss extends Loss {
  readonly label = 'CrossEntropyLoss';
  /** The target value that is ignored. */
  readonly ignoreIndex: number;
  /** ignoreIndex: an integer (default −100). */
  constructor(options: CrossEntropyOptions = {}) {
    super();
    checkOptions('CrossEntropyLoss', options, ['ignoreIndex']);
    this.ignoreIndex = checkNumber('CrossEntropyLoss', 'ignoreIndex', options.ignoreIndex ?? -100, { integer: true });
  }
  private dims(pred: Tensor): [number, number, number] {
    const s = pred.shape;
    if (s.length === 1) return [1, s[0], 1];
    const D = s.slice(2).reduce((a, d) => a * d, 1);
    return [s[0], s[1], D];
  }
  protected check(pred: Tensor, target: Tensor) {
    if (target.dtype !== 'int32') throw new TypeError(`CrossEntropyLoss: target must be int32 class indices (an Int32Array), got ${target.dtype}`);
    if (pred.shape.length === 0) throw new RangeError('CrossEntropyLoss: logits must be [N, C] or [N, C, d…], got a scalar');
    const expected = pred.shape.length === 1 ? [] : [pred.shape[0], ...pred.shape.slice(2)];
    if (!sameShape(target.shape, expected))
      throw new RangeError(`CrossEntropyLoss: target has shape ${fmtShape(target.shape)}, expected ${fmtShape(expected)} for logits ${fmtShape(pred.shape)}`);
    const C = this.dims(pred)[1];
    const r = target.intRange;
    if (r && target.size > 0) {
      if (r[1] >= C && r[1] !== this.ignoreIndex)
        throw new RangeError(`CrossEntropyLoss: target ${r[1]} is out of range: class indices must be in [0, ${C})`);
      if (r[0] < 0 && r[0] !== this.ignoreIndex)
        throw new RangeError(`CrossEntropyLoss: target ${r[0]} is out of range: class indices must be in [0, ${C})`);
    }
  }
  protected run(b: Backend, loss: Tensor, dpred: Tensor, pred: Tensor, target: Tensor) {
    const [N, C, D] = this.dims(pred);
    b.k.cross_entropy_loss(loss.buf, dpred.buf, pred.buf, target.buf, N, C, D, this.ignoreIndex);
  }
}

/** Mean absolute error, mean|pred − target|, as torch.nn.L1Loss; pred and target of one shape. */
export class L1Loss extends Loss {
  readonly label = 'L1Loss';
  protected override readonly symmetric = true;
  protected check(pred: Tensor, target: Tensor) { this.checkSameShape(pred, target); }
  protected run(b: Backend, loss: Tensor, dpred: Tensor, pred: Tensor, target: Tensor) {
    b.k.l1_loss(loss.buf, dpred.buf, pred.buf, target.buf, pred.size);
  }
}

/** Huber loss: ½d² where |d| < delta, delta·(|d| − ½delta) above, d = pred − target, averaged (PyTorch's HuberLoss). */
export class HuberLoss extends Loss {
  readonly label = 'HuberLoss';
  protected override readonly symmetric = true;
  /** Where the loss turns from quadratic to linear. */
  readonly delta: number;
  /** delta > 0 (default 1). */
  constructor(options: { delta?: number } = {}) {
    super();
    checkOptions('HuberLoss', options, ['delta']);
    this.delta = checkNumber('HuberLoss', 'delta', options.delta ?? 1, { min: 0, minExclusive: true });
  }
  protected check(pred: Tensor, target: Tensor) { this.checkSameShape(pred, target); }
  protected run(b: Backend, loss: Tensor, dpred: Tensor, pred: Tensor, target: Tensor) {
    b.k.huber_loss(loss.buf, dpred.buf, pred.buf, target.buf, pred.size, this.delta);
  }
}

/** Binary cross-entropy on logits, stable for large |x|. */
export class BCEWithLogitsLoss extends Loss {
  readonly label = 'BCEWithLogitsLoss';
  protected check(pred: Tensor, target: Tensor) { this.checkSameShape(pred, target); }
  protected run(b: Backend, loss: Tensor, dpred: Tensor, pred: Tensor, target: Tensor) {
    b.k.bce_with_logits_loss(loss.buf, dpred.buf, pred.buf, target.buf, pred.size);
  }
}

/** Binary cross-entropy on probabilities in [0, 1] (logs clamped at −100, as PyTorch). */
export class BCELoss extends Loss {
  readonly label = 'BCELoss';
  protected check(pred: Tensor, target: Tensor) { this.checkSameShape(pred, target); }
  protected run(b: Backend, loss: Tensor, dpred: Tensor, pred: Tensor, target: Tensor) {
    b.k.bce_loss(loss.buf, dpred.buf, pred.buf, target.buf, pred.size);
  }
}
