// Writes retrograd-mlp.safetensors: a small retrograd model saved by rg.save, with its outputs for fixed
// inputs in a JSON beside it. make_interop.py loads the file into the equivalent PyTorch model and checks
// PyTorch computes the same outputs (run by `npm run golden`, after `npm run build`).
import { writeFileSync } from 'node:fs';
import * as rg from 'retrograd';

rg.setBackend('reference');
rg.manualSeed(5);
const model = new rg.Sequential([new rg.Linear(6, 5), new rg.Tanh(), new rg.Linear(5, 3)]);
const x = rg.tensor(Float32Array.from({ length: 4 * 6 }, (_, i) => Math.cos(i * 0.9)), [4, 6]);
await rg.save(model, new URL('./retrograd-mlp.safetensors', import.meta.url).pathname);
writeFileSync(new URL('./retrograd-mlp.json', import.meta.url), JSON.stringify({ x: [...x.toArray()], y: [...model.forward(x).toArray()] }));
console.log('wrote retrograd-mlp.safetensors');
