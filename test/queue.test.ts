// The command queue's failure semantics on the native backend: a kernel that fails makes the kernels after it
// skip until a read reports the error; data movement (writes) still runs; a read reports only an error of work
// queued before it, so an earlier read in flight still resolves with its data.
import { describe, expect, it } from 'vitest';
import { cpu, requireCpu } from './helpers.js';

describe.skipIf(!requireCpu())('the native command queue after a failed kernel', () => {
  it('reports the error at the first read after it, skips the kernels after it, keeps writes, and recovers', async () => {
    const b = cpu();
    const logits = b.fromHost(Float32Array.of(1, 2, 3, 4, 5, 6));
    const loss = b.fromHost(new Float32Array(1)), d = b.fromHost(new Float32Array(6));
    const before = b.fromHost(Float32Array.of(7, 8));
    const early = b.readAsync(before); // queued before the failure: resolves
    b.k.cross_entropy_loss(loss, d, logits, b.fromHost(Int32Array.of(0, 9)), 2, 3, 1, -100);
    const x = b.fromHost(new Float32Array(3));
    b.k.fill(x, 3, 5); // after the failure: skipped
    b.write(before, Float32Array.of(1, 2)); // data movement: runs
    const late = b.readAsync(loss);
    // the rejection's handler is attached at once: `late` may fail while `early` is awaited, and a rejection without a
    // handler at that moment is reported as unhandled
    const lateFails = expect(late).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/target 9 at position 1 is outside \[0, 3\)/) });
    expect([...(await early)]).toEqual([7, 8]);
    await lateFails;
    expect([...b.read(x)]).toEqual([0, 0, 0]);
    expect([...b.read(before)]).toEqual([1, 2]);
    b.k.fill(x, 3, 5); // the error was taken: kernels run again
    expect([...b.read(x)]).toEqual([5, 5, 5]);
  });
});

describe.skipIf(!requireCpu())('the native command queue ahead of its kernels', () => {
  it('keeps what JavaScript has let go of, but queued kernels still use, under its budget', () => {
    const b = cpu();
    const raw = (b as unknown as { a: { release(buf: unknown): void } }).a;
    const n = 16 << 20; // 64 MB per storage: a ReLU over it takes milliseconds, its queuing microseconds
    const x = b.alloc('float32', n);
    let peak = 0;
    for (let i = 0; i < 24; i++) {
      const y = b.alloc('float32', n, false);
      b.k.relu_forward(y, x, n);
      raw.release(y); // let go at once, as a loop whose outputs the garbage collector takes; the ReLU is still queued
      peak = Math.max(peak, b.memory().bytes);
    }
    b.sync();
    // without the budget (CommandQueue::kRetiredBudget, 256 MB) all 24 outputs were alive at once: 1.6 GB
    expect(peak).toBeLessThan(700 << 20);
    expect(peak).toBeGreaterThan(2 * 64 << 20); // the loop did run ahead of the kernels
    raw.release(x);
  });
});
