// Activation layers: one elementwise forward kernel and its backward each. Sigmoid and Tanh differentiate
// through their output, ReLU, LeakyReLU and GELU through their input; Softmax works over the last dimension.
import type { Kernels } from '../backend.js';
import { checkNumber } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { Module } from './module.js';
import { checkFloat, checkGradShape } from './util.js';

type Saved = 'input' | 'output';

abstract class Elementwise extends Module {
  private saved?: Tensor;
  private yShape?: readonly number[];
  /** @internal Whether the backward reads the forward's input or its output. */
  protected abstract readonly uses: Saved;
  /** The layer as messages and summaries name it: `ReLU`, `LeakyReLU(0.01)`, …. */
  abstract get label(): string;
  /** @internal The forward kernel: y from x. */
  protected abstract run(k: Kernels, y: Tensor, x: Tensor): void;
  /** @internal The backward kernel: dx from dy and the saved input or output. */
  protected abstract grad(k: Kernels, dx: Tensor, dy: Tensor, saved: Tensor): void;

  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, this.label);
    checkFloat(this.label, x);
    const y = this.ws.get('y', x.backend, x.shape);
    this.run(x.backend.k, y, x);
    this.saved = this.uses === 'input' ? x : y;
    this.yShape = y.shape;
    return y;
  }
  /** @internal Takes the output of a forward that a preceding Linear computed in its epilogue (Sequential's
   * fusion), so that this layer's own backward still works. Only for ReLU and LeakyReLU with slope ≥ 0, whose
   * derivative reads the same from the output as from the input. */
  adoptOutput(y: Tensor): void {
    this.saved = y;
    this.yShape = y.shape;
  }

  override backward(dy: Tensor): Tensor {
    checkGradShape(this.label, this.checkInput(dy, this.label), this.yShape);
    const dx = this.ws.get('dx', dy.backend, dy.shape);
    this.grad(dy.backend.k, dx, dy, this.saved!);
    return dx;
  }
}

/** max(x, 0) elementwise, as torch.nn.ReLU; any shape. */
export class ReLU extends Elementwise {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  protected readonly uses = 'input';
  get label() { return 'ReLU'; }
  protected run(k: Kernels, y: Tensor, x: Tensor) { k.relu_forward(y.buf, x.buf, x.size); }
  protected grad(k: Kernels, dx: Tensor, dy: Tensor, x: Tensor) { k.relu_backward(dx.buf, dy.buf, x.buf, x.size); }
}

/** x where x > 0, else negativeSlope·x, elementwise, as torch.nn.LeakyReLU; any shape. */
export class LeakyReLU extends Elementwise {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  protected readonly uses = 'input';
  /** The slope for x ≤ 0. */
  readonly negativeSlope: number;
  /** negativeSlope: any number (default 0.01, PyTorch's). */
  constructor(negativeSlope = 0.01) {
    super();
    this.negativeSlope = checkNumber('LeakyReLU', 'negativeSlope', negativeSlope);
  }
  get label() { return `LeakyReLU(${this.negativeSlope})`; }
  protected run(k: Kernels, y: Tensor, x: Tensor) { k.leaky_relu_forward(y.buf, x.buf, x.size, this.negativeSlope); }
  protected grad(k: Kernels, dx: Tensor, dy: Tensor, x: Tensor) { k.leaky_relu_backward(dx.buf, dy.buf, x.buf, x.size, this.negativeSlope); }
}

/** 1 / (1 + e^−x) elementwise, as torch.nn.Sigmoid; any shape. */
export class Sigmoid extends Elementwise {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  protected readonly uses = 'output';
  get label() { return 'Sigmoid'; }
  protected run(k: Kernels, y: Tensor, x: Tensor) { k.sigmoid_forward(y.buf, x.buf, x.size); }
  protected grad(k: Kernels, dx: Tensor, dy: Tensor, y: Tensor) { k.sigmoid_backward(dx.buf, dy.buf, y.buf, y.size); }
}

/** The hyperbolic tangent elementwise, as torch.nn.Tanh; any shape. */
export class Tanh extends Elementwise {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  protected readonly uses = 'output';
  get label() { return 'Tanh'; }
  protected run(k: Kernels, y: Tensor, x: Tensor) { k.tanh_forward(y.buf, x.buf, x.size); }
  protected grad(k: Kernels, dx: Tensor, dy: Tensor, y: Tensor) { k.tanh_backward(dx.buf, dy.buf, y.buf, y.size); }
}

/** GELU, exact erf form (PyTorch's approximate='none'). */
export class GELU extends Elementwise {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  protected readonly uses = 'input';
  get label() { return 'GELU'; }
  protected run(k: Kernels, y: Tensor, x: Tensor) { k.gelu_forward(y.buf, x.buf, x.size); }
  protected grad(k: Kernels, dx: Tensor, dy: Tensor, x: Tensor) { k.gelu_backward(dx.buf, dy.buf, x.buf, x.size); }
}

/** Softmax over the last dimension. */
export class Softmax extends Elementwise {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  protected readonly uses = 'output';
  get label() { return 'Softmax'; }
  private rows(t: Tensor): [number, number] {
    if (t.shape.length === 0) throw new RangeError('Softmax: input must have at least one dimension, got a scalar');
    const C = t.shape[t.shape.length - 1];
    return [C === 0 ? 0 : t.size / C, C];
  }
  protected run(k: Kernels, y: Tensor, x: Tensor) { k.softmax_forward(y.buf, x.buf, ...this.rows(x)); }
  protected grad(k: Kernels, dx: Tensor, dy: Tensor, y: Tensor) { k.softmax_backward(dx.buf, dy.buf, y.buf, ...this.rows(y)); }
}
