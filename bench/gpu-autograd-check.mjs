// Tensor operations and autograd on a backend (default 'cuda') against PyTorch's golden values
// (test/golden/autograd.json, lib/check/autograd.ts): every operation's output and gradients, four models trained 20
// steps, the gradient with respect to the input. Needs only Node.js and the built files (dist/, the addons); one line
// per failure, a summary last, exit code 1 on any failure.
//   node bench/gpu-autograd-check.mjs [--backend cuda]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as rg from '../dist/index.js';
import { checkInputGradient, checkModel, checkOp } from '../dist/check/autograd.js';

const { values } = parseArgs({ options: { backend: { type: 'string', default: 'cuda' } } });
rg.setBackend(values.backend);
const golden = JSON.parse(readFileSync(new URL('../test/golden/autograd.json', import.meta.url), 'utf8'));
const runs = [
  ...golden.ops.map((c) => [`op ${c.name}`, () => checkOp(c)]),
  ...golden.models.map((c) => [`model ${c.name}`, () => checkModel(c)]),
  ['the gradient with respect to the input', () => checkInputGradient(golden.inputGradient)],
];
let failed = 0;
for (const [name, run] of runs) {
  let why;
  try {
    why = run();
  } catch (e) {
    why = `threw: ${e.message}`;
  }
  if (why) {
    failed++;
    console.log(`FAIL ${name}: ${why}`);
  }
}
console.log(`autograd on '${values.backend}': ${runs.length - failed} of ${runs.length} checks pass against PyTorch ${golden.torch}`);
process.exitCode = failed ? 1 : 0;
