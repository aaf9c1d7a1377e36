// rg.gradCheck: compares a module's backward (dL/dx and dL/dparam) with central finite differences of its
// forward, in float64 on the reference backend, for the objective L = Σ y ⊙ r with a fixed random r.
import { checkNumber, checkOptions } from './errors.js';
import { reference64Backend } from './backends/reference/index.js';
import type { Module } from './nn/module.js';
import { getRngState, setRngState, uniform } from './random.js';
import { checkTensor, fromHost, type Tensor } from './tensor.js';

/** Options of {@link gradCheck}. */
export interface GradCheckOptions {
  /** Finite-difference step (default 1e-6). */
  eps?: number;
  /** Largest normwise relative error accepted (default 1e-5). */
  tol?: number;
  /** Most elements perturbed per tensor (default 256; a random sample above that). */
  maxElements?: number;
}

/** What {@link gradCheck} found. */
export interface GradCheckResult {
  /** Whether every checked tensor's error is within tol. */
  ok: boolean;
  /** The largest of the errors. */
  maxRelError: number;
  /** Normwise relative error of each checked tensor: 'input' and the parameter names. */
  errors: Record<string, number>;
}

function host64(t: Tensor): Float64Array {
  return t.buf as unknown as Float64Array;
}

function pick(n: number, max: number): number[] {
  const all = Array.from({ length: n }, (_, i) => i);
  if (n <= max) return all;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(uniform() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, max).sort((a, b) => a - b);
}

/**
 * Checks a module's backward against central finite differences of its forward, in float64 on the reference backend,
 * for L = Σ y ⊙ r with a fixed random r: dL/dinput (float inputs) and dL/dparam for every parameter that requires
 * grad, up to maxElements elements each. The module's own tensors are left as they were; each forward starts from the
 * same random state, so dropout draws one mask throughout.
 */
export function gradCheck(module: Module, input: Tensor, options: GradCheckOptions = {}): GradCheckResult {
  checkOptions('gradCheck', options, ['eps', 'tol', 'maxElements']);
  checkTensor('gradCheck', input);
  const eps = checkNumber('gradCheck', 'eps', options.eps ?? 1e-6, { min: 0, minExclusive: true });
  const tol = checkNumber('gradCheck', 'tol', options.tol ?? 1e-5, { min: 0 });
  const maxElements = checkNumber('gradCheck', 'maxElements', options.maxElements ?? 256, { min: 1, integer: true });
  const b = reference64Backend;
  const rng = getRngState();

  return module.withStateOn(b, () => {
    const x = input.toBackend(b);
    // Every forward starts from the same random state, so dropout draws the same mask each time.
    const forward = () => {
      setRngState(rng);
      return module.forward(x);
    };
    const y0 = forward();
    const r = Float64Array.from({ length: y0.size }, () => 2 * uniform() - 1);
    const objective = () => {
      const y = host64(forward());
      let s = 0;
      for (let i = 0; i < r.length; i++) s += y[i] * r[i];
      return s;
    };

    forward();
    const dx = module.backward(fromHost(b, r, y0.shape));
    const checks: [string, Float64Array, Float64Array][] = [];
    if (x.dtype !== 'int32') checks.push(['input', host64(x), Float64Array.from(host64(dx))]);
    for (const [name, p] of module.namedParameters())
      if (p.requiresGrad) checks.push([name, host64(p.value), Float64Array.from(host64(p.grad))]);

    const errors: Record<string, number> = {};
    for (const [name, values, analytic] of checks) {
      let diff = 0, normA = 0, normN = 0;
      for (const j of pick(values.length, maxElements)) {
        const v = values[j];
        values[j] = v + eps;
        const up = objective();
        values[j] = v - eps;
        const down = objective();
        values[j] = v;
        const numeric = (up - down) / (2 * eps);
        diff += (analytic[j] - numeric) ** 2;
        normA += analytic[j] ** 2;
        normN += numeric ** 2;
      }
      const scale = Math.max(Math.sqrt(normA), Math.sqrt(normN));
      errors[name] = scale === 0 ? Math.sqrt(diff) : Math.sqrt(diff) / scale;
    }
    setRngState(rng);
    const maxRelError = Math.max(0, ...Object.values(errors));
    return { ok: maxRelError <= tol, maxRelError, errors };
  });
}
