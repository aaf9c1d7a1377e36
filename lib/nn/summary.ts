// model.summary(): the layers of a model, their output shapes and parameter counts, as Keras prints them.
import { noGrad } from '../autograd/engine.js';
import { describe } from '../errors.js';
import { empty, Tensor } from '../tensor.js';
import type { Module, Parameter } from './module.js';

/** Options of Module.summary. */
export interface SummaryOptions {
  /** The shape of one input without the batch dimension ([784], [1, 28, 28]): the model runs once on zeros (a batch
   * of 2, in eval mode, without gradients) to find each layer's output shape. */
  inputShape?: readonly number[];
  /** An input batch to run instead (int32 token ids for a model that starts with an Embedding). */
  input?: Tensor;
  /** Where the lines go (default console.log); the text is returned either way. */
  print?: ((line: string) => void) | null;
}

interface Row {
  name: string;
  type: string;
  shape: string;
  params: number;
}

const count = (ps: Iterable<Parameter>) => [...new Set(ps)].reduce((n, p) => n + p.value.size, 0);
const thousands = (n: number) => n.toLocaleString('en-US');

/** The rows: every layer without sub-modules, and every module with parameters of its own, in state-dict order. */
function rows(model: Module, shapes: Map<Module, string>): Row[] {
  const out: Row[] = [];
  for (const [name, m] of model.namedModules()) {
    const own = m.namedParameters().filter(([n]) => !n.includes('.')).map(([, p]) => p);
    if (m.children().length > 0 && own.length === 0) continue;
    out.push({ name: name || '(model)', type: m.constructor.name, shape: shapes.get(m) ?? (shapes.size ? '—' : ''), params: count(own) });
  }
  return out;
}

/** Runs `model` once on `input`, recording the shape of each module's first output (the batch dimension as N). */
function outputShapes(model: Module, input: Tensor): Map<Module, string> {
  const shapes = new Map<Module, string>();
  const modules = model.namedModules().map(([, m]) => m);
  const modes = modules.map((m) => m.training);
  const forwards = modules.map((m) => (m as unknown as { forward: (...a: unknown[]) => unknown }).forward);
  const shapeOf = (y: unknown): string =>
    y instanceof Tensor ? `[${['N', ...y.shape.slice(1)].join(', ')}]` : Array.isArray(y) && y.every((t) => t instanceof Tensor) ? y.map(shapeOf).join(' ') : '?';
  modules.forEach((m, i) => {
    (m as unknown as { forward: (...a: unknown[]) => unknown }).forward = function (this: Module, ...args: unknown[]) {
      const y = forwards[i].apply(this, args);
      if (!shapes.has(m)) shapes.set(m, shapeOf(y));
      return y;
    };
  });
  try {
    model.eval();
    noGrad(() => {
      // a Sequential layer by layer: its fused paths would skip the activations' own forward (the class is known by
      // name: importing it here would make module.ts, which imports this file, import itself through it)
      const layers = (model as unknown as { layers?: Module[] }).layers;
      if (model.constructor.name === 'Sequential' && Array.isArray(layers)) layers.reduce<unknown>((x, layer) => layer.forward(x), input);
      else model.forward(input);
    });
  } finally {
    modules.forEach((m, i) => {
      (m as unknown as { forward: unknown }).forward = forwards[i];
      m.training = modes[i];
    });
  }
  return shapes;
}

export function summary(model: Module, options: SummaryOptions = {}): string {
  if (options === null || typeof options !== 'object') throw new TypeError(`${model.constructor.name}.summary: options must be an object, got ${describe(options)}`);
  const { inputShape, input, print = console.log } = options;
  if (inputShape !== undefined && input !== undefined) throw new TypeError(`${model.constructor.name}.summary: give inputShape or input, not both`);
  if (inputShape !== undefined && (!Array.isArray(inputShape) || !inputShape.every((d) => Number.isSafeInteger(d) && d > 0)))
    throw new TypeError(`${model.constructor.name}.summary: inputShape must be an array of positive integers (one input, without the batch), got ${describe(inputShape)}`);
  if (input !== undefined && !(input instanceof Tensor)) throw new TypeError(`${model.constructor.name}.summary: input must be a Tensor, got ${describe(input)}`);
  let shapes = new Map<Module, string>();
  if (input !== undefined || inputShape !== undefined) {
    const x = input ?? empty(model.backend, [2, ...inputShape!]);
    try {
      shapes = outputShapes(model, x);
    } finally {
      if (x !== input) x.dispose();
    }
  }
  const table = rows(model, shapes);
  const all = model.parameters();
  const total = count(all), trainable = count(all.filter((p) => p.requiresGrad));
  const head = ['Layer (type)', shapes.size ? 'Output shape' : '', 'Param #'];
  const cells = table.map((r) => [`${r.name} (${r.type})`, r.shape, thousands(r.params)]);
  const widths = [0, 1, 2].map((c) => Math.max(head[c].length, ...cells.map((row) => row[c].length)));
  const line = (row: string[]) => `${row[0].padEnd(widths[0])}  ${shapes.size ? `${row[1].padEnd(widths[1])}  ` : ''}${row[2].padStart(widths[2])}`;
  const rule = '─'.repeat(line(head).length);
  const text = [
    `${model.constructor.name}`,
    rule, line(head), rule,
    ...cells.map(line),
    rule,
    `Total params: ${thousands(total)} (trainable ${thousands(trainable)}, non-trainable ${thousands(total - trainable)})`,
  ].join('\n');
  if (print) for (const l of text.split('\n')) print(l);
  return text;
}
