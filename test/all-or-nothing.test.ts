// A checkpoint loads whole or not at all: a part that fails (here the scheduler's state) leaves the model's weights,
// the optimizer's state and the scheduler exactly as they were.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rg } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'retrograd-all-or-nothing-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function setup(seed: number) {
  rg.manualSeed(seed);
  const model = new rg.Sequential([new rg.Linear(3, 4), new rg.ReLU(), new rg.Linear(4, 2)]);
  const optimizer = new rg.Adam(model.parameters(), { lr: 0.01 });
  const scheduler = new rg.StepLR(optimizer, 2);
  return { model, optimizer, scheduler };
}
async function train(s: ReturnType<typeof setup>) {
  s.model.compile({ optimizer: s.optimizer, loss: new rg.MSELoss() });
  await s.model.fit(rg.randn([8, 3]), rg.randn([8, 2]), { epochs: 2, batchSize: 4, verbose: 0 });
  s.scheduler.step();
}

describe('loadCheckpoint is all or nothing', () => {
  it('a bad scheduler state loads neither the weights nor the optimizer state', async () => {
    const first = setup(1);
    await train(first);
    const path = join(dir, 'bad-scheduler.safetensors');
    const broken = { stateDict: () => ({ ...first.scheduler.stateDict(), lastEpoch: -5 }), loadStateDict: () => {} };
    await rg.saveCheckpoint(path, { model: first.model, optimizer: first.optimizer, scheduler: broken, epoch: 2 });

    const second = setup(2);
    await train(second);
    const weights = second.model.parameters().map((p) => Array.from(p.value.toArray()));
    const optimizerState = second.optimizer.stateDict();
    const schedulerState = second.scheduler.stateDict();
    await expect(rg.loadCheckpoint(path, { model: second.model, optimizer: second.optimizer, scheduler: second.scheduler }))
      .rejects.toThrow(/StepLR\.loadStateDict/);
    expect(second.model.parameters().map((p) => Array.from(p.value.toArray()))).toEqual(weights);
    expect(second.optimizer.stateDict()).toEqual(optimizerState);
    expect(second.scheduler.stateDict()).toEqual(schedulerState);
  });
});
