// Sequential: the layers in order. Its backward is backpropagation itself: the chain rule applied layer by
// layer, last to first, each layer handed the gradient of the one after it. A Linear followed by ReLU or
// LeakyReLU runs as one fused kernel each way (bias and activation in the matrix product's epilogue; the
// activation's derivative with the bias gradient), with the same results as the two layers apart.
import { describe } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { ACT, type ActCode } from '../backend.js';
import { LeakyReLU, ReLU } from './activation.js';
import { Linear } from './linear.js';
import { Module } from './module.js';
import { isGradEnabled } from '../autograd/engine.js';
import { moduleBackwardBegins, moduleBackwardDone } from './grad-writes.js';
import { freshOutputs } from '../workspace.js';

/**
 * The layers in order, as torch.nn.Sequential: forward runs each on the output of the one before; backward is the
 * chain rule layer by layer, last to first. Parameters are named by the layer's index (`0.weight`, `2.bias`). A
 * Linear followed by ReLU or LeakyReLU runs as one fused kernel each way.
 */
export class Sequential extends Module {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  /** The layers, as given. */
  readonly layers: readonly Module[];
  /** fused[i]: in the last forward, layers[i] (a Linear) also computed layers[i + 1]'s activation. */
  private fused: boolean[] = [];

  /** One array of modules (not several arguments); each is registered under its index. */
  constructor(modules: Module[]) {
    super();
    if (!Array.isArray(modules)) throw new TypeError(`Sequential: expected an array of modules, got ${describe(modules)}`);
    modules.forEach((m, i) => {
      if (!(m instanceof Module)) throw new TypeError(`Sequential: element ${i} is ${describe(m)}, expected a Module`);
      this.registerModule(String(i), m);
    });
    this.layers = [...modules];
  }

  forward(x: Tensor): Tensor {
    let h = x;
    const fused: boolean[] = [];
    // On the graph (a Sequential holding a module written with operations), each layer records itself: no fusion,
    // whose backward only Sequential.backward knows. A Sequential of built-in layers is one node, run under noGrad.
    const fuse = !isGradEnabled();
    for (let i = 0; i < this.layers.length; i++) {
      const layer = this.layers[i];
      const act = fuse && layer instanceof Linear ? epilogueOf(this.layers[i + 1]) : undefined;
      // (the last layer's output leaves the Sequential: never a lent buffer)
      const last = i + (act ? 2 : 1) === this.layers.length;
      if (act) {
        // Linear then ReLU / LeakyReLU: one kernel, the activation in the matrix product's epilogue.
        h = last ? freshOutputs(() => (layer as Linear).forwardAct(h, act.code, act.slope)) : (layer as Linear).forwardAct(h, act.code, act.slope);
        act.layer.adoptOutput(h);
        fused[i] = true;
        i++;
      } else {
        h = last ? freshOutputs(() => layer.forward(h)) : layer.forward(h);
      }
    }
    this.fused = fused;
    return h;
  }

  override backward(dy: Tensor, inputGrad = true): Tensor {
    let g = dy;
    for (let i = this.layers.length - 1; i >= 0; i--) {
      // (the first layer's input gradient leaves the Sequential: never a lent buffer)
      if (i > 0 && this.fused[i - 1]) {
        const act = epilogueOf(this.layers[i])!;
        const linear = this.layers[i - 1] as Linear, first = i - 1 === 0;
        // (the fused pair is one backward: its parameters' writes are reported as it returns, as a layer's are)
        const mark = moduleBackwardBegins();
        g = first ? freshOutputs(() => linear.backwardAct(g, act.code, act.slope, inputGrad)) : linear.backwardAct(g, act.code, act.slope, true);
        moduleBackwardDone(mark);
        i--;
      } else {
        const layer = this.layers[i];
        g = i === 0 ? freshOutputs(() => layer.backward(g, inputGrad)) : layer.backward(g, true);
      }
    }
    return g;
  }
}

/** The epilogue code of an activation that can run inside Linear's matrix product (exact classes only, so a
 * subclass with its own backward is never bypassed). */
function epilogueOf(m: Module | undefined): { code: ActCode; slope: number; layer: ReLU | LeakyReLU } | undefined {
  if (m?.constructor === ReLU) return { code: ACT.relu, slope: 0, layer: m as ReLU };
  if (m?.constructor === LeakyReLU && (m as LeakyReLU).negativeSlope >= 0)
    return { code: ACT.leakyRelu, slope: (m as LeakyReLU).negativeSlope, layer: m as LeakyReLU };
  return undefined;
}
