// ONNX export: each exportable layer, alone and in models, written with rg.exportOnnx and run by onnxruntime-node (a
// dev dependency); its outputs must equal retrograd's on the same input, at the exported batch size and at another
// (the batch dimension is symbolic). Then the file's structure (opset, initializers named by state-dict keys) and the
// errors for what ONNX cannot express.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeModel } from '../lib/io/onnx-proto.js';
import { requireOrSkip, rg } from './helpers.js';

type Ort = typeof import('onnxruntime-node');
let ort: Ort | undefined, why = '';
try {
  ort = createRequire(import.meta.url)('onnxruntime-node') as Ort;
} catch (e) {
  why = e instanceof Error ? e.message.split('\n')[0] : String(e);
}
const haveOrt = requireOrSkip('onnxruntime-node (a dev dependency)', ort !== undefined, `onnxruntime-node does not load: ${why} (npm install)`);

const dir = mkdtempSync(join(tmpdir(), 'retrograd-onnx-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Deterministic awkward values: a sine, so no two are equal and signs mix. */
const values = (n: number, phase = 0) => Float32Array.from({ length: n }, (_, i) => 1.3 * Math.sin(1.7 * i + phase));
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Running statistics and affine parameters that are not the defaults, so BatchNorm's export is really checked. */
function perturb(m: rg.Module): void {
  for (const [k, t] of Object.entries(m.stateDict())) {
    if (t.dtype !== 'float32') continue;
    if (k.endsWith('running_var')) t.assign(Array.from({ length: t.size }, (_, i) => 0.5 + 0.1 * i));
    else if (k.endsWith('running_mean') || /(norm|ln\d|^\d+)\.(weight|bias)$|^(weight|bias)$/.test(k) && t.shape.length === 1) t.assign(values(t.size, 0.3).map((v) => (k.endsWith('weight') ? 1 + 0.3 * v : 0.2 * v)));
  }
}

/** Exports `m`, runs the file at the exported batch and at `otherBatch`, and compares with retrograd's outputs. */
async function roundTrip(name: string, m: rg.Module, shape: number[], { int = 0, otherBatch = 3, tol = 2e-5 } = {}): Promise<void> {
  perturb(m);
  m.eval();
  const file = join(dir, `${name}.onnx`);
  await rg.exportOnnx(m, file, { inputShape: shape });
  const session = await ort!.InferenceSession.create(file);
  for (const batch of [shape[0], otherBatch]) {
    const s = [batch, ...shape.slice(1)];
    const data = int ? Int32Array.from({ length: size(s) }, (_, i) => (i * 7 + 3) % int) : values(size(s));
    const expected = rg.noGrad(() => m.forward(rg.tensor(data, s))).toArray('float32');
    const out = (await session.run({ input: new ort!.Tensor(int ? 'int32' : 'float32', data, s) })).output;
    expect(out.dims.length).toBeGreaterThan(0);
    const got = out.data as Float32Array;
    expect(got.length, `${name} at batch ${batch}`).toBe(expected.length);
    let worst = 0, scale = 1e-3;
    for (let i = 0; i < got.length; i++) {
      worst = Math.max(worst, Math.abs(got[i] - expected[i]));
      scale = Math.max(scale, Math.abs(expected[i]));
    }
    expect(worst / scale, `${name} at batch ${batch}: worst difference ${worst} (largest value ${scale})`).toBeLessThan(tol);
  }
}

describe.runIf(haveOrt)('ONNX export, run by onnxruntime', () => {
  it('Linear (matrices and higher rank), activations, Softmax, Dropout, Identity', async () => {
    rg.manualSeed(1);
    await roundTrip('mlp', new rg.Sequential([new rg.Linear(5, 7), new rg.ReLU(), new rg.Dropout(0.4), new rg.Linear(7, 9), new rg.Tanh(), new rg.Linear(9, 3), new rg.Softmax()]), [2, 5]);
    await roundTrip('activations', new rg.Sequential([new rg.Linear(6, 6, { bias: false }), new rg.LeakyReLU(0.07), new rg.Sigmoid(), new rg.Identity(), new rg.GELU(), new rg.Linear(6, 2)]), [4, 3, 6]);
  });

  it('Conv2d (stride, padding, dilation, rectangular kernels), pooling, BatchNorm2d, Flatten', async () => {
    rg.manualSeed(2);
    await roundTrip('cnn', new rg.Sequential([
      new rg.Conv2d(2, 4, 3, { padding: 1, stride: 2 }), new rg.BatchNorm2d(4), new rg.LeakyReLU(0.1), new rg.MaxPool2d(2),
      new rg.Conv2d(4, 3, [2, 3], { dilation: [1, 2], bias: false }), new rg.Dropout2d(0.2), new rg.GELU(),
      new rg.AvgPool2d(3, { stride: 1, padding: 1, countIncludePad: false }), new rg.Flatten(), new rg.Linear(3 * 4 * 2, 2),
    ]), [2, 2, 21, 25]);
    await roundTrip('pools', new rg.Sequential([new rg.AvgPool2d([2, 3], { stride: [2, 1], padding: [1, 1] }), new rg.AdaptiveAvgPool2d(1)]), [2, 3, 7, 9]);
    await roundTrip('global', new rg.Sequential([new rg.Conv2d(3, 5, 1), new rg.GlobalAvgPool2d(), new rg.BatchNorm1d(5)]), [2, 3, 4, 6]);
  });

  it('ConvTranspose2d, GroupNorm, Upsample (nearest; bilinear both ways), Conv1d, LayerNorm', async () => {
    rg.manualSeed(3);
    await roundTrip('generator', new rg.Sequential([
      new rg.ConvTranspose2d(3, 4, 4, { stride: 2, padding: 1, outputPadding: 1 }), new rg.GroupNorm(2, 4), new rg.Tanh(),
      new rg.Upsample({ scaleFactor: 2, mode: 'bilinear' }), new rg.Upsample({ size: [17, 19], mode: 'nearest' }),
      new rg.Upsample({ scaleFactor: 1.5, mode: 'bilinear', alignCorners: true }), new rg.GroupNorm(4, 4, { affine: false }),
    ]), [2, 3, 5, 6]);
    await roundTrip('conv1d', new rg.Sequential([new rg.Conv1d(3, 4, 3, { padding: 2, stride: 2 }), new rg.Sigmoid(), new rg.LayerNorm(6), new rg.LayerNorm([4, 6], { elementwiseAffine: false })]), [2, 3, 9]);
  });

  it('RNN (tanh, relu), LSTM and GRU: gates reordered to ONNX, several layers, batch first or not', async () => {
    rg.manualSeed(4);
    await roundTrip('lstm', new rg.Sequential([new rg.LSTM(4, 6, { batchFirst: true, numLayers: 2 })]), [3, 5, 4]);
    await roundTrip('gru', new rg.Sequential([new rg.GRU(4, 5)]), [7, 3, 4], { otherBatch: 7 });
    await roundTrip('rnn', new rg.Sequential([new rg.RNN(4, 6, { batchFirst: true, nonlinearity: 'relu', bias: false }), new rg.RNN(6, 3, { batchFirst: true })]), [2, 5, 4]);
  });

  it('Embedding, PositionalEmbedding, TransformerBlock (causal), MultiheadAttention: a tiny GPT', async () => {
    rg.manualSeed(5);
    await roundTrip('gpt', new rg.Sequential([
      new rg.Embedding(11, 8), new rg.PositionalEmbedding(16, 8), new rg.TransformerBlock(8, 2, { causal: true }),
      new rg.MultiheadAttention(8, 4, { batchFirst: true }), new rg.LayerNorm(8), new rg.Linear(8, 11),
    ]), [2, 6], { int: 11 });
    await roundTrip('attention-seq-first', new rg.Sequential([new rg.MultiheadAttention(6, 3, { causal: true })]), [5, 2, 6], { otherBatch: 5 });
  });

  it('writes opset 18, a symbolic batch, and initializers named by the state-dict keys', async () => {
    const m = new rg.Sequential([new rg.Linear(3, 4), new rg.Sequential([new rg.ReLU(), new rg.Linear(4, 2)])]);
    m.train();
    const model = decodeModel(rg.toOnnx(m, { inputShape: [1, 3] })) as {
      ir_version: number; opset_import: { version: number }[]; producer_name: string;
      graph: { initializer: { name: string; dims: number[] }[]; input: { type: { tensor_type: { shape: { dim: { dim_param?: string; dim_value?: number }[] } } } }[]; node: { op_type: string }[] };
    };
    expect(m.training).toBe(true); // the export ran in eval mode and put the model back
    expect(model.opset_import[0].version).toBe(18);
    expect(model.producer_name).toBe('retrograd');
    expect(model.graph.initializer.map((t) => [t.name, t.dims])).toEqual([['0.weight', [4, 3]], ['0.bias', [4]], ['1.1.weight', [2, 4]], ['1.1.bias', [2]]]);
    expect(model.graph.node.map((n) => n.op_type)).toEqual(['Gemm', 'Relu', 'Gemm']);
    expect(model.graph.input[0].type.tensor_type.shape.dim).toEqual([{ dim_param: 'batch' }, { dim_value: 3 }]);
    const fixed = decodeModel(rg.toOnnx(m, { inputShape: [5, 3], dynamicBatch: false })) as typeof model;
    expect(fixed.graph.input[0].type.tensor_type.shape.dim).toEqual([{ dim_value: 5 }, { dim_value: 3 }]);
  });
});

describe('ONNX export errors', () => {
  it('names the layer ONNX cannot express, and checks its options', async () => {
    class Custom extends rg.Module {
      forward(x: rg.Tensor) { return x.mul(2); }
    }
    expect(() => rg.toOnnx(new rg.Sequential([new rg.Linear(2, 2), new Custom()]), { inputShape: [1, 2] })).toThrow(/^exportOnnx: Custom has no ONNX export \(exportable: Sequential of Linear, /);
    expect(() => rg.toOnnx(new rg.Sequential([new rg.BatchNorm1d(2, { trackRunningStats: false })]), { inputShape: [3, 2] })).toThrow(/exportOnnx: BatchNorm1d without running statistics/);
    expect(() => rg.toOnnx(new rg.Sequential([new rg.LSTM(2, 3)]), { inputShape: [4, 2] })).toThrow('exportOnnx: LSTM exports batched input only ([B, T, I] or [T, B, I]), got inputShape [4, 2]');
    expect(() => rg.toOnnx(new rg.Linear(2, 2), { inputShape: [1, 0] })).toThrow(/exportOnnx: inputShape must be the input's shape with the batch first, e\.g\. \[1, 784\], got an array of length 2/);
    expect(() => rg.toOnnx(new rg.Linear(2, 2), undefined as never)).toThrow(/exportOnnx: options must be an object with inputShape/);
    expect(() => rg.toOnnx({} as never, { inputShape: [1, 2] })).toThrow(/exportOnnx: model must be a retrograd Module/);
    // a shape the model refuses: the layer's own message, before any file is written
    expect(() => rg.toOnnx(new rg.Linear(2, 2), { inputShape: [1, 3] })).toThrow(/Linear\(2→2\)|Linear/);
    await expect(rg.exportOnnx(new rg.Sequential([new Custom()]), join(dir, 'never.onnx'), { inputShape: [1, 2] })).rejects.toThrow(/Custom has no ONNX export/);
  });
});
