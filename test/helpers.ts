// Shared test tools: the tolerance policy, random data, and access to each backend.
import * as rg from '../lib/index.js';
import { backendByName, type Backend } from '../lib/backend.js';
import { reference64Backend } from '../lib/backends/reference/index.js';
import { probeCpu } from '../lib/backends/cpu.js';
import { mulberry32 } from '../lib/data/split.js';

// the tolerance policy and random data live in lib/check/ (the shipped kernel checker uses them too)
export { randomArray, relError, TOL } from '../lib/check/numerics.js';

/** A small seeded generator for test data (independent of rg.manualSeed). */
export const rng = mulberry32;

export const cpuAvailable = probeCpu().available;
export const cpuReason = probeCpu().reason ?? '';
if (!cpuAvailable) console.warn(`native CPU backend unavailable, its tests are skipped: ${cpuReason}`);

export function cpu(): Backend {
  return backendByName('cpu');
}
export function reference(): Backend {
  return backendByName('reference');
}
export { reference64Backend, rg };

/**
 * A layer used directly, forward then backward four times on the same input, leaves no tensor behind: the caller
 * disposes what it receives, the layer frees or reuses its own buffers.
 */
export function expectNoTensorGrowth(layer: { forward(x: rg.Tensor): rg.Tensor; backward(dy: rg.Tensor): rg.Tensor }, x: rg.Tensor, label: string): void {
  const counts: number[] = [];
  for (let i = 0; i < 4; i++) {
    const y = layer.forward(x);
    const dy = rg.tensor(new Float32Array(y.size).fill(0.5), y.shape);
    const dx = layer.backward(dy);
    for (const t of [y, dy, dx]) t.dispose();
    x.toArray(); // a read waits for the queue, where a native backend's frees run
    counts.push(rg.memory().tensors);
  }
  if (counts.slice(1).some((c) => c !== counts[0])) throw new Error(`${label}: live tensors grew over four steps: ${counts.join(', ')}`);
}
