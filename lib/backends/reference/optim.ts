// Reference optimizer updates: PyTorch 1.13's single-tensor formulas (torch/optim/sgd.py, adam.py,
// adamw.py, rmsprop.py, adagrad.py), element by element, as native/cpu/optim.cc.
import type { F } from './types.js';

export function sgd_step(param: F, momentumBuf: F | null, grad: F, N: number, lr: number, momentum: number, dampening: number, weightDecay: number, nesterov: boolean, maximize: boolean, firstStep: boolean): void {
  for (let i = 0; i < N; i++) {
    let g = maximize ? -grad[i] : grad[i];
    if (weightDecay !== 0) g += weightDecay * param[i];
    if (momentum !== 0) {
      const buf = firstStep ? g : momentum * momentumBuf![i] + (1 - dampening) * g;
      momentumBuf![i] = buf;
      g = nesterov ? g + momentum * buf : buf;
    }
    param[i] -= lr * g;
  }
}

export function adam_step(param: F, expAvg: F, expAvgSq: F, maxExpAvgSq: F | null, grad: F, N: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number, amsgrad: boolean, decoupled: boolean, maximize: boolean): void {
  const bc1 = 1 - beta1 ** step;
  const bc2 = 1 - beta2 ** step;
  const stepSize = lr / bc1;
  const bc2Sqrt = Math.sqrt(bc2);
  for (let i = 0; i < N; i++) {
    let g = maximize ? -grad[i] : grad[i];
    let p = param[i];
    if (decoupled) p *= 1 - lr * weightDecay;
    else if (weightDecay !== 0) g += weightDecay * p;
    expAvg[i] = beta1 * expAvg[i] + (1 - beta1) * g;
    expAvgSq[i] = beta2 * expAvgSq[i] + (1 - beta2) * g * g;
    let v = expAvgSq[i];
    if (amsgrad) {
      maxExpAvgSq![i] = Math.max(maxExpAvgSq![i], v);
      v = maxExpAvgSq![i];
    }
    param[i] = p - (stepSize * expAvg[i]) / (Math.sqrt(v) / bc2Sqrt + eps);
  }
}

export function rmsprop_step(param: F, squareAvg: F, gradAvg: F | null, momentumBuf: F | null, grad: F, N: number, lr: number, alpha: number, eps: number, weightDecay: number, momentum: number, centered: boolean, maximize: boolean): void {
  for (let i = 0; i < N; i++) {
    let g = maximize ? -grad[i] : grad[i];
    if (weightDecay !== 0) g += weightDecay * param[i];
    squareAvg[i] = alpha * squareAvg[i] + (1 - alpha) * g * g;
    let avg: number;
    if (centered) {
      gradAvg![i] = alpha * gradAvg![i] + (1 - alpha) * g;
      avg = Math.sqrt(squareAvg[i] - gradAvg![i] * gradAvg![i]) + eps;
    } else {
      avg = Math.sqrt(squareAvg[i]) + eps;
    }
    if (momentum > 0) {
      momentumBuf![i] = momentum * momentumBuf![i] + g / avg;
      param[i] -= lr * momentumBuf![i];
    } else {
      param[i] -= (lr * g) / avg;
    }
  }
}

export function adagrad_step(param: F, stateSum: F, grad: F, N: number, clr: number, eps: number, weightDecay: number, maximize: boolean): void {
  for (let i = 0; i < N; i++) {
    let g = maximize ? -grad[i] : grad[i];
    if (weightDecay !== 0) g += weightDecay * param[i];
    stateSum[i] += g * g;
    param[i] -= (clr * g) / (Math.sqrt(stateSum[i]) + eps);
  }
}

export function adamax_step(param: F, expAvg: F, expInf: F, grad: F, N: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number, maximize: boolean): void {
  const clr = lr / (1 - beta1 ** step);
  for (let i = 0; i < N; i++) {
    let g = maximize ? -grad[i] : grad[i];
    if (weightDecay !== 0) g += weightDecay * param[i];
    expAvg[i] = beta1 * expAvg[i] + (1 - beta1) * g;
    expInf[i] = Math.max(beta2 * expInf[i], Math.abs(g) + eps);
    param[i] -= (clr * expAvg[i]) / expInf[i];
  }
}

export function adadelta_step(param: F, squareAvg: F, accDelta: F, grad: F, N: number, lr: number, rho: number, eps: number, weightDecay: number, maximize: boolean): void {
  for (let i = 0; i < N; i++) {
    let g = maximize ? -grad[i] : grad[i];
    if (weightDecay !== 0) g += weightDecay * param[i];
    squareAvg[i] = rho * squareAvg[i] + (1 - rho) * g * g;
    const delta = (Math.sqrt(accDelta[i] + eps) / Math.sqrt(squareAvg[i] + eps)) * g;
    accDelta[i] = rho * accDelta[i] + (1 - rho) * delta * delta;
    param[i] -= lr * delta;
  }
}

export function nadam_radam_step(param: F, expAvg: F, expAvgSq: F, grad: F, N: number, beta1: number, beta2: number, eps: number, weightDecay: number, bc2: number, cGrad: number, cAvg: number, radam: boolean, rectified: boolean): void {
  for (let i = 0; i < N; i++) {
    let g = grad[i];
    if (weightDecay !== 0) g += weightDecay * param[i];
    expAvg[i] = beta1 * expAvg[i] + (1 - beta1) * g;
    expAvgSq[i] = beta2 * expAvgSq[i] + (1 - beta2) * g * g;
    if (!radam) {
      const denom = Math.sqrt(expAvgSq[i] / bc2) + eps;
      param[i] -= (cGrad * g) / denom + (cAvg * expAvg[i]) / denom;
    } else {
      param[i] -= cAvg * expAvg[i] * (rectified ? Math.sqrt(bc2) / (Math.sqrt(expAvgSq[i]) + eps) : 1);
    }
  }
}
