// model.summary(): layers, output shapes and parameter counts, as Keras prints them.
import { describe, expect, it } from 'vitest';
import * as rg from '../lib/index.js';

describe('Module.summary', () => {
  it('lists a Sequential\'s layers with their output shapes and parameter counts, frozen ones apart', () => {
    const m = new rg.Sequential([new rg.Conv2d(1, 8, 3, { padding: 1 }), new rg.BatchNorm2d(8), new rg.ReLU(), new rg.MaxPool2d(2), new rg.Flatten(), new rg.Linear(8 * 14 * 14, 10)]);
    (m.layers[0] as rg.Conv2d).weight.requiresGrad = false;
    const printed: string[] = [];
    const text = m.summary({ inputShape: [1, 28, 28], print: (l) => printed.push(l) });
    expect(printed.join('\n')).toBe(text);
    const lines = text.split('\n');
    expect(lines[0]).toBe('Sequential');
    expect(lines[2]).toMatch(/^Layer \(type\) +Output shape +Param #$/);
    const body = lines.slice(4, 10).map((l) => l.trim().split(/\s{2,}/));
    expect(body).toEqual([
      ['0 (Conv2d)', '[N, 8, 28, 28]', '80'],
      ['1 (BatchNorm2d)', '[N, 8, 28, 28]', '16'],
      ['2 (ReLU)', '[N, 8, 28, 28]', '0'],
      ['3 (MaxPool2d)', '[N, 8, 14, 14]', '0'],
      ['4 (Flatten)', '[N, 1568]', '0'],
      ['5 (Linear)', '[N, 10]', '15,690'],
    ]);
    expect(lines.at(-1)).toBe('Total params: 15,786 (trainable 15,714, non-trainable 72)');
    // without an input: no shape column, nothing run
    expect(m.summary({ print: null }).split('\n')[2]).toMatch(/^Layer \(type\) +Param #$/);
  });

  it('a module written with tensor operations: its own parameters on its row, shared layers counted once; the model left as it was', () => {
    class Tied extends rg.Module {
      a = new rg.Linear(4, 4);
      again = this.a;
      scale = new rg.Parameter(rg.ones([1]));
      norm = new rg.BatchNorm1d(4);
      forward(x: rg.Tensor) {
        return this.norm.forward(this.again.forward(this.a.forward(x).relu()).add(x).mul(this.scale.value));
      }
    }
    const m = new Tied();
    const before = m.norm.forward;
    const text = m.summary({ inputShape: [4], print: null });
    expect(text).toMatch(/^\(model\) \(Tied\) +\[N, 4\] +1$/m);
    expect(text).toMatch(/^a \(Linear\) +\[N, 4\] +20$/m);
    expect(text).toMatch(/^norm \(BatchNorm1d\) +\[N, 4\] +8$/m);
    expect(text).toMatch(/Total params: 29 \(trainable 29, non-trainable 0\)$/);
    // training mode, the forward functions and the running statistics as they were (eval mode ran)
    expect(m.training && m.norm.training).toBe(true);
    expect(m.norm.forward).toBe(before);
    expect([...m.norm.stateDict().running_mean.toArray()]).toEqual([0, 0, 0, 0]);
  });

  it('an int32 input for an Embedding model; bad options are errors naming the model', () => {
    const m = new rg.Sequential([new rg.Embedding(10, 3), new rg.Flatten(), new rg.Linear(15, 2)]);
    const text = m.summary({ input: rg.tensor(new Int32Array(10), [2, 5]), print: null });
    expect(text).toMatch(/^0 \(Embedding\) +\[N, 5, 3\] +30$/m);
    expect(() => m.summary({ inputShape: [0] })).toThrow(/Sequential\.summary: inputShape must be an array of positive integers/);
    expect(() => m.summary({ inputShape: [5], input: rg.zeros([1, 5]) })).toThrow(/give inputShape or input, not both/);
    expect(() => m.summary({ input: [1, 2] as never })).toThrow(/input must be a Tensor, got/);
  });
});
