// Shared test tools: the tolerance policy, random data, access to each backend, and the rule for tests that need
// something a machine may lack (requireOrSkip).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { it } from 'vitest';
import * as rg from '../lib/index.js';
import { backendByName, type Backend } from '../lib/backend.js';
import { reference64Backend } from '../lib/backends/reference/index.js';
import { probeCpu } from '../lib/backends/cpu.js';
import { mulberry32 } from '../lib/data/split.js';

// the tolerance policy and random data live in lib/check/ (the shipped kernel checker uses them too)
export { compare, describeComparison, ELEMENT_FACTOR, elementError, randomArray, relError, TOL } from '../lib/check/numerics.js';

/** A small seeded generator for test data (independent of rg.manualSeed). */
export const rng = mulberry32;

export const cpuAvailable = probeCpu().available;
export const cpuReason = probeCpu().reason ?? '';
if (!cpuAvailable) console.warn(`native CPU backend unavailable, its tests are skipped: ${cpuReason}`);

/** The package root, where the tests run. */
export const root = join(import.meta.dirname, '..');

/** The CPU addon's file as the library finds it (node-gyp-build: prebuilds/<platform>-<arch>/, else build/Release/),
 * for the tests that load it in a child process or a worker: `npm run binaries` leaves no build/Release. */
export function cpuAddonPath(): string {
  return (createRequire(import.meta.url)('node-gyp-build') as { resolve(dir: string): string }).resolve(root);
}

/** A CI run (CI=true or CI=1, as CI services set it): there, a missing requirement is a failure, not a skip. */
export function inCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.CI?.trim().toLowerCase();
  return v === 'true' || v === '1';
}

/** What requireOrSkip does: run the tests, skip them saying why, or fail saying what is missing. */
export function requirement(what: string, available: boolean, reason: string, env: NodeJS.ProcessEnv = process.env): { run: true } | { run: false; skip: string } | { run: false; fail: string } {
  if (available) return { run: true };
  if (inCI(env)) return { run: false, fail: `${what} is missing, and a CI run (CI=${env.CI}) must not skip its tests: ${reason}` };
  return { run: false, skip: `skipping the tests that need ${what}: ${reason}` };
}

/**
 * The one rule for tests that need something a machine may lack (the native CPU backend, Chromium, cmake): true when
 * it is there. When it is not, outside CI the reason is printed and the caller skips; in CI a test named for it fails
 * with the reason (call this where a test may be declared: at the top of a file or in a describe), because a CI run
 * that skips them has lost their coverage without anyone seeing it.
 */
export function requireOrSkip(what: string, available: boolean, reason: string): boolean {
  const r = requirement(what, available, reason);
  if ('fail' in r) {
    const message = r.fail;
    it(`${what} is available`, () => {
      throw new Error(message);
    });
  } else if ('skip' in r) console.warn(r.skip);
  return r.run;
}

/** requireOrSkip for the native CPU backend (the addon built, loaded and carrying every kernel of the contract). */
export function requireCpu(): boolean {
  return requireOrSkip('the native CPU backend', cpuAvailable, cpuReason);
}

/** The first of `names` found in the PATH (or in `extra` folders), else undefined. */
export function findTool(names: string[], extra: string[] = []): string | undefined {
  const dirs = [...extra, ...(process.env.PATH ?? '').split(':')].filter(Boolean);
  for (const d of dirs) for (const n of names) if (existsSync(join(d, n))) return join(d, n);
  return undefined;
}

/**
 * Why dist/ cannot stand for lib/ (a compiled file missing, or older than its source), or undefined when it can.
 * Tests that run the package as a user does (`import('retrograd')`, examples/, bench/) run dist/: a stale build
 * would test yesterday's code.
 */
export function distProblem(): string | undefined {
  const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
  for (const src of walk(join(root, 'lib')).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))) {
    const out = join(root, 'dist', relative(join(root, 'lib'), src)).replace(/\.ts$/, '.js');
    if (!existsSync(out)) return `${relative(root, out)} is missing`;
    if (statSync(out).mtimeMs < statSync(src).mtimeMs) return `${relative(root, out)} is older than ${relative(root, src)}`;
  }
  return undefined;
}

/** Throws, saying to build, when dist/ is missing or stale (for a beforeAll of the tests that run dist/). */
export function requireBuiltDist(): void {
  const problem = distProblem();
  if (problem) throw new Error(`these tests run the compiled package (dist/), and ${problem}: run \`npm run build\` first`);
}

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
  if (neverRises(counts) !== undefined) throw new Error(`${label}: live tensors grew over four steps: ${counts.join(', ')}`);
}

/**
 * A full garbage collection now (Node's --expose-gc, switched on here), so that a count of live tensors taken next
 * holds no tensor that earlier code dropped: a collection during a measured stretch would otherwise free those and
 * lower the count by however many there were.
 */
export function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

/**
 * The first step at which a count of live tensors rose above where it started, or undefined. A count may fall:
 * the garbage collector frees tensors that earlier tests dropped whenever it runs, so only a rise is the code's.
 */
export function neverRises(counts: readonly number[]): number | undefined {
  const i = counts.findIndex((c) => c > counts[0]);
  return i < 0 ? undefined : i;
}

/** A safetensors file's bytes from a header written as JSON text (duplicate or escaped keys stay as written) and the
 * data bytes: the length, the header padded with spaces to 8 bytes, the data. */
export function safetensorsBytes(json: string, data: Buffer): Buffer {
  while ((json.length + 8) % 8) json += ' ';
  const b = Buffer.alloc(8 + json.length + data.length);
  b.writeBigUInt64LE(BigInt(json.length), 0);
  b.write(json, 8);
  data.copy(b, 8 + json.length);
  return b;
}
