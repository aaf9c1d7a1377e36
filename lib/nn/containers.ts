// ModuleList and ModuleDict: sub-modules held in a list or by name, registered under their index or key (PyTorch's
// state-dict names: layers.0.weight, heads.left.bias). They hold modules; a forward that uses them is the owner's.
import { describe } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { Module } from './module.js';

export class ModuleList extends Module implements Iterable<Module> {
  private readonly items: Module[] = [];
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
  get length(): number {
    return this.items.length;
  }
  [Symbol.iterator](): Iterator<Module> {
    return this.items[Symbol.iterator]();
  }
  forward(): Tensor {
    throw new TypeError('ModuleList has no forward: call its modules from the owner\'s forward');
  }
}

export class ModuleDict extends Module {
  private readonly items = new Map<string, Module>();
  constructor(modules: Record<string, Module> = {}) {
    super();
    if (modules === null || typeof modules !== 'object') throw new TypeError(`ModuleDict: expected an object of modules, got ${describe(modules)}`);
    for (const [k, m] of Object.entries(modules)) this.set(k, m);
  }
  set(key: string, m: Module): this {
    this.add(key, m);
    this.items.set(key, m);
    return this;
  }
  get(key: string): Module {
    const m = this.items.get(key);
    if (!m) throw new RangeError(`ModuleDict.get: no module '${key}'; keys: ${[...this.items.keys()].join(', ')}`);
    return m;
  }
  has(key: string): boolean {
    return this.items.has(key);
  }
  keys(): string[] {
    return [...this.items.keys()];
  }
  entries(): [string, Module][] {
    return [...this.items.entries()];
  }
  forward(): Tensor {
    throw new TypeError('ModuleDict has no forward: call its modules from the owner\'s forward');
  }
}
