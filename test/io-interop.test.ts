// Safetensors interop with PyTorch, both ways. With Debian's python3-torch importable by /usr/bin/python3,
// test/golden/make_interop.py runs here in a temporary folder: PyTorch loads a file rg.save writes now and must
// compute retrograd's outputs, and a state_dict PyTorch writes now (as safetensors, by numpy) must load into the
// equivalent retrograd model and give PyTorch's outputs. Without torch that part is skipped, saying why, and the
// committed fixtures (made by the same script with `npm run golden`) stand in for PyTorch's side.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { relError, rg, root } from './helpers.js';

const python = '/usr/bin/python3';
const torchCheck = spawnSync(python, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
const torchReason = torchCheck.error ? `${python} cannot run (${torchCheck.error.message})` : torchCheck.status !== 0 ? `${python} cannot import torch and numpy (apt-get install python3-torch)` : '';
if (torchReason) console.warn(`skipping the live PyTorch interop checks: ${torchReason}`);

/** The Linear(7, 6) ReLU Linear(6, 4) GELU Linear(4, 2) model make_interop.py writes from PyTorch. */
const torchShaped = () => new rg.Sequential([new rg.Linear(7, 6), new rg.ReLU(), new rg.Linear(6, 4), new rg.GELU(), new rg.Linear(4, 2)]);

/** Loads `dir`/torch-mlp.safetensors into the retrograd model and returns its outputs with PyTorch's. */
async function retrogradOnTorchFile(dir: string): Promise<{ got: ArrayLike<number>; want: number[]; keys: string[]; loaded: string[] }> {
  const ref = JSON.parse(readFileSync(join(dir, 'torch-mlp.json'), 'utf8')) as { x: number[]; y: number[]; keys: string[] };
  const sd = await rg.loadSafetensors(join(dir, 'torch-mlp.safetensors'));
  const model = torchShaped();
  model.loadStateDict(sd);
  return { got: model.forward(rg.tensor(ref.x, [5, 7])).toArray(), want: ref.y, keys: ref.keys, loaded: Object.keys(sd) };
}

describe('the committed fixtures', () => {
  it("a PyTorch state_dict (safetensors written by numpy) loads into the equivalent model and gives PyTorch's outputs", async () => {
    const r = await retrogradOnTorchFile(join(root, 'test', 'golden'));
    expect(r.loaded).toEqual(r.keys);
    expect(relError(r.got, r.want)).toBeLessThan(1e-5);
  });

  it('rg.load still reads the file rg.save wrote for PyTorch, and gives the outputs recorded then', async () => {
    const model = await rg.load(join(root, 'test', 'golden', 'retrograd-mlp.safetensors'));
    const ref = JSON.parse(readFileSync(join(root, 'test', 'golden', 'retrograd-mlp.json'), 'utf8')) as { x: number[]; y: number[] };
    expect(relError(model.forward(rg.tensor(ref.x, [4, 6])).toArray(), ref.y)).toBeLessThan(1e-6);
  });
});

describe.skipIf(torchReason !== '')('live PyTorch (make_interop.py in a temporary folder)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'retrograd-interop-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let out = '';

  it('PyTorch loads a model rg.save writes now and computes the same outputs', async () => {
    rg.setBackend('reference');
    rg.manualSeed(5);
    const model = new rg.Sequential([new rg.Linear(6, 5), new rg.Tanh(), new rg.Linear(5, 3)]);
    const x = rg.tensor(Float32Array.from({ length: 4 * 6 }, (_, i) => Math.cos(i * 0.9)), [4, 6]);
    await rg.save(model, join(dir, 'retrograd-mlp.safetensors'));
    writeFileSync(join(dir, 'retrograd-mlp.json'), JSON.stringify({ x: [...x.toArray()], y: [...model.forward(x).toArray()] }));
    out = execFileSync(python, [join(root, 'test', 'golden', 'make_interop.py'), dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).toMatch(/retrograd-mlp\.safetensors loads into PyTorch: outputs agree to \S+/);
  }, 120_000);

  it("a state_dict PyTorch writes now loads into the equivalent model and gives PyTorch's outputs", async () => {
    expect(out, 'make_interop.py ran').toMatch(/wrote torch-mlp\.safetensors/);
    const r = await retrogradOnTorchFile(dir);
    expect(r.loaded).toEqual(r.keys);
    expect(relError(r.got, r.want)).toBeLessThan(1e-5);
  });
});
