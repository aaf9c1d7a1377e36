// Tensor operations and autograd against PyTorch 1.13 (lib/check/autograd.ts, golden values in
// test/golden/autograd.json): every operation's output and gradients, four models that need the graph trained 20
// steps from PyTorch's initial weights (equal losses at every step and equal final weights), and the gradient with
// respect to the input; on the reference and the native CPU backends.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { checkInputGradient, checkModel, checkOp, OPS, type AutogradGolden } from '../lib/check/autograd.js';
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
