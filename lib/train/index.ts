// The training loop, installed into Module's Keras-style methods (compile, fit, evaluate, predict, predictAsync).
import { installTrainer } from '../nn/module.js';
import { compileModel, evaluateModel, fitModel } from './fit.js';
import { batchingStats, predictModel, predictModelAsync, setBatching } from './predict.js';

installTrainer({
  compile: compileModel,
  fit: fitModel,
  evaluate: evaluateModel,
  predict: predictModel,
  predictAsync: predictModelAsync,
  setBatching,
  batchingStats,
});
