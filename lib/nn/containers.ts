// ModuleList and ModuleDict: sub-modules held in a list or by name, registered under their index or key (PyTorch's
// state-dict names: layers.0.weight, heads.left.bias). They hold modules; a forward that uses them is the owner's.
import { describe } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { Module } from './module.js';

/**
 * Sub-modules in a list, as torch.nn.ModuleList, registered under their index (`layers.0.weight`); iterable. It
 * has no forward of its own: the owner's forward calls its modules.
 */
export class ModuleList extends Module implements Iterable<Module> {
  private readonly items: Module[] = [];
  /** A list holding `modules` (default none). */
  constructor(modules: Module[] = []) {
    super();
    if (!Array.isArray(modules)) throw new TypeError(`ModuleList: expected an array of modules, got ${describe(modules)}`);
    for (const m of modules) this.push(m);
  }
  /** Appends a module (registered under its index). */
  push(m: Module): this {
    if (!(m instanceof Module)) throw new TypeError(`ModuleList.push: expected a Module, got ${describe(m)}`);
    this.add(String(this.items.length), m);
    this.items.push(m);
    return this;
  }
  /** The module at index i (negative counts from the end). */
  at(i: number): Module {
    const m = this.items.at(i);
    if (!m) throw new RangeError(`ModuleList.at: index ${i} is out of range for ${this.items.length} modules`);
    return m;
  }
  /** The number of modules. */
  get length(): number {
    return this.items.length;
  }
  /** The modules in order. */
  [Symbol.iterator](): Iterator<Module> {
    return this.items[Symbol.iterator]();
  }
  /** Throws: a ModuleList holds modules; its owner's forward calls them. */
  forward(): Tensor {
    throw new TypeError('ModuleList has no forward: call its modules from the owner\'s forward');
  }
}

/**
 * Sub-modules by name, as torch.nn.ModuleDict, registered under their key (`heads.left.bias`). It has no forward
 * of its own: the owner's forward calls its modules.
 */
export class ModuleDict extends Module {
  private readonly items = new Map<string, Module>();
  /** A dictionary holding `modules` (default none), in the object's key order. */
  constructor(modules: Record<string, Module> = {}) {
    super();
    if (modules === null || typeof modules !== 'object') throw new TypeError(`ModuleDict: expected an object of modules, got ${describe(modules)}`);
    for (const [k, m] of Object.entries(modules)) this.set(k, m);
  }
  /** Adds or replaces the module under `key` (a non-empty name without dots). */
  set(key: string, m: Module): this {
    this.add(key, m);
    this.items.set(key, m);
    return this;
  }
  /** The module under `key`; a RangeError naming the keys when there is none. */
  get(key: string): Module {
    const m = this.items.get(key);
    if (!m) throw new RangeError(`ModuleDict.get: no module '${key}'; keys: ${[...this.items.keys()].join(', ')}`);
    return m;
  }
  /** Whether a module is held under `key`. */
  has(key: string): boolean {
    return this.items.has(key);
  }
  /** The keys, in insertion order. */
  keys(): string[] {
    return [...this.items.keys()];
  }
  /** [key, module] pairs, in insertion order. */
  entries(): [string, Module][] {
    return [...this.items.entries()];
  }
  /** Throws: a ModuleDict holds modules; its owner's forward calls them. */
  forward(): Tensor {
    throw new TypeError('ModuleDict has no forward: call its modules from the owner\'s forward');
  }
}
