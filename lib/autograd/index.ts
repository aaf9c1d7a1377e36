// Tensor operations and automatic differentiation: the functions (rg.add, rg.matmul, …), the methods on Tensor and
// Parameter (lib/autograd/methods.ts), rg.autograd and the grad-mode switches.
import './methods.js';
import { Function, FunctionContext } from './function.js';
import { grad } from './engine.js';

export { noGrad, enableGrad, isGradEnabled, type BackwardOptions, type GradOptions, type GradInput } from './engine.js';
export * from './elementwise.js';
export { sum, mean, max, min, argmax, argmin, variance as var, std, logsumexp, norm, softmax, logSoftmax, type ReduceOptions, type VarOptions } from './reduce.js';
export { matmul, linear } from './linalg.js';
export { reshape, flatten, squeeze, unsqueeze, permute, transpose, t, expand, broadcastTo, contiguous, narrow, slice, select, cat, stack, split, chunk, indexSelect, gather, scatterAdd } from './shape.js';
export { zeros, ones, full, arange, linspace, eye, rand, randn, randint, zerosLike, onesLike, fullLike, type CreationOptions } from './creation.js';
export type { TensorLike } from './core.js';

/** rg.autograd: gradients with respect to any tensors, and custom differentiable functions. */
export const autograd = {
  /** The gradients of outputs with respect to any tensors, returned rather than accumulated (torch.autograd.grad). */
  grad,
  /** The base class of custom differentiable functions (torch.autograd.Function). */
  Function,
  /** What a custom function's forward hands to its backward. */
  FunctionContext,
};
export { Function, FunctionContext };
