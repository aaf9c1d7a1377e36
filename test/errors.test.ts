// Bad input (API.md, "Errors"): a clear error naming the layer or parameter, the expected and the actual
// value; nothing changed by a failed call; the next valid call works.
import { describe, expect, it } from 'vitest';
import { probeCuda } from '../lib/backends/cuda.js';
import { requireCpu, rg } from './helpers.js';

const cpuAvailable = requireCpu();

const backendNames = cpuAvailable ? (['cpu', 'reference'] as const) : (['reference'] as const);

for (const backend of backendNames) {
  describe(`errors on ${backend}`, () => {
    it('rg.tensor checks data, shape and length', () => {
      rg.setBackend(backend);
      expect(() => rg.tensor([1, 2, 3], [2, 2])).toThrow(RangeError);
      expect(() => rg.tensor([1, 2, 3], [2, 2])).toThrow('rg.tensor: data has 3 elements but shape [2, 2] needs 4');
      expect(() => rg.tensor([1, 2], [-1, -2])).toThrow(/non-negative integer, got -1/);
      expect(() => rg.tensor([1, 2], [1.5, 2])).toThrow(/non-negative integer, got 1.5/);
      expect(() => rg.tensor('abc' as never, [3])).toThrow(TypeError);
      expect(() => rg.tensor([1, 'x'] as never, [2])).toThrow(/data\[1\] is the string 'x', expected a number/);
      expect(() => rg.tensor([1], 3 as never)).toThrow(/shape must be an array/);
      const t = rg.tensor([NaN, Infinity], [2]);
      expect([...t.toArray()]).toEqual([NaN, Infinity]);
      expect(() => t.item()).toThrow(/only one-element tensors/);
      expect(() => t.reshape([3])).toThrow(/cannot reshape 2 elements into \[3\]/);
    });

    it('Linear names itself, the expected and the actual shape; then works', () => {
      rg.setBackend(backend);
      const lin = new rg.Linear(784, 256);
      expect(() => lin.forward(rg.zeros([2, 783]))).toThrow('Linear(784→256): input has 783 features, expected 784');
      expect(() => lin.forward([1, 2, 3] as never)).toThrow(TypeError);
      expect(() => lin.forward([1, 2, 3] as never)).toThrow(/Linear\(784→256\): input must be a Tensor, got an array/);
      expect(() => lin.forward(rg.tensor(new Int32Array(784), [1, 784]))).toThrow(/must be a float32 tensor, got int32/);
      expect(() => new rg.Linear(4, 3).backward(rg.zeros([1, 3]))).toThrow(/backward called before forward/);
      const y = lin.forward(rg.zeros([2, 784]));
      expect(() => lin.backward(rg.zeros([2, 255]))).toThrow('Linear(784→256): gradient has shape [2, 255], expected the output shape [2, 256]');
      expect(y.shape).toEqual([2, 256]);
      expect(lin.backward(rg.zeros([2, 256])).shape).toEqual([2, 784]);
      expect(() => new rg.Linear(0, 3)).toThrow(RangeError);
      expect(() => new rg.Linear(3, 2, { bais: false } as never)).toThrow("Linear: unknown option 'bais' (did you mean 'bias'?)");
    });

    it('losses check shapes, dtypes and class indices', () => {
      rg.setBackend(backend);
      const ce = new rg.CrossEntropyLoss();
      const logits = rg.zeros([3, 10]);
      expect(() => ce.forward(logits, rg.tensor(Int32Array.of(1, 12, 3), [3]))).toThrow(/CrossEntropyLoss: target 12 is out of range: class indices must be in \[0, 10\)/);
      expect(() => ce.forward(logits, rg.tensor(Int32Array.of(1, -3, 3), [3]))).toThrow(/target -3 is out of range/);
      expect(() => ce.forward(logits, rg.tensor([1, 2, 3], [3]))).toThrow(/target must be int32 class indices/);
      expect(() => ce.forward(logits, rg.tensor(Int32Array.of(1, 2), [2]))).toThrow('CrossEntropyLoss: target has shape [2], expected [3] for logits [3, 10]');
      expect(ce.forward(logits, rg.tensor(Int32Array.of(1, 2, 3), [3])).item()).toBeCloseTo(Math.log(10), 5);
      expect(() => new rg.MSELoss().forward(rg.zeros([2, 3]), rg.zeros([3, 2]))).toThrow('MSELoss: target has shape [3, 2], expected the prediction\'s shape [2, 3]');
      expect(() => new rg.CrossEntropyLoss({ ignoreIdx: 1 } as never)).toThrow(/did you mean 'ignoreIndex'/);
      expect(() => new rg.MSELoss().backward()).toThrow(/backward called before forward/);
    });

    it('a bad class index the host could not see is reported at the next read, and skips the queued work', () => {
      rg.setBackend(backend);
      const b = rg.zeros([1]).backend;
      const target = rg.tensor(Int32Array.of(0, 1), [2]);
      const loss = rg.zeros([1]), dlogits = rg.zeros([2, 3]), logits = rg.zeros([2, 3]);
      b.k.copy(target.buf, rg.tensor(Int32Array.of(0, 7), [2]).buf, 2); // the host range is now stale
      const run = () => {
        b.k.cross_entropy_loss(loss.buf, dlogits.buf, logits.buf, target.buf, 2, 3, 1, -100);
        return loss.item();
      };
      expect(run).toThrow(/target 7 at position 1 is outside \[0, 3\)/);
      b.k.copy(target.buf, rg.tensor(Int32Array.of(0, 2), [2]).buf, 2);
      expect(run()).toBeCloseTo(Math.log(3), 5);
    });

    it('optimizers reject invalid and misspelled hyperparameters, naming them', () => {
      rg.setBackend(backend);
      const params = new rg.Linear(2, 2).parameters();
      expect(() => new rg.SGD(params, { lr: -1 })).toThrow('SGD: invalid learning rate (lr) -1; expected >= 0');
      expect(() => new rg.SGD(params, {} as never)).toThrow(/lr is required/);
      expect(() => new rg.SGD(params, { lr: 0.1, momemtum: 0.9 } as never)).toThrow("SGD: unknown option 'momemtum' (did you mean 'momentum'?)");
      expect(() => new rg.SGD(params, { lr: 0.1, nesterov: true })).toThrow(RangeError);
      expect(() => new rg.SGD(params, { lr: 0.1, nesterov: true })).toThrow(/nesterov requires a momentum > 0 and zero dampening/);
      expect(() => new rg.Adam(params, { betas: [0.9, 1] })).toThrow('Adam: invalid beta parameter at index 1 1; expected >= 0 < 1');
      expect(() => new rg.Adam(params, { eps: -1 })).toThrow(/invalid epsilon value \(eps\) -1/);
      expect(() => new rg.AdamW(params, { weightDecay: -0.1 })).toThrow(/AdamW: invalid weightDecay -0.1/);
      expect(() => new rg.Adam(params, { lr: 'fast' } as never)).toThrow(TypeError);
      expect(() => new rg.Adam([1, 2] as never)).toThrow(/params\[0\] is number 1, expected a Parameter/);
      expect(() => new rg.RMSprop(params, { alpha: -0.1 })).toThrow('RMSprop: invalid alpha -0.1; expected >= 0');
      expect(() => new rg.RMSprop(params, { centred: true } as never)).toThrow("RMSprop: unknown option 'centred' (did you mean 'centered'?)");
      expect(() => new rg.Adagrad(params, { lrDecay: -1 })).toThrow('Adagrad: invalid lrDecay -1; expected >= 0');
      expect(() => new rg.Adagrad(params, { initialAccumulatorValue: -1 })).toThrow(/invalid initialAccumulatorValue -1/);
    });

    it('loadStateDict is all or nothing and names the key', () => {
      rg.setBackend(backend);
      const m = new rg.Sequential([new rg.Linear(3, 2), new rg.ReLU(), new rg.Linear(2, 1)]);
      const before = m.parameters().map((p) => [...p.value.toArray()]);
      const good = () => ({
        '0.weight': new Float32Array(6).fill(1), '0.bias': new Float32Array(2), '2.weight': new Float32Array(2).fill(3), '2.bias': new Float32Array(1),
      });
      const { '2.bias': _drop, ...missing } = good();
      expect(() => m.loadStateDict(missing)).toThrow("missing key '2.bias'");
      expect(() => m.loadStateDict({ ...good(), '3.weight': new Float32Array(1) })).toThrow(/unknown key '3.weight'/);
      expect(() => m.loadStateDict({ ...good(), '2.weight': rg.zeros([2, 1]) })).toThrow("Sequential.loadStateDict: '2.weight' has shape [2, 1], expected [1, 2]");
      expect(() => m.loadStateDict({ ...good(), '0.bias': new Float32Array(3) })).toThrow(/'0.bias' has 3 values, expected 2/);
      expect(m.parameters().map((p) => [...p.value.toArray()])).toEqual(before);
      m.loadStateDict(good());
      expect([...m.parameters()[2].value.toArray()]).toEqual([3, 3]);
    });

    it('backend choice: unknown names and an unavailable CUDA fail clearly', () => {
      expect(() => rg.setBackend('tpu' as never)).toThrow("setBackend: unknown backend 'tpu'");
      if (probeCuda().available) {
        // a GPU machine: choosing cuda works, and choosing back restores this backend
        rg.setBackend('cuda');
        expect(rg.getBackend()).toBe('cuda');
      } else {
        try {
          rg.setBackend('cuda');
          expect.unreachable();
        } catch (e) {
          expect(e).toBeInstanceOf(rg.RetrogradError);
          expect((e as rg.RetrogradError).code).toBe('CUDA_UNAVAILABLE');
        }
      }
      rg.setBackend(backend);
      expect(rg.getBackend()).toBe(backend);
    });

    it('fit stops on a NaN loss naming the epoch and step, and refuses overlapping calls', async () => {
      rg.setBackend(backend);
      let m = new rg.Sequential([new rg.Linear(2, 3)]);
      m.compile({ optimizer: new rg.SGD(m.parameters(), { lr: 0.1 }), loss: new rg.CrossEntropyLoss() });
      const x = rg.tensor([1, 2, 3, 4, NaN, 6, 7, 8], [4, 2]);
      const y = rg.tensor(Int32Array.of(0, 1, 2, 0), [4]);
      await expect(m.fit(x, y, { batchSize: 2, verbose: 0, shuffle: false })).rejects.toThrow('fit: the loss became NaN at epoch 1, step 2');
      // A fresh model: the failed fit has stepped with a NaN gradient, as PyTorch would have.
      m = new rg.Sequential([new rg.Linear(2, 3)]);
      m.compile({ optimizer: new rg.SGD(m.parameters(), { lr: 0.1 }), loss: new rg.CrossEntropyLoss() });
      const good = rg.tensor([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]);
      const running = m.fit(good, y, { epochs: 2, verbose: 0 });
      await expect(m.fit(good, y, { verbose: 0 })).rejects.toThrow(/busy/);
      expect(() => m.predict(good)).toThrow(/busy/);
      await running;
      await expect(m.fit(good, y, { epoch: 3 } as never)).rejects.toThrow("fit: unknown option 'epoch' (did you mean 'epochs'?)");
      await expect(m.fit(good, rg.tensor(Int32Array.of(0, 1), [2]), { verbose: 0 })).rejects.toThrow('fit: x has 4 samples but y has 2');
      await expect(new rg.Linear(2, 2).fit(good, y)).rejects.toThrow(/not compiled/);
      expect(m.predict(good).shape).toEqual([4, 3]);
    });
  });
}
