// The application examples' models, written as a user writes them: modules whose forward composes layers and tensor
// operations, their backward from the autograd graph. Each has a PyTorch twin with the same submodule names (so the
// same state-dict keys) in examples/twins/models.py. The factory takes the library (`rg`) so the tests can run the
// models on their own build of it.

export function appModels(rg) {
  /** ResNet's basic block: two 3×3 convolutions with BatchNorm, the input added back; a 1×1 strided convolution
   * (with BatchNorm) on the shortcut when the block halves the resolution or changes the width. */
  class BasicBlock extends rg.Module {
    constructor(inC, outC, stride) {
      super();
      this.conv1 = new rg.Conv2d(inC, outC, 3, { stride, padding: 1, bias: false });
      this.bn1 = new rg.BatchNorm2d(outC);
      this.conv2 = new rg.Conv2d(outC, outC, 3, { padding: 1, bias: false });
      this.bn2 = new rg.BatchNorm2d(outC);
      this.downsample = stride !== 1 || inC !== outC
        ? new rg.Sequential([new rg.Conv2d(inC, outC, 1, { stride, bias: false }), new rg.BatchNorm2d(outC)])
        : null;
    }
    forward(x) {
      const h = this.bn2.forward(this.conv2.forward(this.bn1.forward(this.conv1.forward(x)).relu()));
      return h.add(this.downsample ? this.downsample.forward(x) : x).relu();
    }
  }

  /** A small ResNet for 1×28×28 digits: a 3×3 stem, three basic blocks (28² → 14² → 7², widths w, 2w, 4w), global
   * average pooling and a linear classifier. */
  class ResNet extends rg.Module {
    constructor({ width = 16, classes = 10 } = {}) {
      super();
      const [a, b, c] = [width, 2 * width, 4 * width];
      this.conv1 = new rg.Conv2d(1, a, 3, { padding: 1, bias: false });
      this.bn1 = new rg.BatchNorm2d(a);
      this.layer1 = new BasicBlock(a, a, 1);
      this.layer2 = new BasicBlock(a, b, 2);
      this.layer3 = new BasicBlock(b, c, 2);
      this.fc = new rg.Linear(c, classes);
    }
    forward(x) {
      let h = this.bn1.forward(this.conv1.forward(x)).relu();
      h = this.layer3.forward(this.layer2.forward(this.layer1.forward(h)));
      return this.fc.forward(h.mean([2, 3]));
    }
  }

  /** DCGAN's generator for 28×28 digits: z [B, nz] → 4w × 7×7 (a transposed convolution of the 1×1 noise) → 2w × 14×14
   * → w × 28×28, BatchNorm and ReLU between, then a 3×3 convolution to the image and tanh (images in [−1, 1]). With
   * `classes`, conditional: the class wanted (int32 [B]), embedded in `classes` numbers, joins the noise. */
  class Generator extends rg.Module {
    constructor({ nz = 64, width = 32, classes = 0 } = {}) {
      super();
      this.nz = nz;
      this.classes = classes;
      if (classes) this.embed = new rg.Embedding(classes, classes);
      this.net = new rg.Sequential([
        new rg.ConvTranspose2d(nz + classes, 4 * width, 7, { bias: false }), new rg.BatchNorm2d(4 * width), new rg.ReLU(),
        new rg.ConvTranspose2d(4 * width, 2 * width, 4, { stride: 2, padding: 1, bias: false }), new rg.BatchNorm2d(2 * width), new rg.ReLU(),
        new rg.ConvTranspose2d(2 * width, width, 4, { stride: 2, padding: 1, bias: false }), new rg.BatchNorm2d(width), new rg.ReLU(),
        new rg.Conv2d(width, 1, 3, { padding: 1 }), new rg.Tanh(),
      ]);
    }
    forward(z, y) {
      const h = this.classes ? rg.cat([z, this.embed.forward(y)], 1) : z;
      return this.net.forward(h.reshape([z.shape[0], this.nz + this.classes, 1, 1]));
    }
  }

  /** DCGAN's discriminator: 28×28 → w × 14×14 → 2w × 7×7 strided convolutions, a 3×3 convolution to 4w × 7×7, with
   * LeakyReLU(0.2) (BatchNorm on all but the first), then a 7×7 convolution to one logit per image. With `classes`,
   * conditional: the image's class (int32 [B]), embedded as a second 28×28 channel, joins the image. */
  class Discriminator extends rg.Module {
    constructor({ width = 32, classes = 0 } = {}) {
      super();
      this.classes = classes;
      if (classes) this.embed = new rg.Embedding(classes, 784);
      this.net = new rg.Sequential([
        new rg.Conv2d(classes ? 2 : 1, width, 4, { stride: 2, padding: 1 }), new rg.LeakyReLU(0.2),
        new rg.Conv2d(width, 2 * width, 4, { stride: 2, padding: 1, bias: false }), new rg.BatchNorm2d(2 * width), new rg.LeakyReLU(0.2),
        new rg.Conv2d(2 * width, 4 * width, 3, { padding: 1, bias: false }), new rg.BatchNorm2d(4 * width), new rg.LeakyReLU(0.2),
        new rg.Conv2d(4 * width, 1, 7),
      ]);
    }
    forward(x, y) {
      const h = this.classes ? rg.cat([x, this.embed.forward(y).reshape([x.shape[0], 1, 28, 28])], 1) : x;
      return this.net.forward(h).reshape([-1]);
    }
  }

  /** A convolutional VAE: the encoder maps a digit to the mean and log-variance of q(z | x) (28² → 14² → 7², then
   * linear), the decoder maps z back to 28×28 Bernoulli logits (linear, then two transposed convolutions). */
  class VAE extends rg.Module {
    constructor({ latent = 16, width = 32 } = {}) {
      super();
      this.latent = latent;
      this.width = width;
      this.enc1 = new rg.Conv2d(1, width, 4, { stride: 2, padding: 1 });
      this.enc2 = new rg.Conv2d(width, 2 * width, 4, { stride: 2, padding: 1 });
      this.encOut = new rg.Linear(2 * width * 49, 2 * latent);
      this.decIn = new rg.Linear(latent, 2 * width * 49);
      this.dec1 = new rg.ConvTranspose2d(2 * width, width, 4, { stride: 2, padding: 1 });
      this.dec2 = new rg.ConvTranspose2d(width, 1, 4, { stride: 2, padding: 1 });
    }
    /** x [B, 1, 28, 28] → { mu, logvar } [B, latent] each. */
    encode(x) {
      const h = this.enc2.forward(this.enc1.forward(x).relu()).relu();
      const [mu, logvar] = this.encOut.forward(h.flatten(1)).chunk(2, 1);
      return { mu, logvar };
    }
    /** z [B, latent] → logits [B, 1, 28, 28]. */
    decode(z) {
      const h = this.decIn.forward(z).relu().reshape([z.shape[0], 2 * this.width, 7, 7]);
      return this.dec2.forward(this.dec1.forward(h).relu());
    }
    /** The reparameterisation trick: z = μ + σ·ε with ε ~ N(0, 1) given, so the gradient reaches μ and σ. */
    forward(x, eps) {
      const { mu, logvar } = this.encode(x);
      const z = mu.add(logvar.mul(0.5).exp().mul(eps));
      return { logits: this.decode(z), mu, logvar };
    }
  }

  /** The negative ELBO per digit, in nats: the Bernoulli reconstruction term summed over pixels plus KL(q(z|x) ‖ N(0, I)). */
  function negativeElbo({ logits, mu, logvar }, x) {
    const B = x.shape[0];
    const rec = rg.F.binaryCrossEntropyWithLogits(logits, x, { reduction: 'sum' });
    const kl = logvar.add(1).sub(mu.square()).sub(logvar.exp()).sum().mul(-0.5);
    return rec.add(kl).div(B);
  }

  /** An encoder–decoder transformer for sequence-to-sequence tasks: token embeddings and learned positions on both
   * sides, rg.Transformer (pre-norm, batch first, no dropout), and a linear map from the decoder to the target vocabulary.
   * Source id 0 is padding, hidden from the attention by a key padding mask. */
  class Translator extends rg.Module {
    constructor({ srcVocab, tgtVocab, dModel = 64, nhead = 4, layers = 2, dimFeedforward = 128, srcLen = 12, tgtLen = 12 }) {
      super();
      this.srcEmbed = new rg.Embedding(srcVocab, dModel);
      this.srcPos = new rg.PositionalEmbedding(srcLen, dModel);
      this.tgtEmbed = new rg.Embedding(tgtVocab, dModel);
      this.tgtPos = new rg.PositionalEmbedding(tgtLen, dModel);
      this.transformer = new rg.Transformer({
        dModel, nhead, numEncoderLayers: layers, numDecoderLayers: layers, dimFeedforward, dropout: 0, batchFirst: true, normFirst: true,
      });
      this.generator = new rg.Linear(dModel, tgtVocab);
    }
    /** src int32 [B, S] → { memory [B, S, dModel], pad } with pad the key padding mask where src is 0: additive, −10⁹
     * there and 0 elsewhere, looked up on the device from a table by token id (reading src back to the host would wait
     * for every kernel queued before it); after the softmax it masks as PyTorch's boolean mask does (−∞: the same
     * zeros). */
    encode(src) {
      const V = this.srcEmbed.numEmbeddings;
      if (this._padTable?.backend !== src.backend) this._padTable = rg.tensor(Float32Array.from({ length: V }, (_, i) => (i === 0 ? -1e9 : 0)), [V, 1]);
      const pad = rg.F.embedding(src, this._padTable).reshape(src.shape);
      const memory = this.transformer.encoder.forward(this.srcPos.forward(this.srcEmbed.forward(src)), { srcKeyPaddingMask: pad });
      return { memory, pad };
    }
    /** tgt int32 [B, T] → logits [B, T, tgtVocab]. Without a cache, causal over the T positions; with one (generation,
     * under rg.noGrad), tgt holds the next position(s) only, `offset` after the cached ones. */
    decode(tgt, memory, pad, { cache, offset = 0 } = {}) {
      const h = this.tgtPos.forward(this.tgtEmbed.forward(tgt), { offset });
      const tgtMask = cache ? undefined : rg.Transformer.generateSquareSubsequentMask(tgt.shape[1]);
      return this.generator.forward(this.transformer.decoder.forward(h, memory, { tgtMask, memoryKeyPaddingMask: pad, cache }));
    }
    forward(src, tgtIn) {
      const { memory, pad } = this.encode(src);
      return this.decode(tgtIn, memory, pad);
    }
  }

  /** Teacher forcing: the decoder reads tgt[:, :−1] and predicts tgt[:, 1:]; the mean cross-entropy per token. */
  function translationLoss(model, src, tgt) {
    const T = tgt.shape[1];
    const logits = model.forward(src, tgt.narrow(1, 0, T - 1));
    return rg.F.crossEntropy(logits.reshape([-1, logits.shape[2]]), tgt.narrow(1, 1, T - 1).reshape([-1]));
  }

  return { BasicBlock, ResNet, Generator, Discriminator, VAE, negativeElbo, Translator, translationLoss };
}
