// The `retrograd` command: info, train from a JSON config (CSV streamed, JSON and binary data), report, check, and the
// main job's convolutional model (`mnist --model cnn`), briefly.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireCpu } from './helpers.js';

const cpuAvailable = requireCpu();

const root = join(import.meta.dirname, '..');
const cli = (...args: string[]) => execFileSync(process.execPath, [join(root, 'dist', 'cli.js'), ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, RETROGRAD_BACKEND: cpuAvailable ? 'cpu' : 'reference' } });
const dir = mkdtempSync(join(tmpdir(), 'retrograd-cli-'));

function rows(n: number, offset: number): number[][] {
  return Array.from({ length: n }, (_, i) => {
    const c = (i + offset) % 3;
    return [...[0, 1, 2].map((j) => (j === c ? 2 : 0) + 0.3 * Math.sin(i * 7 + j + offset)), c];
  });
}

describe('retrograd command line', () => {
  it('info lists the backends', () => {
    expect(cli('info')).toMatch(/^cpu: (available|unavailable)/m);
    expect(cli('help')).toMatch(/retrograd train <config.json>/);
  });

  it('--help, a command\'s --help and --version exit 0; an unknown command exits 1 with the usage on stderr', () => {
    for (const args of [[], ['--help'], ['-h']]) {
      const out = cli(...args);
      for (const command of ['mnist', 'info', 'train', 'dashboard', 'report', 'bench', 'check']) expect(out).toMatch(new RegExp(`^  retrograd ${command}\\b`, 'm'));
    }
    expect(cli('mnist', '--help')).toMatch(/^usage: retrograd mnist \[--model mlp\|cnn\]/);
    expect(cli('check', 'cpu', '-h')).toMatch(/^usage: retrograd check \[backend\]/);
    expect(cli('help', 'train')).toMatch(/^usage: retrograd train <config.json>/);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    expect(cli('--version').trim()).toBe(pkg.version);
    expect(cli('-v').trim()).toBe(pkg.version);
    const bad = spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), 'trian'], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^retrograd: unknown command 'trian'\nusage:/);
    expect(bad.stdout).toBe('');
  });

  it('train reads a config, streams CSV data, saves the model and the History; report draws it', () => {
    writeFileSync(join(dir, 'train.csv'), ['a,b,c,label', ...rows(240, 0).map((r) => r.join(','))].join('\n'));
    writeFileSync(join(dir, 'val.json'), JSON.stringify({ x: rows(60, 1).map((r) => r.slice(0, 3)), y: rows(60, 1).map((r) => r[3]) }));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({
      model: { type: 'Sequential', layers: [{ type: 'Linear', args: [3, 16] }, { type: 'ReLU' }, { type: 'Linear', args: [16, 3] }] },
      data: { train: { csv: 'train.csv', label: 'label' }, validation: { json: 'val.json' } },
      optimizer: { type: 'Adam', lr: 0.02 }, loss: 'CrossEntropyLoss', metrics: ['accuracy'],
      epochs: 6, batchSize: 32, save: 'model.safetensors', history: 'history.json', seed: 1,
    }));
    const out = cli('train', join(dir, 'config.json'));
    expect(out).toMatch(/epoch 6\/6 .* val_accuracy/);
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(true);
    const history = JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8'));
    expect(history.history.val_accuracy.at(-1)).toBeGreaterThan(0.9);
    cli('report', join(dir, 'history.json'), '-o', join(dir, 'report.html'));
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).not.toMatch(/<script|(src|href)=["']?https?:/); // no script, nothing fetched
    const curves = [...html.matchAll(/<polyline class="curve" data-series="([^"]+)"[^>]* points="([^"]+)"/g)];
    expect(curves.map((c) => c[1])).toEqual(['loss', 'val_loss', 'accuracy', 'val_accuracy']);
    for (const c of curves) expect(c[2].trim().split(' ').length).toBe(6);
  });

  it('train reads raw binary arrays and rejects unknown optimizers clearly', () => {
    const data = rows(90, 2);
    writeFileSync(join(dir, 'x.f32'), Buffer.from(Float32Array.from(data.flatMap((r) => r.slice(0, 3))).buffer));
    writeFileSync(join(dir, 'y.i32'), Buffer.from(Int32Array.from(data.map((r) => r[3])).buffer));
    const config = (optimizer: string) => JSON.stringify({
      model: { type: 'Sequential', layers: [{ type: 'Linear', args: [3, 3] }] }, data: { train: { x: 'x.f32', y: 'y.i32', features: 3 } },
      optimizer: { type: optimizer, lr: 0.1 }, epochs: 2, history: 'h2.json',
    });
    writeFileSync(join(dir, 'bin.json'), config('SGD'));
    cli('train', join(dir, 'bin.json'));
    expect(JSON.parse(readFileSync(join(dir, 'h2.json'), 'utf8')).history.loss.length).toBe(2);
    writeFileSync(join(dir, 'bad.json'), config('Adamm'));
    expect(() => cli('train', join(dir, 'bad.json'))).toThrow(/"optimizer\.type" must be one of "SGD", "Adam", .*, got the string 'Adamm' \(did you mean "Adam"\?\)/);
  });

  it('train with a config naming a missing CSV, or a path outside its folder, exits 1 with a one-line error', () => {
    const run = (config: object) => {
      writeFileSync(join(dir, 'hostile.json'), JSON.stringify({ model: { type: 'Linear', args: [2, 2] }, epochs: 1, ...config }));
      return spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), 'train', join(dir, 'hostile.json')], { cwd: root, encoding: 'utf8', timeout: 30_000 });
    };
    const missing = run({ data: { train: { csv: 'no-such-file.csv', label: 'y' } } });
    expect(missing.status).toBe(1);
    expect(missing.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^readCSV: ENOENT: no such file or directory, open '.*no-such-file\.csv'$/)]);
    const outside = run({ data: { train: { csv: '../elsewhere.csv', label: 'y' } } });
    expect(outside.status).toBe(1);
    expect(outside.stderr.trim().split('\n')).toEqual([expect.stringMatching(/"data\.train\.csv" \('\.\.\/elsewhere\.csv'\) is outside the config's folder/)]);
  });

  it('train checks the config against its schema first: unknown keys and wrong types name the key and the closest valid one', () => {
    writeFileSync(join(dir, 'sorted.csv'), ['a,b,c,label', ...rows(240, 0).sort((p, q) => p[3] - q[3]).map((r) => r.join(','))].join('\n'));
    const base = { model: { type: 'Sequential', layers: [{ type: 'Linear', args: [3, 3] }] }, data: { train: { csv: 'sorted.csv', label: 'label' } }, epochs: 1 };
    const run = (config: object) => {
      writeFileSync(join(dir, 'schema.json'), JSON.stringify(config));
      const r = spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), 'train', join(dir, 'schema.json')], { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, RETROGRAD_BACKEND: cpuAvailable ? 'cpu' : 'reference' } });
      return { status: r.status, err: r.stderr.trim(), out: r.stdout };
    };
    const where = `retrograd train ${join(dir, 'schema.json')}`;
    const { epochs: _e, ...noEpochs } = base;
    expect(run({ ...noEpochs, epoch: 2 })).toMatchObject({ status: 1, err: `${where}: unknown key "epoch" (did you mean "epochs"?); valid keys: $schema, model, data, optimizer, loss, metrics, epochs, batchSize, shuffle, shuffleBuffer, save, history, seed, autocast` });
    expect(run({ ...base, epochs: '2' }).err).toBe(`${where}: "epochs" must be an integer, got the string '2'`);
    expect(run({ ...base, epochs: 0 }).err).toBe(`${where}: "epochs" must be at least 1, got 0`);
    expect(run({ ...base, batchSize: 2.5 }).err).toBe(`${where}: "batchSize" must be an integer, got number 2.5`);
    expect(run({ ...base, data: { train: { csv: 'sorted.csv', lable: 'label' } } }).err).toBe(`${where}: unknown key "data.train.lable" (did you mean "data.train.label"?); valid keys in "data.train": csv, label, json, x, y, features`);
    expect(run({ ...base, data: { validation: { json: 'v.json' } } }).err).toBe(`${where}: "data" needs "train"`);
    expect(run({ ...base, loss: 'MSELos' }).err).toMatch(/"loss" must be one of "CrossEntropyLoss", "MSELoss", .*, got the string 'MSELos' \(did you mean "MSELoss"\?\)$/);
    expect(run({ ...base, optimizer: { type: 'Adam', lrr: 0.1 } }).err).toMatch(/unknown option 'lrr' \(did you mean 'lr'\?\)/);
    expect(run({ ...base, metrics: ['acc'] }).err).toBe(`${where}: "metrics[0]" must be one of "accuracy", got the string 'acc'`);
    expect(run({ ...base, autocast: 'bfloat1' }).err).toBe(`${where}: "autocast" must be one of "bfloat16", false, got the string 'bfloat1' (did you mean "bfloat16"?)`);
    expect(run({ ...base, shuffle: true }).err).toBe(`${where}: "shuffle": true on a streamed CSV needs "shuffleBuffer", the number of rows held to draw from (e.g. 10000; as many as the file's rows for a full shuffle)`);
    expect(run({ ...base, shuffleBuffer: 10 }).err).toBe(`${where}: "shuffleBuffer" is for "shuffle": true on a streamed CSV ("data.train.csv")`);
    writeFileSync(join(dir, 'broken.json'), '{ "model": ');
    expect(spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), 'train', join(dir, 'broken.json')], { encoding: 'utf8' }).stderr).toMatch(/broken\.json: not valid JSON \(/);
    // class-sorted rows, streamed through a shuffle buffer as large as the file: the first epoch learns every class
    const shuffled = run({ ...base, epochs: 1, batchSize: 8, shuffle: true, shuffleBuffer: 240, seed: 1, metrics: ['accuracy'], optimizer: { type: 'Adam', lr: 0.05 } });
    expect(shuffled.status, shuffled.err).toBe(0);
    const inOrder = run({ ...base, epochs: 1, batchSize: 8, seed: 1, metrics: ['accuracy'], optimizer: { type: 'Adam', lr: 0.05 } });
    const accuracy = (out: string) => Number(/accuracy[ =:]+([\d.]+)/.exec(out)?.[1]);
    expect(accuracy(shuffled.out)).toBeGreaterThan(0.8);
    expect(accuracy(inOrder.out)).toBeLessThan(accuracy(shuffled.out));
  });

  it('dashboard trains a config with the live page, which stays up afterwards with the finished run', async () => {
    writeFileSync(join(dir, 'dash.csv'), ['a,b,c,label', ...rows(120, 0).map((r) => r.join(','))].join('\n'));
    writeFileSync(join(dir, 'dash.json'), JSON.stringify({ model: { type: 'Sequential', layers: [{ type: 'Linear', args: [3, 3] }] }, data: { train: { csv: 'dash.csv', label: 'label' } }, epochs: 3, metrics: ['accuracy'] }));
    const child = spawn(process.execPath, [join(root, 'dist', 'cli.js'), 'dashboard', join(dir, 'dash.json'), '--port', '0'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RETROGRAD_BACKEND: cpuAvailable ? 'cpu' : 'reference' } });
    let out = '';
    child.stdout.on('data', (d) => { out += String(d); });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const t = setInterval(() => {
          const m = /training done; the dashboard stays at (http:\/\/\S+) \(Ctrl-C to stop\)/.exec(out);
          if (m) { clearInterval(t); resolve(m[1]); }
        }, 20);
        setTimeout(() => { clearInterval(t); reject(new Error(`no dashboard: ${out}`)); }, 30_000);
      });
      const state = await (await fetch(`${url}state`)).json() as { state: string; epochs: number; history: { history: Record<string, number[]> } };
      expect(state).toMatchObject({ state: 'done', epochs: 3 });
      expect(state.history.history.accuracy.length).toBe(3);
      expect(await (await fetch(url)).text()).toContain('<title>retrograd train ');
      expect(child.exitCode).toBe(null); // still serving
    } finally {
      child.kill();
    }
  }, 60_000);

  it('train --schema prints the JSON Schema that docs/train-config.schema.json ships', () => {
    const printed = JSON.parse(cli('train', '--schema'));
    expect(printed.title).toBe('retrograd train config');
    expect(JSON.parse(readFileSync(join(root, 'docs', 'train-config.schema.json'), 'utf8'))).toEqual(printed);
  });

  it.skipIf(!cpuAvailable)('check runs the chosen kernels of a backend against the reference', () => {
    const out = cli('check', 'cpu', '--only', 'relu_forward,matmul', '--seed', '3');
    expect(out).toMatch(/^ok +matmul +\d+\/\d+ cases +worst error \S+ \(tol 2\.0e-5\), element \S+ \(tol 4\.0e-5\)$/m);
    expect(out).toMatch(/^ok +relu_forward /m);
    expect(out).toMatch(/^all 2 kernels passed: \d+ cases on 'cpu' .*seed 3$/m);
  });

  // The reference backend needs about 9 s per CNN batch: only the native one trains it within a test's time.
  it.skipIf(!cpuAvailable)('mnist --model cnn trains the convolutional network and reports its test accuracy', () => {
    // 2 epochs over 2,000 digits (64 steps, ~8 s here) reach 88%; the full job, 8 epochs over 8,000, about 97.9%.
    const out = cli('mnist', '--model', 'cnn', '--epochs', '2', '--train', '2000', '--test', '500');
    expect(out).toMatch(/^MNIST: 2000 training and 500 test digits; backend cpu$/m);
    expect(out).toMatch(/^model: CNN conv 5×5 1→32, .*Linear 3136→10;/m);
    expect(out).toMatch(/epoch 2\/2 .* val_accuracy/);
    const accuracy = Number(/^test accuracy: (\d+\.\d\d)%$/m.exec(out)?.[1]);
    expect(accuracy).toBeGreaterThan(80);
    const bad = spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), 'mnist', '--model', 'resnet'], { cwd: root, encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/retrograd mnist: --model must be mlp or cnn, got 'resnet'/);
  });

  it('check exits 2 for a backend that cannot load and 1 for an unknown kernel, saying why', () => {
    const run = (...args: string[]) => spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), ...args], { cwd: root, encoding: 'utf8' });
    const missing = run('check', 'tpu');
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/backend 'tpu' cannot be loaded: .*unknown backend 'tpu'; known: cpu, cuda, reference/);
    const unknown = run('check', 'reference', '--only', 'relu');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/unknown kernel 'relu' in --only/);
  });
});
