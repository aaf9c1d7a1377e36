// Embedding: a lookup table, weight [numEmbeddings, embeddingDim] initialised N(0, 1) as PyTorch does. Input
// int32 indices of any shape [...], output [..., embeddingDim]:
//   forward   y[i, :] = weight[x[i], :]                  (gather_rows)
//   backward  dweight[x[i], :] (+)= dy[i, :], ascending i (embedding_backward)
// Gradient contract: dweight accumulates (or overwrites a freshly zeroed grad, as Linear does); the indices have
// no gradient and backward returns an empty tensor.
import { currentBackend } from '../backend.js';
import { checkNumber } from '../errors.js';
import { normal } from '../random.js';
import { fromHost, type Tensor } from '../tensor.js';
import { Module, Parameter } from './module.js';
import { checkGradShape } from './util.js';

/**
 * A lookup table, as torch.nn.Embedding: int32 indices of any shape [...] give rows of weight [numEmbeddings,
 * embeddingDim], output [..., embeddingDim]. weight starts N(0, 1), as PyTorch's. An index outside
 * [0, numEmbeddings) is a RangeError (checked before the kernel when the indices came from the host). backward
 * returns an empty tensor: indices have no gradient.
 */
export class Embedding extends Module {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  /** Rows of the table. */
  readonly numEmbeddings: number;
  /** Width of each row. */
  readonly embeddingDim: number;
  /** [numEmbeddings, embeddingDim]. */
  readonly weight: Parameter;
  private x?: Tensor;
  private yShape?: readonly number[];

  /** A table of numEmbeddings rows of embeddingDim values (integers ≥ 1). */
  constructor(numEmbeddings: number, embeddingDim: number) {
    super();
    this.numEmbeddings = checkNumber('Embedding', 'numEmbeddings', numEmbeddings, { min: 1, integer: true });
    this.embeddingDim = checkNumber('Embedding', 'embeddingDim', embeddingDim, { min: 1, integer: true });
    const w = Float32Array.from({ length: numEmbeddings * embeddingDim }, () => normal());
    this.weight = this.registerParameter('weight', new Parameter(fromHost(currentBackend(), w, [numEmbeddings, embeddingDim])));
  }

  /** The layer as messages and summaries name it, e.g. `Embedding(1000, 64)`. */
  get label(): string {
    return `Embedding(${this.numEmbeddings}, ${this.embeddingDim})`;
  }

  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, this.label);
    if (x.dtype !== 'int32')
      throw new TypeError(`${this.label}: input must be an int32 tensor of indices (rg.tensor(Int32Array.from(...), shape)), got ${x.dtype}`);
    const N = this.numEmbeddings, D = this.embeddingDim;
    // Indices made on the host carry their range: a bad one is reported here rather than by the kernel at the next read.
    const r = x.intRange;
    if (r && x.size > 0) {
      const bad = r[0] < 0 ? r[0] : r[1] >= N ? r[1] : undefined;
      if (bad !== undefined) throw new RangeError(`${this.label}: index ${bad} is out of range: indices must be in [0, ${N})`);
    }
    const b = x.backend;
    const y = this.ws.get('y', b, [...x.shape, D]);
    if (x.size > 0) b.k.gather_rows(y.buf, this.weight.value.buf, x.buf, x.size, D, N, 0);
    this.x = x;
    this.yShape = y.shape;
    return y;
  }

  override backward(dy: Tensor): Tensor {
    checkGradShape(this.label, this.checkInput(dy, this.label), this.yShape);
    const x = this.x!;
    const b = x.backend;
    const { bufs: [dw], accumulate } = Parameter.gradTargets([this.weight]);
    if (dw) {
      if (x.size > 0) b.k.embedding_backward(dw, x.buf, dy.buf, x.size, this.embeddingDim, this.numEmbeddings, accumulate);
      else if (!accumulate) b.k.fill(dw, this.weight.value.size, 0); // a grad claimed for overwriting must still read as zeros
    }
    return this.ws.get('none', b, [0]);
  }
}
