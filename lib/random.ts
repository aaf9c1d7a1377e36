// The seeded random source of retrograd: initialisation, dropout seeds, shuffling and randn all draw from
// it, so `manualSeed(s)` makes a run reproducible on every backend. xoshiro128** (32-bit state words, exact
// in JavaScript integer arithmetic).
import { describe } from './errors.js';

let s0 = 0, s1 = 0, s2 = 0, s3 = 0;

function splitmix32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Seeds initialisation, dropout and shuffling. */
export function manualSeed(seed: number): void {
  if (typeof seed !== 'number' || !Number.isFinite(seed))
    throw new TypeError(`manualSeed: seed must be a finite number, got ${String(seed)}`);
  const next = splitmix32(Math.floor(seed) ^ Math.floor(seed / 2 ** 32));
  s0 = next(); s1 = next(); s2 = next(); s3 = next();
}
manualSeed(Date.now());

/** A uniformly distributed 32-bit unsigned integer. */
export function nextU32(): number {
  const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
  const t = s1 << 9;
  s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3;
  s2 ^= t;
  s3 = rotl(s3, 11);
  return result;
}
function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Uniform in [0, 1), 53 bits. */
export function uniform(): number {
  return (nextU32() * 2 ** 21 + (nextU32() >>> 11)) / 2 ** 53;
}

/** Standard normal (Box–Muller). */
export function normal(): number {
  let u = 0;
  while (u === 0) u = uniform();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
}

/** A seed for a counter-based kernel (dropout): an integer in [0, 2^31). */
export function nextSeed(): number {
  return nextU32() >>> 1;
}

/** A random permutation of 0..n-1 (Fisher–Yates). */
export function permutation(n: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(uniform() * (i + 1));
    const t = p[i]; p[i] = p[j]; p[j] = t;
  }
  return p;
}

/** The state of retrograd's random generator (xoshiro128**): four 32-bit words. */
export type RngState = [number, number, number, number];
/** The generator's four state words, as unsigned 32-bit integers. */
export function getRngState(): RngState {
  return [s0 >>> 0, s1 >>> 0, s2 >>> 0, s3 >>> 0];
}

/**
 * Checks a state for setRngState and returns it normalised. Each word is an integer in [0, 2^32), or its signed
 * 32-bit form (what versions that did not normalise the words wrote). The all-zero state is refused: xoshiro
 * never leaves it, so every draw would be 0 (and normal() would loop forever).
 */
export function checkRngState(state: unknown, what = 'setRngState: the state'): RngState {
  if (!Array.isArray(state) || state.length !== 4 || !state.every((w) => typeof w === 'number'))
    throw new TypeError(`${what} must be an array of 4 integers, got ${describe(state)}`);
  const bad = state.find((w: number) => !Number.isInteger(w) || w < -(2 ** 31) || w >= 2 ** 32);
  if (bad !== undefined) throw new RangeError(`${what} holds ${bad}, which is not a 32-bit integer`);
  if (state.every((w) => w === 0)) throw new RangeError(`${what} must not be all zero (the generator would draw only zeros)`);
  return state.map((w: number) => w >>> 0) as RngState;
}

/** Restores a state from getRngState; a refused state leaves the generator as it was. */
export function setRngState(state: RngState): void {
  [s0, s1, s2, s3] = checkRngState(state);
}
