// Errors that are not about the caller's arguments carry a stable `code` (API.md, "Errors"). Argument
// errors are plain TypeError / RangeError whose message names the layer or function, what was expected and
// what came.

/**
 * The stable codes of {@link RetrogradError}: NATIVE_LOAD_FAILED (an addon could not load), CUDA_ERROR,
 * CUDA_UNAVAILABLE, OUT_OF_MEMORY, INVALID_ARGUMENT (the addon's own re-check, or a state the call cannot run in),
 * DISPOSED (a tensor used after dispose()), BUSY (overlapping fit / evaluate / predictAsync calls on one model),
 * NON_FINITE (a NaN or an infinity where training cannot go on) and INTERNAL.
 */
export type ErrorCode =
  | 'NATIVE_LOAD_FAILED'
  | 'CUDA_ERROR'
  | 'CUDA_UNAVAILABLE'
  | 'OUT_OF_MEMORY'
  | 'INVALID_ARGUMENT'
  | 'DISPOSED'
  | 'BUSY'
  | 'NON_FINITE'
  | 'INTERNAL';

/**
 * An error that is not about the caller's arguments (those are TypeError and RangeError), with a stable `code` to
 * branch on: `if (e instanceof rg.RetrogradError && e.code === 'OUT_OF_MEMORY') …`. Native code reports its failures
 * this way and never terminates the process.
 */
export class RetrogradError extends Error {
  /** What went wrong, stable across versions (the message may change). */
  readonly code: ErrorCode;
  /** An error with `message` and `code`; its name is 'RetrogradError'. */
  constructor(message: string, code: ErrorCode) {
    super(message);
    this.name = 'RetrogradError';
    this.code = code;
  }
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

/** The valid name closest to `name`, when one is close enough to be a likely misspelling. */
export function closest(name: string, valid: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const v of valid) {
    const dist = editDistance(name.toLowerCase(), v.toLowerCase());
    if (dist < bestD) [best, bestD] = [v, dist];
  }
  return bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/** Rejects option keys that `where` does not know, suggesting the closest valid one. */
export function checkOptions(where: string, options: unknown, valid: readonly string[]): void {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    throw new TypeError(`${where}: options must be an object, got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (valid.includes(key)) continue;
    const near = closest(key, valid);
    throw new TypeError(
      `${where}: unknown option '${key}'${near ? ` (did you mean '${near}'?)` : ''}; valid options: ${valid.join(', ')}`,
    );
  }
}

/** A short description of a value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  if (typeof v === 'object') return `an object (${(v as object).constructor?.name ?? 'Object'})`;
  if (typeof v === 'string') return `the string '${v}'`;
  return `${typeof v} ${String(v)}`;
}

export function checkNumber(where: string, name: string, v: unknown, range: { min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean; integer?: boolean } = {}): number {
  if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`${where}: ${name} must be a number, got ${describe(v)}`);
  const { min, max, minExclusive, maxExclusive, integer } = range;
  const low = min === undefined ? '' : minExclusive ? `> ${min}` : `>= ${min}`;
  const high = max === undefined ? '' : maxExclusive ? `< ${max}` : `<= ${max}`;
  const bad =
    (min !== undefined && (minExclusive ? v <= min : v < min)) ||
    (max !== undefined && (maxExclusive ? v >= max : v > max)) ||
    (integer && !Number.isInteger(v));
  if (bad) {
    const want = [integer ? 'an integer' : '', low, high].filter(Boolean).join(' ');
    throw new RangeError(`${where}: invalid ${name} ${v}; expected ${want}`);
  }
  return v;
}
