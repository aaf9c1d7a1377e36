// Inference: predict and predictAsync, in eval mode, batch by batch over the input.
import type { Module } from '../nn/module.js';
import { checkNumber, checkOptions } from '../errors.js';
import { checkTensor, fromHost, Tensor } from '../tensor.js';
import { Batches, claim } from './fit.js';
import type { PredictOptions } from './types.js';

/** The model's outputs over x, batch by batch (the caller sets eval mode). */
function* predictBatches(model: Module, x: Tensor, batchSize: number): Generator<Tensor> {
  const batches = new Batches(model.backend, x, undefined, batchSize);
  try {
    batches.begin();
    for (let i = 0; i < batches.count; i++) yield model.forward(batches.getX(i));
  } finally {
    batches.dispose();
  }
}

function checkPredict(where: string, model: Module, x: unknown, options: PredictOptions): [Tensor, number] {
  checkOptions(where, options, ['batchSize']);
  const xt = checkTensor(where, x, 'x');
  if (xt.shape.length === 0) throw new RangeError(`${where}: x needs a batch dimension, got a scalar`);
  if (xt.backend !== model.backend) throw new TypeError(`${where}: x is on '${xt.device}' but the model is on '${model.backend.name}'`);
  return [xt, checkNumber(where, 'batchSize', options.batchSize ?? 1024, { min: 1, integer: true })];
}

function assemble(model: Module, x: Tensor, parts: [Float32Array | Int32Array, readonly number[]][]): Tensor {
  const rowShape = parts.length ? parts[0][1].slice(1) : [];
  const total = parts.reduce((s, [a]) => s + a.length, 0);
  const all = new Float32Array(total);
  let at = 0;
  for (const [a] of parts) {
    all.set(a, at);
    at += a.length;
  }
  return fromHost(model.backend, all, [x.shape[0], ...rowShape]);
}

/** Outputs for x in eval mode, as a new tensor (synchronous). */
export function predictModel(model: Module, x: Tensor, options: PredictOptions = {}): Tensor {
  const [xt, batchSize] = checkPredict('predict', model, x, options);
  const release = claim(model, 'predict');
  model.eval();
  try {
    const parts: [Float32Array | Int32Array, readonly number[]][] = [];
    for (const out of predictBatches(model, xt, batchSize)) parts.push([out.toArray(), out.shape]);
    return assemble(model, xt, parts);
  } finally {
    release();
  }
}

/** predict without blocking the event loop while the native backend computes. */
export async function predictModelAsync(model: Module, x: Tensor, options: PredictOptions = {}): Promise<Tensor> {
  const [xt, batchSize] = checkPredict('predictAsync', model, x, options);
  const release = claim(model, 'predictAsync');
  model.eval();
  try {
    const parts: [Float32Array | Int32Array, readonly number[]][] = [];
    for (const out of predictBatches(model, xt, batchSize)) parts.push([await out.data(), out.shape]);
    return assemble(model, xt, parts);
  } finally {
    release();
  }
}
