// The schema of `retrograd train`'s config: a JSON Schema (draft 2020-12) that editors can use
// (`retrograd train --schema` prints it; docs/train-config.schema.json ships it), and the checker that applies it
// before anything is read or built. The checker knows the few keywords the schema uses — type, enum, minimum,
// required, properties, additionalProperties: false, items, $ref to #/$defs — and names the offending key by its
// path ("data.train.label"), with the closest valid name for a misspelt one.
import { closest, describe } from '../errors.js';

export type Schema = {
  type?: 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean' | ('string' | 'integer')[];
  enum?: readonly unknown[];
  minimum?: number;
  required?: readonly string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean;
  items?: Schema;
  $ref?: string;
  description?: string;
  default?: unknown;
};

const dataSource: Schema = {
  type: 'object',
  description: 'one of: a CSV file (csv, label), a JSON file of { x: rows, y: targets } (json), or raw little-endian binary arrays (x: float32 .f32, y: .i32 or .f32, features)',
  additionalProperties: false,
  properties: {
    csv: { type: 'string', description: 'a CSV file with a header row, streamed (never loaded whole)' },
    label: { type: ['string', 'integer'], description: "the CSV's target column: its header name or its index (default 0)" },
    json: { type: 'string', description: 'a JSON file holding { "x": [[…], …], "y": […] }' },
    x: { type: 'string', description: 'raw float32 features, row after row' },
    y: { type: 'string', description: 'raw targets: int32 class indices (.i32) or float32 values' },
    features: { type: 'integer', minimum: 1, description: 'values per row of x (binary data)' },
  },
};

/** The config's schema; `optimizers` and `losses` are the names `retrograd train` knows. */
export function trainConfigSchema(optimizers: readonly string[], losses: readonly string[]): Schema & Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'retrograd train config',
    description: 'A model, its data, an optimizer and a loss for `retrograd train <config.json>`. Paths are relative to the config file and stay inside its folder.',
    type: 'object',
    required: ['model', 'data'],
    additionalProperties: false,
    properties: {
      $schema: { type: 'string', description: "this schema's location, for editors" },
      model: { type: 'object', description: 'a module as rg.save writes its architecture: { "type": "Sequential", "layers": [{ "type": "Linear", "args": [4, 16] }, …] }' },
      data: {
        type: 'object',
        required: ['train'],
        additionalProperties: false,
        properties: { train: { $ref: '#/$defs/data' }, validation: { $ref: '#/$defs/data' } },
      },
      optimizer: {
        type: 'object',
        description: "{ type, …the optimizer's options (lr, momentum, betas, weightDecay, …) }",
        properties: { type: { enum: optimizers, default: 'Adam' } },
      },
      loss: { enum: losses, default: 'CrossEntropyLoss' },
      metrics: { type: 'array', items: { enum: ['accuracy'] } },
      epochs: { type: 'integer', minimum: 1, default: 10 },
      batchSize: { type: 'integer', minimum: 1, default: 32 },
      shuffle: { type: 'boolean', description: 'reshuffle every epoch (default true; a streamed CSV needs shuffleBuffer)' },
      shuffleBuffer: { type: 'integer', minimum: 1, description: 'samples held to draw from when shuffling a streamed CSV (tf.data\'s shuffle buffer)' },
      save: { type: 'string', description: 'where to write the trained model (.safetensors)' },
      history: { type: 'string', description: 'where to write the History as JSON (retrograd report draws it)' },
      seed: { type: 'integer', description: 'seeds initialisation and shuffling (unset: the clock)' },
      autocast: {
        enum: ['bfloat16', false], default: false,
        description: 'mixed precision, as rg.autocast: matrix products and convolutions with bfloat16 operands and float32 sums (CPUs with AVX512-BF16)',
      },
    },
    $defs: { data: dataSource },
  };
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function resolveRef(root: Schema & { $defs?: Record<string, Schema> }, ref: string): Schema {
  const name = ref.replace('#/$defs/', '');
  const s = root.$defs?.[name];
  if (!s) throw new Error(`schema: no definition ${ref}`);
  return s;
}

/**
 * Checks `value` against `schema`; the first violation is thrown (TypeError for a wrong kind of value or an
 * unknown key, RangeError for a value out of range), prefixed by `where` and the key's path.
 */
export function checkSchema(where: string, value: unknown, root: Schema & { $defs?: Record<string, Schema> }, schema: Schema = root, path = ''): void {
  if (schema.$ref) return checkSchema(where, value, root, resolveRef(root, schema.$ref), path);
  const at = path ? `${where}: "${path}"` : where;
  if (schema.type !== undefined) {
    const kinds = Array.isArray(schema.type) ? schema.type : [schema.type];
    const kind = typeOf(value);
    if (!kinds.some((k) => k === kind || (k === 'number' && kind === 'integer')))
      throw new TypeError(`${at} must be ${kinds.map((k) => (k === 'integer' ? 'an integer' : k === 'object' || k === 'array' ? `an ${k}` : `a ${k}`)).join(' or ')}, got ${describe(value)}`);
  }
  if (schema.enum && !schema.enum.includes(value)) {
    const near = typeof value === 'string' ? closest(value, schema.enum.filter((e): e is string => typeof e === 'string')) : undefined;
    throw new RangeError(`${at} must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}, got ${describe(value)}${near ? ` (did you mean "${near}"?)` : ''}`);
  }
  if (schema.minimum !== undefined && typeof value === 'number' && value < schema.minimum)
    throw new RangeError(`${at} must be at least ${schema.minimum}, got ${value}`);
  if (schema.items && Array.isArray(value)) value.forEach((v, i) => checkSchema(where, v, root, schema.items, `${path}[${i}]`));
  if (typeOf(value) === 'object' && (schema.properties || schema.required)) {
    const obj = value as Record<string, unknown>;
    const known = Object.keys(schema.properties ?? {});
    for (const key of Object.keys(obj)) {
      const sub = schema.properties?.[key];
      const keyPath = path ? `${path}.${key}` : key;
      if (sub) checkSchema(where, obj[key], root, sub, keyPath);
      else if (schema.additionalProperties === false) {
        const near = closest(key, known);
        throw new TypeError(`${where}: unknown key "${keyPath}"${near ? ` (did you mean "${path ? `${path}.` : ''}${near}"?)` : ''}; valid keys${path ? ` in "${path}"` : ''}: ${known.join(', ')}`);
      }
    }
    for (const key of schema.required ?? [])
      if (obj[key] === undefined) throw new TypeError(`${where}: ${path ? `"${path}" needs` : 'the config needs'} "${key}"`);
  }
}
