// Sequential: the layers in order. Its backward is backpropagation itself: the chain rule applied layer by
// layer, last to first, each layer handed the gradient of the one after it.
import { describe } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { Module } from './module.js';

export class Sequential extends Module {
  readonly layers: readonly Module[];

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
    for (const layer of this.layers) h = layer.forward(h);
    return h;
  }

  backward(dy: Tensor): Tensor {
    let g = dy;
    for (let i = this.layers.length - 1; i >= 0; i--) g = this.layers[i].backward(g);
    return g;
  }
}
