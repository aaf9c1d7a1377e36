// The application examples' training steps against their PyTorch twins, in one run (`npm run bench:apps`, part of
// `npm run bench`): the DCGAN step (discriminator and generator, batch 64) and the convolutional VAE step (batch 64),
// the models of examples/apps/models.mjs and examples/twins/models.py from the same initial weights on the same
// batches. Each runner does warm-up steps, then --steps timed steps (their mean); retrograd and PyTorch (1 and 2
// threads) alternate for --rounds rounds, so a noisy machine slows both alike. Prints the medians, their ratios and the
// CPU model; writes bench/results/apps-<cpu>.json.
//   node bench/apps.mjs [--rounds 3] [--steps 30] [--only gan,vae] [--skip torch]
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as rg from 'retrograd';
import { digits, initDeterministic, permutation, takeRows } from '../examples/apps/common.mjs';
import { appModels } from '../examples/apps/models.mjs';
import { appSteps } from '../examples/apps/steps.mjs';
import { median } from './workloads.mjs';

const PARTS = ['gan', 'vae'];
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, steps: { type: 'string', default: '30' }, only: { type: 'string' }, skip: { type: 'string', default: '' } } });
const rounds = Number(values.rounds), steps = Number(values.steps), warmup = 5;
const parts = values.only ? values.only.split(',').map((s) => s.trim()) : PARTS;
if (parts.some((p) => !PARTS.includes(p))) {
  console.error(`bench/apps.mjs: --only takes a list of ${PARTS.join(', ')}; got '${values.only}'`);
  process.exit(1);
}
const skipTorch = values.skip.split(',').includes('torch');
const here = new URL('.', import.meta.url).pathname;
const log = (...a) => console.error('[bench:apps]', ...a);
const BATCH = 64;

const M = appModels(rg), S = appSteps(rg);
const data = digits(rg);
const order = permutation(data.nTrain, 5);
const images = Array.from({ length: 16 }, (_, s) => rg.tensor(takeRows(data.xTrain, 784, order, s * BATCH, BATCH), [BATCH, 1, 28, 28]));

/** A function that runs `count` training steps of the part's model, returning the last loss. */
const RUNNERS = {
  gan() {
    const xs = images.map((x) => x.mul(2).sub(1)), zs = xs.map((_, s) => S.noise([BATCH, 64], 1000 + s));
    const G = initDeterministic(rg, new M.Generator({ nz: 64, width: 32 }), 2), D = initDeterministic(rg, new M.Discriminator({ width: 32 }), 3);
    const optG = new rg.Adam(G.parameters(), { lr: 2e-4, betas: [0.5, 0.999] }), optD = new rg.Adam(D.parameters(), { lr: 2e-4, betas: [0.5, 0.999] });
    return (count) => {
      let r;
      for (let s = 0; s < count; s++) r = S.ganStep(G, D, optG, optD, xs[s % 16], zs[s % 16]);
      return r.lossG.item();
    };
  },
  vae() {
    const eps = images.map((_, s) => S.noise([BATCH, 16], 2000 + s));
    const model = initDeterministic(rg, new M.VAE({ latent: 16, width: 32 }), 4);
    const opt = new rg.Adam(model.parameters(), { lr: 1e-3 });
    return (count) => {
      let loss;
      for (let s = 0; s < count; s++) loss = S.vaeStep(model, opt, M.negativeElbo, images[s % 16], eps[s % 16]);
      return loss.item();
    };
  },
};

function ours(part) {
  const run = RUNNERS[part]();
  run(warmup);
  const t = performance.now();
  run(steps);
  return { secondsPerStep: (performance.now() - t) / 1000 / steps };
}

function torch(part, threads) {
  const r = spawnSync('/usr/bin/python3', [join(here, 'peers/torch_apps.py'), '--part', part, '--steps', String(steps), '--warmup', String(warmup), '--threads', String(threads)], { encoding: 'utf8' });
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop());
  } catch {
    return { missing: (r.stderr || r.error?.message || '').trim().split('\n').pop() };
  }
}

const CONFIGS = ['1 thread', '2 threads'];
const results = { date: new Date().toISOString(), machine: { cpu: os.cpus()[0].model, cpus: os.cpus().length, node: process.version }, steps, rounds: [] };
for (let round = 0; round < rounds; round++) {
  const row = {};
  for (const part of parts) {
    row[part] = { retrograd: ours(part) };
    if (!skipTorch) CONFIGS.forEach((c, i) => (row[part][`torch ${c}`] = torch(part, i + 1)));
    log(`round ${round + 1} ${part}: ${Object.entries(row[part]).map(([k, v]) => `${k} ${v.missing ?? (1000 * v.secondsPerStep).toFixed(1) + ' ms/step'}`).join(', ')}`);
  }
  results.rounds.push(row);
}

console.log(`\napplication training steps, ${results.machine.cpu} (${results.machine.cpus} CPUs), median of ${rounds} alternating rounds of ${steps} steps`);
results.summary = {};
for (const part of parts) {
  const med = (k) => median(results.rounds.map((r) => r[part][k]?.secondsPerStep).filter((v) => Number.isFinite(v)));
  const o = med('retrograd');
  const s = (results.summary[part] = { retrogradMsPerStep: 1000 * o });
  let line = `${part.toUpperCase()} step (batch ${BATCH}): retrograd cpu ${(1000 * o).toFixed(1)} ms`;
  if (!skipTorch) {
    const torchMs = Object.fromEntries(CONFIGS.map((c) => [c, 1000 * med(`torch ${c}`)]));
    const fastest = Math.min(...Object.values(torchMs).filter(Number.isFinite));
    Object.assign(s, { torchMsPerStep: torchMs, fasterThanFastestTorch: fastest / (1000 * o) });
    line += `; PyTorch ${CONFIGS.map((c) => `${c} ${torchMs[c].toFixed(1)} ms`).join(', ')} → retrograd ${(fastest / (1000 * o)).toFixed(2)}× faster than PyTorch's fastest (goal ≥ 1.5×)`;
  }
  console.log(line);
}
mkdirSync(join(here, 'results'), { recursive: true });
const file = join(here, 'results', `apps-${results.machine.cpu.replace(/[^A-Za-z0-9]+/g, '-').replace(/-+$/, '')}.json`);
writeFileSync(file, JSON.stringify(results, null, 2));
console.log(`written to ${file}`);
