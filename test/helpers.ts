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
