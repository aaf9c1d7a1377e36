// The README's example runs as written (with the progress output silenced), so the README stays true.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireBuiltDist } from './helpers.js';

// the README's code and the examples import the package as a user does: dist/
beforeAll(requireBuiltDist);

it('the README example trains, evaluates and predicts', () => {
  const root = join(import.meta.dirname, '..');
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const code = readme.match(/```ts\n([\s\S]*?)```/)![1].replace('{ epochs: 10, batchSize: 64 }', '{ epochs: 10, batchSize: 64, verbose: 0 }');
  expect(code).toContain('verbose: 0');
  const file = join(root, 'test', 'readme-example.tmp.mjs');
  writeFileSync(file, code);
  try {
    const out = execFileSync(process.execPath, [file], { cwd: root, encoding: 'utf8' });
    const accuracy = Number(out.trim().split(/\s+/)[0]);
    expect(accuracy).toBeGreaterThan(0.9);
  } finally {
    rmSync(file, { force: true });
  }
}, 120_000);

it('the "Writing models" example trains a residual module by hand and takes the input gradient', () => {
  const root = join(import.meta.dirname, '..');
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const code = readme.slice(readme.indexOf('## Writing models')).match(/```js\n([\s\S]*?)```/)![1];
  const file = join(root, 'test', 'readme-models.tmp.mjs');
  writeFileSync(file, code);
  try {
    const out = execFileSync(process.execPath, [file], { cwd: root, encoding: 'utf8' }).trim().split(/\s+/);
    expect(Number(out[0])).toBeLessThan(0.9); // ln 3 ≈ 1.10 at chance
    expect(out[1]).toBe('[');
  } finally {
    rmSync(file, { force: true });
  }
}, 60_000);

it('the fine-tuning example freezes the first layer and learns the new digits', () => {
  const root = join(import.meta.dirname, '..');
  const out = execFileSync(process.execPath, [join(root, 'examples', 'fine-tune.mjs'), '--quick'], { cwd: root, encoding: 'utf8' });
  expect(out).toMatch(/frozen layer unchanged: true/);
  const accuracy = Number(/test accuracy: ([\d.]+)%/.exec(out)![1]);
  expect(accuracy).toBeGreaterThan(88);
});

it('the server example keeps answering its health check while it trains', () => {
  const root = join(import.meta.dirname, '..');
  const out = execFileSync(process.execPath, [join(root, 'examples', 'server.mjs'), '--check'], { cwd: root, encoding: 'utf8' });
  const m = /health checks during training: (\d+), median ([\d.]+) ms, p99 ([\d.]+) ms/.exec(out)!;
  const epochs = [...out.matchAll(/^epoch \d+: /gm)].length;
  expect(epochs).toBeGreaterThan(0);
  // Counted, not timed (other test files may load the machine, which stretches latencies and training alike): a
  // blocked event loop would answer once per epoch at most, when fit's callbacks hand it back; a free one polls
  // every 20 ms all through.
  expect(Number(m[1])).toBeGreaterThan(Math.max(5, 4 * epochs));
  expect(out).toMatch(/^failed requests: 0$/m);
}, 120_000);

describe('the sequence-model examples (--quick)', () => {
  const root = join(import.meta.dirname, '..');
  const run = (file: string) => execFileSync(process.execPath, [join(root, 'examples', file), '--quick'], { cwd: root, encoding: 'utf8' });
  const number = (re: RegExp, out: string) => Number(re.exec(out)![1]);

  it('char-lstm: the held-out loss falls below the unigram entropy, and it samples text', () => {
    const out = run('char-lstm.mjs');
    const unigram = number(/unigram entropy ([\d.]+)/, out), valid = number(/final valid loss ([\d.]+)/, out);
    expect(valid).toBeLessThan(unigram);
    expect(out).toMatch(/sample \(temperature 0\.7\):\nThis License .{100,}/s);
  }, 120_000);

  it('tiny-gpt: the held-out loss falls below the unigram entropy, and it samples text', () => {
    const out = run('tiny-gpt.mjs');
    expect(number(/final valid loss ([\d.]+)/, out)).toBeLessThan(number(/unigram entropy ([\d.]+)/, out) - 0.3);
    expect(out).toMatch(/sample \(temperature 0\.7\):\nThis License .{100,}/s);
  }, 120_000);

  it('sequence-classifier: an LSTM carries the first symbol across 100 steps (well above the 25% of chance)', () => {
    const out = run('sequence-classifier.mjs');
    const accuracies = [...out.matchAll(/accuracy ([\d.]+)%/g)].map((m) => Number(m[1]));
    expect(accuracies.at(-1)!).toBeGreaterThan(50);
  }, 120_000);
});
