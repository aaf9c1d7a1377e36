// Safetensors interop with PyTorch (fixtures from test/golden/make_interop.py): a file written from PyTorch's
// state_dict with numpy loads into the equivalent retrograd model and gives PyTorch's outputs. (The other
// direction — a file rg.save wrote, read by PyTorch — is checked by that script when the fixtures are made.)
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { relError, rg } from './helpers.js';

it('a PyTorch state_dict written as safetensors by numpy loads and reproduces PyTorch outputs', async () => {
  const ref = JSON.parse(readFileSync(new URL('./golden/torch-mlp.json', import.meta.url), 'utf8')) as { x: number[]; y: number[]; keys: string[] };
  const sd = await rg.loadSafetensors(new URL('./golden/torch-mlp.safetensors', import.meta.url).pathname);
  expect(Object.keys(sd)).toEqual(ref.keys);
  const model = new rg.Sequential([new rg.Linear(7, 6), new rg.ReLU(), new rg.Linear(6, 4), new rg.GELU(), new rg.Linear(4, 2)]);
  model.loadStateDict(sd);
  expect(relError(model.forward(rg.tensor(ref.x, [5, 7])).toArray(), ref.y)).toBeLessThan(1e-5);
});

it('the retrograd fixture PyTorch read back is what rg.save writes today', async () => {
  const file = new URL('./golden/retrograd-mlp.safetensors', import.meta.url).pathname;
  const model = await rg.load(file);
  const ref = JSON.parse(readFileSync(new URL('./golden/retrograd-mlp.json', import.meta.url), 'utf8')) as { x: number[]; y: number[] };
  expect(relError(model.forward(rg.tensor(ref.x, [4, 6])).toArray(), ref.y)).toBeLessThan(1e-6);
});
