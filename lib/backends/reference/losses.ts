// Reference losses: the mean loss into loss[0] and the gradient of that mean into the prediction's
// gradient, as native/cpu/losses.cc. A bad target or input throws (the native kernel reports the same
// error at the next synchronisation).
import { RetrogradError } from '../../errors.js';
import type { F, I } from './types.js';

export function mse_loss(loss: F, dpred: F, pred: F, target: F, N: number): void {
  let s = 0;
  for (let i = 0; i < N; i++) {
    const d = pred[i] - target[i];
    s += d * d;
    dpred[i] = (2 * d) / N;
  }
  loss[0] = s / N;
}

export function cross_entropy_loss(loss: F, dlogits: F, logits: F, target: I, B: number, C: number, D: number, ignoreIndex: number): void {
  let count = 0;
  for (let p = 0; p < B * D; p++) {
    const t = target[p];
    if (t === ignoreIndex) continue;
    if (t < 0 || t >= C) {
      loss[0] = NaN;
      dlogits.fill(0, 0, B * C * D);
      throw new RetrogradError(`CrossEntropyLoss: target ${t} at position ${p} is outside [0, ${C})`, 'INVALID_ARGUMENT');
    }
    count++;
  }
  let s = 0;
  for (let b = 0; b < B; b++) {
    for (let d = 0; d < D; d++) {
      const at = (c: number) => b * C * D + c * D + d;
      const t = target[b * D + d];
      if (t === ignoreIndex) {
        for (let c = 0; c < C; c++) dlogits[at(c)] = 0;
        continue;
      }
      let mx = -Infinity;
      for (let c = 0; c < C; c++) mx = Math.max(mx, logits[at(c)]);
      let se = 0;
      for (let c = 0; c < C; c++) se += Math.exp(logits[at(c)] - mx);
      for (let c = 0; c < C; c++) dlogits[at(c)] = Math.exp(logits[at(c)] - mx) / se / count;
      dlogits[at(t)] -= 1 / count;
      s += mx + Math.log(se) - logits[at(t)];
    }
  }
  loss[0] = count > 0 ? s / count : NaN;
}

export function bce_with_logits_loss(loss: F, dpred: F, logits: F, target: F, N: number): void {
  let s = 0;
  for (let i = 0; i < N; i++) {
    const x = logits[i], t = target[i];
    s += Math.max(x, 0) - x * t + Math.log1p(Math.exp(-Math.abs(x)));
    dpred[i] = (1 / (1 + Math.exp(-x)) - t) / N;
  }
  loss[0] = s / N;
}

export function l1_loss(loss: F, dpred: F, pred: F, target: F, N: number): void {
  let s = 0;
  for (let i = 0; i < N; i++) {
    const d = pred[i] - target[i];
    s += Math.abs(d);
    dpred[i] = Math.sign(d) / N;
  }
  loss[0] = s / N;
}

export function huber_loss(loss: F, dpred: F, pred: F, target: F, N: number, delta: number): void {
  let s = 0;
  for (let i = 0; i < N; i++) {
    const d = pred[i] - target[i];
    s += Math.abs(d) < delta ? 0.5 * d * d : delta * (Math.abs(d) - 0.5 * delta);
    dpred[i] = Math.min(Math.max(d, -delta), delta) / N;
  }
  loss[0] = s / N;
}

export function bce_loss(loss: F, dpred: F, pred: F, target: F, N: number): void {
  for (let i = 0; i < N; i++) {
    if (!(pred[i] >= 0 && pred[i] <= 1)) {
      loss[0] = NaN;
      dpred.fill(0, 0, N);
      throw new RetrogradError(`BCELoss: every input must be between 0 and 1, got ${pred[i]} at index ${i}`, 'INVALID_ARGUMENT');
    }
  }
  let s = 0;
  for (let i = 0; i < N; i++) {
    const p = pred[i], t = target[i];
    s -= t * Math.max(Math.log(p), -100) + (1 - t) * Math.max(Math.log(1 - p), -100);
    dpred[i] = (p - t) / Math.max((1 - p) * p, 1e-12) / N;
  }
  loss[0] = s / N;
}
