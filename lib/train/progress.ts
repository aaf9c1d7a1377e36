// Progress output of fit: a cli-progress bar on a terminal (verbose 1), one line per epoch otherwise.
import cliProgress from 'cli-progress';
import type { Logs } from './types.js';

export function formatLogs(logs: Logs): string {
  return Object.entries(logs)
    .filter(([k]) => !k.includes('/')) // per-parameter diagnostics stay in the History
    .map(([k, v]) => `${k}: ${k.includes('accuracy') ? v.toFixed(4) : v.toPrecision(4)}`)
    .join(' - ');
}

export class Progress {
  private bar?: cliProgress.SingleBar;
  private started = 0;

  constructor(
    private readonly verbose: number,
    private readonly epochs: number,
    private readonly steps: number,
  ) {}

  /** Whether a live bar is drawn (only then are per-step accuracies worth reading). */
  get showsBar(): boolean {
    return this.useBar;
  }

  private get useBar(): boolean {
    return this.verbose === 1 && Boolean(process.stdout.isTTY);
  }

  epochBegin(epoch: number): void {
    this.started = performance.now();
    if (!this.useBar) return;
    this.bar = new cliProgress.SingleBar(
      {
        format: `epoch ${epoch + 1}/${this.epochs} {bar} {value}/{total} | loss {loss} | {extra}eta {eta_formatted}`,
        barCompleteChar: '█',
        barIncompleteChar: '░',
        hideCursor: true,
        clearOnComplete: true,
        stopOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(this.steps, 0, { loss: '-', extra: '' });
  }

  batchEnd(step: number, loss: number, accuracy?: number): void {
    if (this.bar && step > this.bar.getTotal()) this.bar.setTotal(step); // a stream of unknown length
    this.bar?.update(step, { loss: loss.toFixed(4), extra: accuracy === undefined ? '' : `acc ${(100 * accuracy).toFixed(2)}% | ` });
  }

  epochEnd(epoch: number, logs: Logs): void {
    if (this.bar) {
      this.bar.stop();
      this.bar = undefined;
    }
    if (this.verbose === 0) return;
    const secs = ((performance.now() - this.started) / 1000).toFixed(1);
    console.log(`epoch ${epoch + 1}/${this.epochs} - ${secs}s - ${formatLogs(logs)}`);
  }

  stop(): void {
    this.bar?.stop();
  }
}
