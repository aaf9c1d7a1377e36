// The application examples run end to end in --quick mode, as a user runs them (node examples/<name>.mjs, importing
// the package's dist/): they train, report their figure and write their pictures. Their models are checked against
// PyTorch step by step in apps-golden.test.ts; the figures of the full runs are in the README.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
// pictures and models of the quick runs go to a folder of their own, not over a user's examples/out
const outDir = mkdtempSync(join(tmpdir(), 'retrograd-apps-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));
const run = (file: string, ...args: string[]) =>
  execFileSync(process.execPath, [join(root, 'examples', file), '--quick', ...args], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const number = (re: RegExp, out: string) => {
  const m = re.exec(out);
  if (!m) throw new Error(`no match for ${re} in:\n${out}`);
  return Number(m[1]);
};
/** A PNG file's width and height, after checking its signature. */
function pngSize(path: string): [number, number] {
  const b = readFileSync(path);
  expect([...b.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return [b.readUInt32BE(16), b.readUInt32BE(20)];
}

describe('the application examples (--quick)', () => {
  it('resnet: trains, and the test accuracy is reported', () => {
    const out = run('resnet.mjs');
    expect(out).toMatch(/ResNet \(3 basic blocks, widths 16\/32\/64, \d+ parameters\)/);
    const acc = number(/test accuracy: ([\d.]+)% on 2000 digits/, out);
    expect(acc).toBeGreaterThanOrEqual(0);
    expect(acc).toBeLessThanOrEqual(100);
  }, 180_000);

  it('gan: trains the judge and the DCGAN, judges 1,000 digits and writes the grid', () => {
    const out = run('gan.mjs', '--out', outDir);
    const shares = [...out.matchAll(/(\d): ([\d.]+)%/g)].map((m) => Number(m[2]));
    expect(shares).toHaveLength(10);
    expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(100, 0);
    expect(out).toMatch(/goal \(≥ 90% confident, every class 5–20%\): (met|not met)/);
    expect(pngSize(join(outDir, 'gan-samples.png'))).toEqual([302, 302]);
  }, 180_000);

  it('gan --conditional: asks each class of 100 digits, reports how often the judge agrees, writes the grid', () => {
    const out = run('gan.mjs', '--conditional', '--out', outDir);
    expect(out).toMatch(/^conditional DCGAN on 8000 MNIST digits/m);
    const agree = number(/the judge's label is the class asked for ([\d.]+)% of them/, out);
    expect(agree).toBeGreaterThanOrEqual(0);
    expect(agree).toBeLessThanOrEqual(100);
    expect(pngSize(join(outDir, 'gan-conditional-samples.png'))).toEqual([302, 302]);
  }, 180_000);

  it('gan --clusters: clusters the digits by k-means (labels unused), trains on the clusters, judges and writes the grid', () => {
    const out = run('gan.mjs', '--clusters', '20', '--out', outDir);
    const purity = number(/k-means: 20 clusters of the training digits' pixels in [\d.]+ s \(the labels only report their purity: ([\d.]+)%\)/, out);
    expect(purity).toBeGreaterThan(30); // 10 classes in 20 clusters: far purer than the 11% of chance
    expect(out).toMatch(/^self-conditioned DCGAN on 8000 MNIST digits/m);
    expect(out).toMatch(/goal \(≥ 90% confident, every class 5–20%\): (met|not met)/);
    expect(pngSize(join(outDir, 'gan-self-conditioned-samples.png'))).toEqual([302, 302]);
  }, 180_000);

  it('gan rejects --clusters with --conditional, and a count that is not a whole number', () => {
    for (const args of [['--clusters', '20', '--conditional'], ['--clusters', '2.5'], ['--clusters', 'many']]) {
      const r = spawnSync(process.execPath, [join(root, 'examples', 'gan.mjs'), ...args, '--quick', '--out', outDir], { cwd: root, encoding: 'utf8' });
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/example:gan: --clusters takes a whole number of clusters, without --conditional/);
    }
  });

  it('vae: the held-out negative ELBO falls well below the 543 nats of a model that knows nothing', () => {
    const out = run('vae.mjs', '--out', outDir);
    // 784 pixels at p = 0.5 cost 784·ln 2 = 543 nats; the 16 steps of --quick reach about 350
    expect(number(/held-out negative ELBO: ([\d.]+) nats per digit/, out)).toBeLessThan(450);
    expect(pngSize(join(outDir, 'vae-reconstructions.png'))).toEqual([302, 62]);
    expect(existsSync(join(outDir, 'vae-samples.png'))).toBe(true);
  }, 180_000);

  it('translate: trains the encoder–decoder and decodes held-out dates through the cache', () => {
    const out = run('translate.mjs');
    expect(out).toMatch(/greedy decoding through the key\/value cache: 200 sentences × 11 steps/);
    const first = number(/epoch 1: training loss ([\d.]+)/, out);
    expect(first).toBeLessThan(Math.log(14)); // below a uniform guess over the 14 target symbols
    expect(number(/exact match on 200 held-out sentences: ([\d.]+)%/, out)).toBeGreaterThanOrEqual(0);
  }, 180_000);

  it('lora: pretrains, saves, adapts only the adapters, merges and reloads the merged model', () => {
    const out = run('lora.mjs', '--out', outDir);
    const trainable = number(/trainable: \d+ of \d+ numbers \(([\d.]+)%\)/, out);
    expect(trainable).toBeGreaterThan(0);
    expect(trainable).toBeLessThan(10);
    const m = /base model ([\d.]+), adapted ([\d.]+), merged and reloaded ([\d.]+)/.exec(out)!;
    const [base, adapted, merged] = [m[1], m[2], m[3]].map(Number);
    expect(adapted).toBeLessThan(base); // even a few steps of the adapters lower the new text's held-out loss
    expect(merged).toBeCloseTo(adapted, 2); // the merged model computes what the adapted one did
    expect(existsSync(join(outDir, 'gpt-lora-merged.safetensors'))).toBe(true);
  }, 180_000);
});
