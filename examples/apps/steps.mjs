// One training step of each application, shared by the examples, the golden tests and the benchmark (their PyTorch
// twins are in examples/twins/steps.py, line for line).
import { normals } from './common.mjs';

export function appSteps(rg) {
  function classifierStep(model, opt, x, y) {
    const loss = rg.F.crossEntropy(model.forward(x), y);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    return loss;
  }

  /** real: images in [−1, 1]; z: the noise; for a conditional pair, labels { real, fake }: the real images' classes and
   * those asked of the generator. The discriminator learns real from fake, then the generator learns to make the
   * (updated) discriminator call its images real. */
  function ganStep(G, D, optG, optD, real, z, labels) {
    const B = real.shape[0];
    const ones = rg.ones([B]), zeros = rg.zeros([B]);
    const fake = G.forward(z, labels?.fake);
    const lossD = rg.F.binaryCrossEntropyWithLogits(D.forward(real, labels?.real), ones)
      .add(rg.F.binaryCrossEntropyWithLogits(D.forward(fake.detach(), labels?.fake), zeros));
    optD.zeroGrad();
    lossD.backward();
    optD.step();
    const lossG = rg.F.binaryCrossEntropyWithLogits(D.forward(fake, labels?.fake), ones);
    optG.zeroGrad();
    lossG.backward();
    optG.step();
    return { lossD, lossG };
  }

  function vaeStep(model, opt, negativeElbo, x, eps) {
    const loss = negativeElbo(model.forward(x, eps), x);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    return loss;
  }

  function translateStep(model, opt, translationLoss, src, tgt) {
    const loss = translationLoss(model, src, tgt);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    return loss;
  }

  /** A tensor of standard normal numbers, normals(n, seed) in row-major order. */
  const noise = (shape, seed) => rg.tensor(normals(shape.reduce((a, d) => a * d, 1), seed), shape);

  return { classifierStep, ganStep, vaeStep, translateStep, noise };
}
