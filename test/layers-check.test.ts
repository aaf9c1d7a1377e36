// The composite layers (lib/check/layers.ts: transposed and 1-d convolution, interpolation, group normalisation,
// channel dropout, general attention, transformer layers, the key/value cache, LoRA) on the native CPU backend against
// the reference, outputs and every gradient — the check `retrograd check` runs after the kernels.
import { expect, it } from 'vitest';
import { checkLayers, LAYER_CASES } from '../lib/check/layers.js';
import { requireCpu, rg } from './helpers.js';

const cpuAvailable = requireCpu();

it.runIf(cpuAvailable)('every composite layer agrees with the reference on the native CPU backend', () => {
  const results = checkLayers('cpu', { seed: 11 });
  expect(results).toHaveLength(LAYER_CASES.length);
  expect(results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.message}`)).toEqual([]);
  // the reference and the native kernels round differently: a zero error everywhere would mean nothing was compared
  expect(Math.max(...results.map((r) => r.error))).toBeGreaterThan(0);
});

it.runIf(cpuAvailable)('a layer that differs is reported with what differs', () => {
  // a gradient off by 1e-3 on the native backend only
  const [bad] = checkLayers('cpu', {
    cases: [{ name: 'off', inputs: [[4, 5]], run: (_, x) => (x.backend.name === 'cpu' ? rg.F.linear(x, rg.eye(5).add(1e-3)) : rg.F.linear(x, rg.eye(5))) }],
  });
  expect(bad.ok).toBe(false);
  expect(bad.message).toMatch(/^output: normwise relative error .* \(bound 2\.00e-5\)/);
  const [threw] = checkLayers('cpu', { cases: [{ name: 'throws', inputs: [[2]], run: () => { throw new RangeError('nope'); } }] });
  expect(threw).toMatchObject({ ok: false, message: 'threw: nope' });
});
