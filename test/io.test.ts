// Persistence: safetensors written and read strictly, models saved and loaded, checkpoints that resume
// training exactly, and hostile files that fail cleanly.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { relError, requireCpu, rg, rng, safetensorsBytes } from './helpers.js';

const cpuAvailable = requireCpu();

const dir = mkdtempSync(join(tmpdir(), 'retrograd-io-'));
const backendNames = cpuAvailable ? (['cpu', 'reference'] as const) : (['reference'] as const);

function mlp(): rg.Sequential {
  return new rg.Sequential([new rg.Flatten(), new rg.Linear(12, 16), new rg.ReLU(), new rg.Dropout(0.25), new rg.Linear(16, 8), new rg.LeakyReLU(0.1), new rg.Linear(8, 3, { bias: false })]);
}

describe('safetensors', () => {
  it('round-trips tensors and metadata and follows the format byte for byte', () => {
    const buf = rg.encodeSafetensors(
      { a: { dtype: 'F32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) }, b: { dtype: 'I32', shape: [3], data: Int32Array.of(-1, 0, 7) } },
      { note: 'hi' },
    );
    const n = Number(buf.readBigUInt64LE(0));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(buf.subarray(8, 8 + n).toString());
    expect(header).toEqual({ __metadata__: { note: 'hi' }, a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] }, b: { dtype: 'I32', shape: [3], data_offsets: [16, 28] } });
    const { tensors, metadata } = rg.decodeSafetensors(buf);
    expect(metadata).toEqual({ note: 'hi' });
    expect([...tensors.a.data]).toEqual([1, 2, 3, 4]);
    expect([...tensors.b.data]).toEqual([-1, 0, 7]);
  });

  it('rejects truncated, oversized, overlapping, holed and mistyped files without reading out of bounds', () => {
    const good = rg.encodeSafetensors({ w: { dtype: 'F32', shape: [4], data: Float32Array.of(1, 2, 3, 4) }, v: { dtype: 'F32', shape: [2], data: Float32Array.of(5, 6) } });
    const n = Number(good.readBigUInt64LE(0));
    const withHeader = (h: object, data = Buffer.alloc(24)) => safetensorsBytes(JSON.stringify(h), data);
    const cases: [string, Buffer, RegExp][] = [
      ['empty', Buffer.alloc(0), /shorter than the 8-byte header length/],
      ['truncated data', good.subarray(0, good.length - 3), /truncated|not indexed|ends at byte/],
      ['huge header length', (() => { const b = Buffer.from(good); b.writeBigUInt64LE(2n ** 60n, 0); return b; })(), /header length/],
      ['header not JSON', (() => { const b = Buffer.from(good); b[8] = 0x7b; b[9] = 0x7b; return b; })(), /not JSON/],
      ['overlap', withHeader({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }), /overlaps/],
      ['hole', withHeader({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [16, 24] } }), /hole/],
      ['size mismatch', withHeader({ a: { dtype: 'F32', shape: [5], data_offsets: [0, 24] } }), /need 20/],
      ['bad dtype', withHeader({ a: { dtype: 'Q8', shape: [6], data_offsets: [0, 24] } }), /unknown dtype/],
      ['negative shape', withHeader({ a: { dtype: 'F32', shape: [-6], data_offsets: [0, 24] } }), /invalid shape/],
      ['offsets past the end', withHeader({ a: { dtype: 'F32', shape: [100], data_offsets: [0, 400] } }), /ends at byte 400/],
      ['trailing bytes', withHeader({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }), /not indexed/],
      ['array header', withHeader([1, 2] as never), /not a JSON object/],
    ];
    for (const [name, buf, message] of cases) {
      expect(() => rg.decodeSafetensors(buf), name).toThrow(message);
      try {
        rg.decodeSafetensors(buf);
      } catch (e) {
        expect((e as rg.RetrogradError).code, name).toBe('INVALID_ARGUMENT');
      }
    }
    // random corruption: every outcome is a clean error or a valid decode
    const r = rng(7);
    for (let i = 0; i < 500; i++) {
      const b = Buffer.from(good);
      const flips = 1 + Math.floor(r() * 4);
      for (let f = 0; f < flips; f++) b[Math.floor(r() * Math.min(b.length, 8 + n))] = Math.floor(r() * 256);
      const cut = r() < 0.3 ? b.subarray(0, Math.floor(r() * b.length)) : b;
      try {
        rg.decodeSafetensors(cut);
      } catch (e) {
        expect(e).toBeInstanceOf(rg.RetrogradError);
      }
    }
  });
});

