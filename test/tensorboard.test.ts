// TensorBoard event files: read back here with a reader written from the format's description (TFRecord framing with
// masked CRC-32C, protobuf Event messages with TensorFlow's field numbers), independent of the writer's code: the
// CRCs must check, the first event must carry the file version, and the scalars must be those recorded.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { afterAll, describe, expect, it } from 'vitest';
import { crc32c, maskedCrc32c } from '../lib/train/tensorboard.js';
import { rg } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'retrograd-tb-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** CRC-32C bit by bit (no table): the reader's own. */
function slowCrc32c(bytes: Uint8Array): number {
  let c = ~0 >>> 0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0x82f63b78 & -(c & 1));
  }
  return ~c >>> 0;
}
const mask = (c: number) => ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;

const Event = protobuf.parse(`syntax = "proto3";
message Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
message Summary { message Value { string tag = 1; float simple_value = 2; } repeated Value value = 1; }`).root.lookupType('Event');

type Ev = { wallTime?: number; step?: number; fileVersion?: string; summary?: { value: { tag: string; simpleValue: number }[] } };

/** Every event of a file, each record's CRCs checked. */
function readEvents(file: string): Ev[] {
  const b = readFileSync(file);
  const out: Ev[] = [];
  for (let at = 0; at < b.length;) {
    const len = Number(b.readBigUInt64LE(at));
    expect(b.readUInt32LE(at + 8)).toBe(mask(slowCrc32c(b.subarray(at, at + 8))));
    const data = b.subarray(at + 12, at + 12 + len);
    expect(b.readUInt32LE(at + 12 + len)).toBe(mask(slowCrc32c(data)));
    out.push(Event.toObject(Event.decode(data), { longs: Number }) as Ev);
    at += 12 + len + 4;
  }
  return out;
}
const scalars = (events: Ev[]) => events.filter((e) => e.summary).map((e) => [e.summary!.value[0].tag, e.step ?? 0, e.summary!.value[0].simpleValue] as const);

describe('TensorBoard event files', () => {
  it('CRC-32C and its mask are the standard ones', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283); // the CRC-32C check value
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 37) & 255);
    expect(crc32c(bytes)).toBe(slowCrc32c(bytes));
    expect(maskedCrc32c(bytes)).toBe(mask(slowCrc32c(bytes)));
  });

  it('SummaryWriter writes the file version, then each scalar with its tag and step', async () => {
    const w = new rg.SummaryWriter(join(dir, 'hand'));
    for (let step = 0; step < 5; step++) w.addScalar('loss/train', 1 / (step + 1), step);
    w.addScalar('lr', 0.001, 4);
    await w.close();
    const events = readEvents(w.file);
    expect(events[0].fileVersion).toBe('brain.Event:2');
    expect(events[0].wallTime).toBeGreaterThan(1.7e9);
    expect(scalars(events).map(([t, s, v]) => [t, s, Number(v.toPrecision(6))])).toEqual([
      ['loss/train', 0, 1], ['loss/train', 1, 0.5], ['loss/train', 2, 0.333333], ['loss/train', 3, 0.25], ['loss/train', 4, 0.2], ['lr', 4, 0.001],
    ]);
    expect(w.file).toMatch(/events\.out\.tfevents\.\d+\./);
    expect(() => w.addScalar('x', 1, 0)).toThrow(/is closed/);
    const w2 = new rg.SummaryWriter(join(dir, 'bad'));
    expect(() => w2.addScalar('', 1, 0)).toThrow(/tag must be a non-empty string/);
    expect(() => w2.addScalar('a', 'x' as never, 0)).toThrow(/value must be a number, got the string 'x'/);
    expect(() => w2.addScalar('a', 1, -1)).toThrow(/step must be an integer ≥ 0, got number -1/);
    await w2.close();
  });

  it("the fit callback writes Keras' layout: epoch_ scalars for train and validation, batch_loss, throughput, gradient norms", async () => {
    rg.manualSeed(3);
    const x = rg.randn([64, 4]), y = rg.randint(0, 3, [64]);
    const model = new rg.Sequential([new rg.Linear(4, 8), new rg.ReLU(), new rg.Linear(8, 3)]);
    model.compile({ optimizer: new rg.Adam(model.parameters(), { lr: 0.01 }), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
    const logDir = join(dir, 'fit');
    const history = await model.fit(x, y, { epochs: 3, batchSize: 16, verbose: 0, validationData: [x, y], diagnostics: true, callbacks: [new rg.TensorBoard(logDir, { updateFreq: 2 })] });
    const file = (sub: string) => join(logDir, sub, readdirSync(join(logDir, sub)).find((f) => f.startsWith('events.out.tfevents.'))!);
    const train = scalars(readEvents(file('train'))), validation = scalars(readEvents(file('validation')));
    const series = (list: typeof train, tag: string) => list.filter(([t]) => t === tag).map(([, step, v]) => [step, v]);
    expect(series(train, 'epoch_loss').map(([s, v]) => [s, v.toPrecision(5)])).toEqual(history.history.loss.map((v, i) => [i, Math.fround(v).toPrecision(5)]));
    expect(series(validation, 'epoch_accuracy').map(([s, v]) => [s, v.toPrecision(5)])).toEqual(history.history.val_accuracy.map((v, i) => [i, Math.fround(v).toPrecision(5)]));
    expect(series(train, 'batch_loss').map(([s]) => s)).toEqual([2, 4, 6, 8, 10, 12]); // 4 batches per epoch, every 2nd
    expect(series(train, 'epoch_samples_per_second').length).toBe(3);
    expect(series(train, 'epoch_samples_per_second').every(([, v]) => v > 0)).toBe(true);
    expect(series(train, 'epoch_grad_norm/0.weight').length).toBe(3);
    expect(() => new rg.TensorBoard(logDir, { updateFreq: 0 })).toThrow(/updateFreq must be 'epoch', 'batch' or a whole number of batches ≥ 1, got number 0/);
    expect(() => new rg.TensorBoard(logDir, { every: 1 } as never)).toThrow(/unknown option 'every'/);
  });
});
