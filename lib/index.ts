// retrograd's public API (../shared/API.md is the contract). Exports only.
import './backends/index.js';
import './train/index.js';
import { currentBackend } from './backend.js';

export { autocast, backends, getBackend, isAutocastEnabled, setBackend, setMatmulPrecision, getMatmulPrecision, type BackendInfo } from './backend.js';
export { RetrogradError, type ErrorCode } from './errors.js';
export { manualSeed, type RngState } from './random.js';
export { Tensor, tensor, tidy, keep, type TensorDType } from './tensor.js';
export * from './autograd/index.js';
export type { Dims } from './autograd/methods.js';
/** torch.nn.functional's forms: the layers as functions (`F.conv2d(x, weight, bias, { stride })`), the losses with a
 * `reduction`, dropout, normalisation and interpolation, each one node of the autograd graph. */
export * as F from './nn/functional.js';
export { ModuleList, ModuleDict } from './nn/containers.js';
export { Module, Parameter } from './nn/module.js';
export type { SummaryOptions } from './nn/summary.js';
export { Sequential } from './nn/sequential.js';
export { Linear, type LinearOptions } from './nn/linear.js';
export { ReLU, LeakyReLU, Sigmoid, Tanh, GELU, Softmax } from './nn/activation.js';
export { Flatten, Identity, Dropout, Dropout2d } from './nn/shape.js';
export { Conv2d, ConvTranspose2d, Conv1d, type Conv2dOptions, type ConvTranspose2dOptions, type Conv1dOptions } from './nn/conv.js';
export { Upsample, type UpsampleOptions } from './nn/sampling.js';
export { MaxPool2d, AvgPool2d, GlobalAvgPool2d, AdaptiveAvgPool2d, type MaxPool2dOptions, type AvgPool2dOptions } from './nn/pool.js';
export { BatchNorm1d, BatchNorm2d, type BatchNormOptions } from './nn/batchnorm.js';
export { Embedding } from './nn/embedding.js';
export { LayerNorm, type LayerNormOptions } from './nn/layernorm.js';
export { GroupNorm, type GroupNormOptions } from './nn/normalization.js';
export { RNN, LSTM, GRU, type RNNOptions, type ElmanRNNOptions, type RecurrentState } from './nn/rnn.js';
export {
  MultiheadAttention, TransformerBlock, PositionalEmbedding, type MultiheadAttentionOptions, type TransformerBlockOptions,
  type AttentionForwardOptions, type TransformerBlockForwardOptions,
} from './nn/attention.js';
export {
  Transformer, TransformerEncoder, TransformerDecoder, TransformerEncoderLayer, TransformerDecoderLayer, type TransformerOptions,
  type TransformerLayerOptions, type TransformerForwardOptions, type EncoderLayerForwardOptions, type EncoderForwardOptions, type DecoderForwardOptions,
  type Activation, type TransformerLayerConfig,
} from './nn/transformer.js';
export { LoRA, addLoRA, mergeLoRA, type LoRAOptions, type AddLoRAOptions, type LoRAReport } from './nn/lora.js';
export { KVCache } from './nn/kv-cache.js';
export type { AttentionMask } from './nn/attention-ops.js';
export type { Size1, Size2, InterpolationMode } from './nn/util.js';
export { Loss, MSELoss, CrossEntropyLoss, BCEWithLogitsLoss, BCELoss, L1Loss, HuberLoss, type CrossEntropyOptions } from './losses.js';
export { clipGradNorm, clipGradValue, applyPenalty, type PenaltyOptions } from './optim/clip.js';
export { Optimizer, type OptimizerStateDict, type ParamGroup, type Group, type OptionsCheck } from './optim/optimizer.js';
export { SGD, type SGDOptions } from './optim/sgd.js';
export { Adam, AdamW, type AdamOptions, type Resolved as ResolvedAdamOptions } from './optim/adam.js';
export { RMSprop, type RMSpropOptions } from './optim/rmsprop.js';
export { Adagrad, type AdagradOptions } from './optim/adagrad.js';
export { Adamax, Adadelta, NAdam, RAdam, type AdamaxOptions, type AdadeltaOptions, type NAdamOptions, type RAdamOptions } from './optim/adaptive.js';
export {
  LRScheduler, StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR, SequentialLR, OneCycleLR, ReduceLROnPlateau,
  type OneCycleOptions, type PlateauOptions, type AnyOptimizer,
} from './optim/scheduler.js';
export { gradCheck, type GradCheckOptions, type GradCheckResult } from './gradcheck.js';
export type { KernelName, Kernels, Backend, Buf, DType, HostArray, ActCode, Opt as OptionalBuf, ProductPrecision } from './backend.js';
export { checkBf16Products, checkKernels, summarizeKernelCheck, type KernelCheckOptions, type KernelCheckResult, type KernelCheckSummary } from './check/kernels.js';
export { EarlyStopping, ModelCheckpoint, LearningRateMonitor, LearningRateScheduler, type EarlyStoppingOptions, type ModelCheckpointOptions, type Mode as MonitorMode } from './train/callbacks.js';
export { SummaryWriter, TensorBoard, type TensorBoardOptions } from './train/tensorboard.js';
export { Dashboard, type DashboardOptions, type DashboardState } from './train/dashboard.js';
export { distributed, DistributedDataParallel, DistributedSampler, type DistributedDataParallelOptions, type DistributedDataParallelStats, type DistributedWorld, type LauncherWorld } from './distributed.js';
export type { DiagnosticsOptions } from './train/diagnostics.js';
export type { BatchingOptions, BatchingStats, Callback, CompileOptions, EvaluateOptions, FitOptions, History, Logs, PredictOptions } from './train/types.js';
export { loadMnistDigits, mnistSplit, MNIST_PIXELS, type Digits } from './data/mnist.js';
export { trainTestSplit, mulberry32, permutation, takeRows, type Split } from './data/split.js';
export { Dataset, IterableDataset, DataLoader, readCSV, type Sample, type Transform, type CsvOptions, type DataLoaderOptions, type Sampler, type Source as DatasetSource } from './data/loader.js';
export { save, load, loadSafetensors, saveCheckpoint, loadCheckpoint, type CheckpointParts, type LoadedCheckpoint, type ModuleConfig, type SaveOptions, type Stateful } from './io/model.js';
export { exportOnnx, toOnnx, ONNX_OPSET, type ExportOnnxOptions } from './io/onnx.js';
export { encodeSafetensors, decodeSafetensors, type StTensor, type StWritable, type StBf16Tensor, toBfloat16, fromBfloat16, type Decoded as DecodedSafetensors } from './io/safetensors.js';

/** Live tensors and bytes of the current backend, and on a GPU the device memory its allocator holds. */
export function memory(): {
  /** Live tensors (buffers not yet freed). */
  tensors: number;
  /** Their bytes. */
  bytes: number;
  /** Device memory the GPU allocator has handed out (0 on the CPU backends). */
  deviceBytesInUse: number;
  /** Device memory the GPU allocator holds for reuse (0 on the CPU backends). */
  deviceBytesCached: number;
} {
  const m = currentBackend().memory();
  return { tensors: m.tensors, bytes: m.bytes, deviceBytesInUse: m.deviceBytesInUse ?? 0, deviceBytesCached: m.deviceBytesCached ?? 0 };
}