for (const backend of backendNames) {
  describe(`save and load on ${backend}`, () => {
    it('a saved model loads back with the same outputs and PyTorch state-dict names; writes are atomic', async () => {
      rg.setBackend(backend);
      rg.manualSeed(3);
      const m = mlp().eval();
      const x = rg.randn([5, 3, 4]);
      const path = join(dir, `model-${backend}.safetensors`);
      await rg.save(m, path);
      expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
      const { tensors, metadata } = rg.decodeSafetensors(readFileSync(path));
      expect(Object.keys(tensors)).toEqual(['1.weight', '1.bias', '4.weight', '4.bias', '6.weight']);
      expect(metadata.format).toBe('retrograd');
      const back = (await rg.load(path)).eval();
      expect(relError(back.forward(x).toArray(), m.forward(x).toArray())).toBe(0);
      // typed and checked by the class asked for
      const seq: rg.Sequential = await rg.load(path, rg.Sequential);
      expect(seq.layers.length).toBe(m.layers.length);
      await expect(rg.load(path, rg.Linear)).rejects.toThrow(`load: ${path} holds a Sequential, not a Linear`);
      await expect(rg.load(path, Object as never)).rejects.toThrow(/load: type must be a Module class \(e\.g\. rg\.Sequential\), got/);
      await expect(rg.save(m, join(dir, 'missing', 'x.safetensors'))).rejects.toThrow(/ENOENT/);
      class Custom extends rg.ReLU {}
      await expect(rg.save(new rg.Sequential([new Custom()]), join(dir, 'c.safetensors'))).rejects.toThrow(/cannot describe a Custom/);
      writeFileSync(join(dir, 'junk.safetensors'), 'not a model');
      await expect(rg.load(join(dir, 'junk.safetensors'))).rejects.toThrow(/not a valid safetensors file/);
    });

    it('resuming from a checkpoint continues exactly as if uninterrupted', async () => {
      rg.setBackend(backend);
      const x = rg.tensor(Float32Array.from({ length: 60 * 12 }, (_, i) => Math.sin(i * 0.37)), [60, 3, 4]);
      const y = rg.tensor(Int32Array.from({ length: 60 }, (_, i) => (i * 7) % 3), [60]);
      const setup = () => {
        const model = mlp();
        const optimizer = new rg.Adam(model.parameters(), { lr: 0.01, amsgrad: true });
        const scheduler = new rg.SequentialLR(optimizer, [new rg.LinearLR(optimizer, { totalIters: 2 }), new rg.ExponentialLR(optimizer, 0.9)], [2]);
        model.compile({ optimizer, loss: new rg.CrossEntropyLoss() });
        const losses: number[] = [];
        const callbacks = [{ onEpochEnd: (_e: number, logs: rg.Logs) => { losses.push(logs.loss); scheduler.step(); } }];
        return { model, optimizer, scheduler, losses, callbacks };
      };
      rg.manualSeed(11);
      const straight = setup();
      await straight.model.fit(x, y, { epochs: 4, batchSize: 16, verbose: 0, callbacks: straight.callbacks });

      rg.manualSeed(11);
      const first = setup();
      await first.model.fit(x, y, { epochs: 2, batchSize: 16, verbose: 0, callbacks: first.callbacks });
      const path = join(dir, `ckpt-${backend}.safetensors`);
      await rg.saveCheckpoint(path, { model: first.model, optimizer: first.optimizer, scheduler: first.scheduler, epoch: 2 });
      rg.manualSeed(999); // anything: the checkpoint restores the generator
      const second = setup();
      const loaded = await rg.loadCheckpoint(path, { model: second.model, optimizer: second.optimizer, scheduler: second.scheduler });
      expect(loaded.epoch).toBe(2);
      await second.model.fit(x, y, { epochs: 2, batchSize: 16, verbose: 0, callbacks: second.callbacks });

      expect([...first.losses, ...second.losses]).toEqual(straight.losses);
      second.model.parameters().forEach((p, i) => expect([...p.value.toArray()]).toEqual([...straight.model.parameters()[i].value.toArray()]));
      expect(second.optimizer.lr).toBe(straight.optimizer.lr);
      const rebuilt = await rg.loadCheckpoint(path, { restoreRng: false });
      expect(Object.keys(rebuilt.model.stateDict())).toEqual(Object.keys(first.model.stateDict()));
    });
  });
}
