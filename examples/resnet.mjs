// A small ResNet on the MNIST digits: residual blocks with BatchNorm and a strided 1×1 shortcut, written as a user
// writes a model — modules whose forward adds the shortcut back — and trained with loss.backward(). Its PyTorch twin
// (examples/twins/train.py resnet) starts from the same weights and sees the same batches.
//   npm run example:resnet -- [--epochs 4] [--quick] [--compare]
// --quick trains on 1,024 digits for one epoch (the test suite runs it); --compare runs the twin after this one.
import { parseArgs } from 'node:util';
import * as rg from 'retrograd';
import { digits, initDeterministic, seconds, takeRows, trainEpochs } from './apps/common.mjs';
import { appModels } from './apps/models.mjs';
import { appSteps } from './apps/steps.mjs';
import { compareWithTwin } from './apps/twin.mjs';

const { values: opts } = parseArgs({ options: { epochs: { type: 'string' }, quick: { type: 'boolean', default: false }, compare: { type: 'boolean', default: false } } });
const quick = opts.quick;
const epochs = Number(opts.epochs ?? (quick ? 1 : 4));
const batchSize = 64, maxLr = 0.1;

const data = digits(rg);
const nTrain = quick ? 1024 : data.nTrain;
const { ResNet } = appModels(rg);
const { classifierStep } = appSteps(rg);
const model = initDeterministic(rg, new ResNet({ width: 16 }), 1);
const count = model.parameters().reduce((a, p) => a + p.value.size, 0);
const steps = Math.floor(nTrain / batchSize);
console.log(`ResNet (3 basic blocks, widths 16/32/64, ${count} parameters) on ${nTrain} MNIST digits; backend ${rg.getBackend()}`);
console.log(`SGD momentum 0.9, weight decay 5e-4, one-cycle learning rate to ${maxLr}; batch ${batchSize}, ${epochs} epoch${epochs > 1 ? 's' : ''}`);

const opt = new rg.SGD(model.parameters(), { lr: maxLr, momentum: 0.9, weightDecay: 5e-4 });
const sched = new rg.OneCycleLR(opt, maxLr, { totalSteps: epochs * steps });

/** Accuracy on the 2,000 test digits, in eval mode (BatchNorm's running statistics), 500 at a time. */
function testAccuracy() {
  model.eval();
  let correct = 0;
  rg.noGrad(() => {
    for (let i = 0; i < data.nTest; i += 500) {
      const n = Math.min(500, data.nTest - i);
      const logits = model.forward(rg.tensor(data.xTest.subarray(i * 784, (i + n) * 784), [n, 1, 28, 28]));
      const pred = logits.argmax(1).toArray();
      for (let j = 0; j < n; j++) if (pred[j] === data.yTest[i + j]) correct++;
      logits.dispose();
    }
  });
  model.train();
  return correct / data.nTest;
}

const t0 = performance.now();
trainEpochs({
  epochs, steps, n: nTrain,
  step(s, order) {
    const x = rg.tensor(takeRows(data.xTrain, 784, order, s * batchSize, batchSize), [batchSize, 1, 28, 28]);
    const y = rg.tensor(takeRows(data.yTrain, 1, order, s * batchSize, batchSize), [batchSize]);
    const loss = classifierStep(model, opt, x, y).item();
    sched.step();
    return loss;
  },
  after: (epoch, loss) => console.log(`epoch ${epoch + 1}: training loss ${loss.toFixed(4)}, test accuracy ${(100 * testAccuracy()).toFixed(2)}% (${seconds(t0)} s)`),
});
const accuracy = 100 * testAccuracy();
console.log(`test accuracy: ${accuracy.toFixed(2)}% on ${data.nTest} digits after ${epochs} epoch${epochs > 1 ? 's' : ''}, ${seconds(t0)} s`);

if (opts.compare) {
  compareWithTwin('resnet.py', [...(opts.epochs ? ['--epochs', String(epochs)] : []), ...(quick ? ['--quick'] : [])], {
    pattern: /test accuracy: ([\d.]+)% on/, ours: accuracy, what: 'test accuracy (%)', goal: (o, t) => o >= t - 0.2, goalText: "at least PyTorch's minus 0.2 points",
  });
}
