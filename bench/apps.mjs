// The application examples' training steps against their PyTorch twins, in one run (`npm run bench:apps`, part of
// `npm run bench`): the DCGAN step (discriminator and generator, batch 64), the convolutional VAE step (batch 64) and
// the date translator's step (encoder–decoder transformer, batch 64), the models of examples/apps/models.mjs and
// examples/twins/models.py from the same initial weights on the same batches; and greedy decoding, one sentence at a
// time (11 tokens each): retrograd through its key/value cache, PyTorch's nn.Transformer (which has no cache) by
// running the decoder over the prefix at each step, as PyTorch code does. Each measurement runs in a fresh process
// (retrograd's too): 100 warm-up steps, then --steps timed steps (their mean); retrograd and PyTorch (1 and 2 threads)
// alternate for --rounds rounds, so a noisy machine slows both alike. Prints the medians, their ratios and the
// CPU model; writes bench/results/apps-<cpu>.json.
//   node bench/apps.mjs [--rounds 3] [--steps 40] [--only gan,vae,translate,decode] [--skip torch] [--backend cuda]
// --backend cuda: retrograd on the GPU against PyTorch on the same card (one configuration, timed after a
// synchronisation), for bench/gpu-check.sh.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as rg from 'retrograd';
import { digits, initDeterministic, permutation, takeRows } from '../examples/apps/common.mjs';
import { appModels } from '../examples/apps/models.mjs';
import { appSteps } from '../examples/apps/steps.mjs';
import { dateExamples, vocabularies } from '../examples/apps/dates.mjs';
import { median, peerFailure, resultsDir } from './workloads.mjs';

const PARTS = ['gan', 'vae', 'translate', 'decode'];
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, steps: { type: 'string', default: '40' }, only: { type: 'string' }, skip: { type: 'string', default: '' }, backend: { type: 'string', default: 'cpu' }, child: { type: 'string' } } });
// 100 untimed steps, for both runners: a training run's steady state, where V8 has compiled the hot paths and the
// storage cache holds the step's tensors (the DCGAN's first 10 steps take twice as long as its 200th, the pages of
// fresh memory faulted in)
const rounds = Number(values.rounds), steps = Number(values.steps), warmup = 100;
const parts = values.only ? values.only.split(',').map((s) => s.trim()) : PARTS;
if (parts.some((p) => !PARTS.includes(p))) {
  console.error(`bench/apps.mjs: --only takes a list of ${PARTS.join(', ')}; got '${values.only}'`);
  process.exit(1);
}
const skipTorch = values.skip.split(',').includes('torch');
const here = new URL('.', import.meta.url).pathname;
const log = (...a) => console.error('[bench:apps]', ...a);
const BATCH = 64;

const backend = values.backend;
rg.setBackend(backend);
const M = appModels(rg), S = appSteps(rg);
const data = digits(rg);
const order = permutation(data.nTrain, 5);
// the translator's sentences, written for the PyTorch peer too
const sentences = dateExamples(16 * BATCH, 3), vocab = vocabularies();
const dataFile = join(mkdtempSync(join(os.tmpdir(), 'retrograd-apps-')), 'sentences.json');
writeFileSync(dataFile, JSON.stringify({ src: [...sentences.src], tgt: [...sentences.tgt], srcLen: sentences.srcLen, srcVocab: vocab.source.length, tgtVocab: vocab.target.length }));
const translator = () => initDeterministic(rg, new M.Translator({ srcVocab: vocab.source.length, tgtVocab: vocab.target.length }), 5);
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
  translate() {
    const model = translator();
    const opt = new rg.Adam(model.parameters(), { lr: 1e-3 });
    const src = Array.from({ length: 16 }, (_, s) => rg.tensor(sentences.src.subarray(s * BATCH * sentences.srcLen, (s + 1) * BATCH * sentences.srcLen), [BATCH, sentences.srcLen]));
    const tgt = Array.from({ length: 16 }, (_, s) => rg.tensor(sentences.tgt.subarray(s * BATCH * 12, (s + 1) * BATCH * 12), [BATCH, 12]));
    return (count) => {
      let loss;
      for (let s = 0; s < count; s++) loss = S.translateStep(model, opt, M.translationLoss, src[s % 16], tgt[s % 16]);
      return loss.item();
    };
  },
  /** `count` sentences decoded one at a time, 11 tokens each, through the cache. */
  decode() {
    const model = translator().eval();
    const cache = new rg.KVCache();
    return (count) => rg.noGrad(() => {
      let last;
      for (let s = 0; s < count; s++) {
        const i = s % sentences.n;
        const { memory, pad } = model.encode(rg.tensor(sentences.src.subarray(i * sentences.srcLen, (i + 1) * sentences.srcLen), [1, sentences.srcLen]));
        let token = rg.tensor(Int32Array.of(1), [1, 1]);
        for (let t = 0; t < 11; t++) token = model.decode(token, memory, pad, { cache, offset: t }).argmax(-1);
        last = token.item();
        cache.reset();
      }
      return last;
    });
  },
};
/** What a part's time is divided by: decoding reports per token, the rest per training step. */
const PER = { gan: 'step', vae: 'step', translate: 'step', decode: 'token' };
const perUnit = (part, seconds) => (PER[part] === 'token' ? seconds / 11 : seconds);

