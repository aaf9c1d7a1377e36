// Training diagnostics, on request (fit's `diagnostics` option): for every parameter, each step, the norm
// of its gradient and the ratio ‖Δw‖ / ‖w‖ of the update the optimizer made, computed on the backend in
// queue order; the epoch's means go into the History as `grad_norm/<name>` and `update_ratio/<name>`. A
// warning names the layer when its gradient norm stays below `vanishing` (or above `exploding`) for
// `patience` consecutive steps.
import { checkNumber, checkOptions } from '../errors.js';
import type { Module, Parameter } from '../nn/module.js';
import { empty, type Tensor } from '../tensor.js';
import type { Logs } from './types.js';

/** Options of fit's gradient diagnostics (`diagnostics: true` takes the defaults). */
export interface DiagnosticsOptions {
  /** Gradient norm below which a layer counts as vanishing (default 1e-7). */
  vanishing?: number;
  /** Gradient norm above which a layer counts as exploding (default 1e3). */
  exploding?: number;
  /** Consecutive steps before a warning (default 5). */
  patience?: number;
}

interface Tracked {
  name: string;
  layer: string;
  p: Parameter;
  prev: Tensor; // the weights before the step, then −Δw
  grad2: Tensor; // ‖g‖²
  update2: Tensor; // ‖Δw‖²
  weight2: Tensor; // ‖w‖² before the step
}

function layerLabel(model: Module, path: string): string {
  let m: Module | undefined = model;
  for (const part of path.split('.').slice(0, -1)) m = m?.children()[Number(part)];
  const label = (m as { label?: string } | undefined)?.label ?? m?.constructor.name ?? 'layer';
  return `${label} (${path.split('.').slice(0, -1).join('.') || 'model'})`;
}

export class GradientDiagnostics {
  private readonly tracked: Tracked[];
  private readonly vanishing: number;
  private readonly exploding: number;
  private readonly patience: number;
  private readonly streak = new Map<string, { low: number; high: number; warned: boolean }>();
  private sums = new Map<string, { grad: number; ratio: number; n: number }>();

  constructor(model: Module, options: DiagnosticsOptions | true) {
    const o = options === true ? {} : options;
    checkOptions('fit (diagnostics)', o, ['vanishing', 'exploding', 'patience']);
    this.vanishing = checkNumber('fit (diagnostics)', 'vanishing', o.vanishing ?? 1e-7, { min: 0 });
    this.exploding = checkNumber('fit (diagnostics)', 'exploding', o.exploding ?? 1e3, { min: 0 });
    this.patience = checkNumber('fit (diagnostics)', 'patience', o.patience ?? 5, { min: 1, integer: true });
    this.tracked = model.namedParameters().map(([name, p]) => {
      const b = p.value.backend;
      return { name, layer: layerLabel(model, name), p, prev: empty(b, p.value.shape), grad2: empty(b, [1]), update2: empty(b, [1]), weight2: empty(b, [1]) };
    });
  }

  /** Queued before the optimizer step: gradient norms, and a copy of the weights. */
  beforeStep(): void {
    for (const t of this.tracked) {
      if (!t.p.requiresGrad) continue;
      const k = t.p.value.backend.k;
      k.fill(t.grad2.buf, 1, 0);
      // a gradient still pending zero reads as zero, without writing the zeros (the optimizer skips it)
      if (!t.p.gradPending) k.norm_accumulate(t.grad2.buf, t.p.grad.buf, t.p.grad.size, false);
      k.copy(t.prev.buf, t.p.value.buf, t.p.value.size);
    }
  }

  /** Queued after the step: the update's and the weights' norms; resolves with the step's statistics. */
  afterStep(): Promise<[string, string, number[]][]> {
    const reads: Promise<[string, string, number[]]>[] = [];
    for (const t of this.tracked) {
      if (!t.p.requiresGrad) continue;
      const k = t.p.value.backend.k;
      const n = t.p.value.size;
      k.fill(t.weight2.buf, 1, 0);
      k.norm_accumulate(t.weight2.buf, t.prev.buf, n, false); // the weights the update was applied to
      k.axpy(t.prev.buf, t.p.value.buf, n, -1);
      k.fill(t.update2.buf, 1, 0);
      k.norm_accumulate(t.update2.buf, t.prev.buf, n, false);
      reads.push(Promise.all([t.grad2.data(), t.update2.data(), t.weight2.data()]).then(([g, u, w]) => [t.name, t.layer, [g[0], u[0], w[0]]]));
    }
    const all = Promise.all(reads);
    all.catch(() => {});
    return all;
  }

  /** Folds one step's statistics into the epoch's sums and warns about vanishing or exploding layers. */
  record(step: [string, string, number[]][]): void {
    for (const [name, layer, [g2, u2, w2]] of step) {
      const grad = Math.sqrt(g2);
      const ratio = w2 > 0 ? Math.sqrt(u2) / Math.sqrt(w2) : 0;
      const s = this.sums.get(name) ?? { grad: 0, ratio: 0, n: 0 };
      s.grad += grad;
      s.ratio += ratio;
      s.n++;
      this.sums.set(name, s);
      const st = this.streak.get(name) ?? { low: 0, high: 0, warned: false };
      st.low = grad < this.vanishing ? st.low + 1 : 0;
      st.high = grad > this.exploding || !Number.isFinite(grad) ? st.high + 1 : 0;
      if (!st.warned && (st.low >= this.patience || st.high >= this.patience)) {
        st.warned = true;
        const kind = st.low >= this.patience ? `vanishing: below ${this.vanishing}` : `exploding: above ${this.exploding}`;
        process.emitWarning(`${layer}: the gradient of '${name}' is ${kind} for ${this.patience} steps (norm ${grad.toExponential(2)})`, 'RetrogradGradientWarning');
      }
      this.streak.set(name, st);
    }
  }

  /** Adds the epoch's mean gradient norms and update ratios to `logs`, then starts a new epoch. */
  epochEnd(logs: Logs): void {
    for (const [name, s] of this.sums) {
      logs[`grad_norm/${name}`] = s.grad / s.n;
      logs[`update_ratio/${name}`] = s.ratio / s.n;
    }
    this.sums = new Map();
  }

  dispose(): void {
    for (const t of this.tracked) {
      for (const x of [t.prev, t.grad2, t.update2, t.weight2]) x.dispose();
    }
  }
}
