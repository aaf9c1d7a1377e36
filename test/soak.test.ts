// A short memory soak (bench/soak.mjs at a fifth of its length): RSS and native tensors stay flat over
// 2,000 training steps and 20,000 predict calls.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { requireBuiltDist, requireCpu } from './helpers.js';

const cpuAvailable = requireCpu();
beforeAll(requireBuiltDist); // bench/soak.mjs imports the package: dist/

it.skipIf(!cpuAvailable)('memory stays flat while training and serving', () => {
  const root = join(import.meta.dirname, '..');
  const out = execFileSync(process.execPath, ['--expose-gc', join(root, 'bench', 'soak.mjs'), '--steps', '2000', '--predicts', '20000', '--varying', '1000', '--graph', '4000'], { cwd: root, encoding: 'utf8' });
  expect(out).toMatch(/train: .* → flat/);
  expect(out).toMatch(/predict: .* → flat/);
  expect(out).toMatch(/varying: .* → flat/);
  expect(out).toMatch(/graph: .* → flat/);
  expect(out).toMatch(/verdict: memory stays flat/);
}, 120_000);