function ours(part) {
  const run = RUNNERS[part]();
  run(warmup);
  const t = performance.now();
  run(steps);
  return { seconds: perUnit(part, (performance.now() - t) / 1000 / steps) };
}

/** retrograd's measurement of a part in a fresh process, as each PyTorch measurement is: one process that ran every
 * part before measured the DCGAN 30% slower (its heap, the storage cache sized for the others). */
function oursFresh(part) {
  const r = spawnSync(process.execPath, [join(here, 'apps.mjs'), '--child', part, '--steps', String(steps), '--backend', backend], { encoding: 'utf8' });
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop());
  } catch {
    return { missing: r.error ? r.error.message : peerFailure(r.stderr, r.status) };
  }
}
if (values.child) {
  console.log(JSON.stringify(ours(values.child)));
  process.exit(0);
}

function torch(part, threads) {
  const device = backend === 'cuda' ? ['--device', 'cuda'] : ['--threads', String(threads)];
  const python = backend === 'cuda' ? 'python3' : '/usr/bin/python3'; // on a GPU machine: the PyTorch that sees the card
  const r = spawnSync(python, [join(here, 'peers/torch_apps.py'), '--part', part, '--steps', String(steps), '--warmup', String(warmup), '--data', dataFile, ...device], { encoding: 'utf8' });
  try {
    const o = JSON.parse(r.stdout.trim().split('\n').pop());
    return { seconds: o.secondsPerStep ?? o.secondsPerToken };
  } catch {
    return { missing: r.error ? r.error.message : peerFailure(r.stderr, r.status) };
  }
}

const CONFIGS = backend === 'cuda' ? ['on the GPU'] : ['1 thread', '2 threads'];
const results = { date: new Date().toISOString(), machine: { cpu: os.cpus()[0].model, cpus: os.cpus().length, node: process.version }, steps, rounds: [] };
for (let round = 0; round < rounds; round++) {
  const row = {};
  for (const part of parts) {
    row[part] = { retrograd: oursFresh(part) };
    if (!skipTorch) CONFIGS.forEach((c, i) => (row[part][`torch ${c}`] = torch(part, i + 1)));
    log(`round ${round + 1} ${part}: ${Object.entries(row[part]).map(([k, v]) => `${k} ${v.missing ?? (1000 * v.seconds).toFixed(2) + ` ms/${PER[part]}`}`).join(', ')}`);
  }
  results.rounds.push(row);
}

const where = backend === 'cuda' ? `retrograd cuda, ${rg.backends().find((b) => b.name === 'cuda')?.detail.device ?? 'GPU'}` : `${results.machine.cpu} (${results.machine.cpus} CPUs)`;
console.log(`\napplication training steps, ${where}, median of ${rounds} alternating rounds of ${steps} steps`);
results.summary = {};
for (const part of parts) {
  const med = (k) => median(results.rounds.map((r) => r[part][k]?.seconds).filter((v) => Number.isFinite(v)));
  const o = med('retrograd'), unit = PER[part];
  const s = (results.summary[part] = { unit, retrogradMs: 1000 * o });
  const title = part === 'decode' ? 'greedy decoding, one sentence at a time' : `${part} training step (batch ${BATCH})`;
  let line = `${title}: retrograd ${backend} ${(1000 * o).toFixed(2)} ms/${unit}${unit === 'token' ? ` (${(1 / o).toFixed(0)} tokens/s)` : ''}`;
  if (!skipTorch) {
    const torchMs = Object.fromEntries(CONFIGS.map((c) => [c, 1000 * med(`torch ${c}`)]));
    const fastest = Math.min(...Object.values(torchMs).filter(Number.isFinite));
    Object.assign(s, { torchMs, fasterThanFastestTorch: fastest / (1000 * o) });
    line += `; PyTorch ${CONFIGS.map((c) => `${c} ${torchMs[c].toFixed(2)} ms`).join(', ')} → retrograd ${(fastest / (1000 * o)).toFixed(2)}× faster than PyTorch's fastest${unit === 'step' ? ' (goal ≥ 1.5×)' : ''}`;
  }
  console.log(line);
}
mkdirSync(resultsDir(here), { recursive: true });
const file = join(resultsDir(here), `apps-${backend === 'cuda' ? 'cuda-' : ''}${results.machine.cpu.replace(/[^A-Za-z0-9]+/g, '-').replace(/-+$/, '')}.json`);
writeFileSync(file, JSON.stringify(results, null, 2));
console.log(`written to ${file}`);
