// Tensor operations and autograd against PyTorch 1.13 (lib/check/autograd.ts, golden values in
// test/golden/autograd.json): every operation's output and gradients, four models that need the graph trained 20
// steps from PyTorch's initial weights (equal losses at every step and equal final weights), the gradient with
// respect to the input, and layers (state-dict keys and shapes, the bound of their initialisation, the forward with
// PyTorch's initial weights); on the reference and the native CPU backends.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { checkInputGradient, checkLayer, checkModel, checkOp, LAYERS, OPS, type AutogradGolden } from '../lib/check/autograd.js';
import { requireCpu, rg } from './helpers.js';

const cpuAvailable = requireCpu();
const backends: ('reference' | 'cpu')[] = cpuAvailable ? ['reference', 'cpu'] : ['reference'];
afterEach(() => rg.setBackend(cpuAvailable ? 'cpu' : 'reference'));
const golden = JSON.parse(readFileSync(new URL('./golden/autograd.json', import.meta.url), 'utf8')) as AutogradGolden;

describe.each(backends)('operations against PyTorch (%s)', (name) => {
  it('every case of the golden file has an operation here', () => {
    expect(golden.ops.map((c) => c.name).filter((n) => !OPS[n])).toEqual([]);
  });
  it.each(golden.ops.map((c) => [c.name, c] as const))('%s', (_, c) => {
    rg.setBackend(name);
    expect(checkOp(c)).toBeNull();
  });
});

describe.each(backends)('models written with operations, 20 steps against PyTorch (%s)', (name) => {
  it.each(golden.models.map((c) => [c.name, c] as const))('%s', (_, c) => {
    rg.setBackend(name);
    expect(checkModel(c)).toBeNull();
  });
  it('the gradient with respect to the input', () => {
    rg.setBackend(name);
    expect(checkInputGradient(golden.inputGradient)).toBeNull();
  });
  it('a check that differs says where', () => {
    rg.setBackend(name);
    const c = golden.ops.find((o) => o.name === 'exp')!;
    expect(checkOp({ ...c, output: c.output.map((v, i) => (i === 2 ? v * 1.001 : v)) })).toMatch(/^output\[2\]: .*, PyTorch /);
  });
});

describe.each(backends)('layers against PyTorch: state dict, initialisation, forward (%s)', (name) => {
  it('every layer of the golden file has a constructor here', () => {
    expect(golden.layers.map((c) => c.name).filter((n) => !LAYERS[n])).toEqual([]);
  });
  it.each(golden.layers.map((c) => [c.name, c] as const))('%s', (_, c) => {
    rg.setBackend(name);
    rg.manualSeed(7);
    expect(checkLayer(c)).toBeNull();
  });
  it('a layer initialised with the wrong fan-in is caught', () => {
    rg.setBackend(name);
    const c = golden.layers.find((l) => l.name.startsWith('ConvTranspose2d(6→3'))!;
    // the bound from inChannels·KH·KW (Conv2d's fan-in) instead of outChannels·KH·KW
    const w = c.state.weight;
    const wrong = { ...c, state: { ...c.state, weight: { ...w, bound: w.bound! * Math.sqrt(3 / 6) } } };
    expect(checkLayer(wrong)).toMatch(/^weight: an initial value of magnitude .* beyond PyTorch's bound/);
  });
});
