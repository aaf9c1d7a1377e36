// The kernel contract is spelled in three places that must agree: the C++ prototypes (native/core/kernel_list.h),
// from which the addon's table takes every argument's kind and unpacking; the names the table gives them (exported
// by the addon as `signatures`); and the TypeScript contract (lib/backend.ts's Kernels), which the reference backend
// is type-checked against. This test reads the first and third as source and the second from the addon.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { KERNEL_NAMES } from '../lib/backend.js';
import { loadCpuAddon } from '../lib/backends/cpu.js';
import { requireCpu, root } from './helpers.js';

type Signature = [name: string, kind: string][];

/** Kernels of lib/backend.ts's `interface Kernels`: parameter names and type texts. */
function contract(): Map<string, { name: string; type: string }[]> {
  const file = join(root, 'lib/backend.ts');
  const src = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const out = new Map<string, { name: string; type: string }[]>();
  src.forEachChild((node) => {
    if (!ts.isInterfaceDeclaration(node) || node.name.text !== 'Kernels') return;
    for (const m of node.members) {
      if (!ts.isMethodSignature(m)) continue;
      out.set(m.name.getText(src), m.parameters.map((p) => ({ name: p.name.getText(src), type: p.type?.getText(src) ?? '' })));
    }
  });
  return out;
}

/** Parameter names of each prototype in kernel_list.h (after the pool). */
function prototypes(): Map<string, string[]> {
  const text = readFileSync(join(root, 'native/core/kernel_list.h'), 'utf8').replace(/\/\/.*$/gm, '');
  const out = new Map<string, string[]>();
  for (const m of text.matchAll(/(?:RG_KERNEL|Status)\s+(\w+)\(ThreadPool& pool,([^;]*?)\);/gs)) {
    out.set(m[1], m[2].split(',').map((p) => p.trim().split(/[\s*&]+/).pop()!));
  }
  return out;
}

const canonical = (name: string) => name.replace(/_/g, '').toLowerCase();
/** The TypeScript types each argument kind takes. */
const tsTypes: Record<string, string[]> = {
  f32: ['B'], i32: ['B'], any32: ['B'], 'f32?': ['Opt'], 'i32?': ['Opt'],
  size: ['number'], int: ['number'], float: ['number'], dims: ['number'], act: ['ActCode'], bool: ['boolean'],
};

const cpuAvailable = requireCpu();

describe('the kernel contract', () => {
  const kernels = contract();

  it('lists every kernel of the Kernels interface in KERNEL_NAMES', () => {
    expect([...kernels.keys()].sort()).toEqual([...KERNEL_NAMES].sort());
  });

  it.skipIf(!cpuAvailable)('matches the addon: the same kernels, and for each the same arguments, names and kinds in order', () => {
    const addon = loadCpuAddon() as unknown as { kernels: string[]; signatures: Record<string, Signature> };
    expect([...addon.kernels].sort()).toEqual([...kernels.keys()].sort());
    const problems: string[] = [];
    for (const [kernel, params] of kernels) {
      const native = addon.signatures[kernel];
      // a Dims argument is MAX_DIMS numbers in TypeScript: d0…d5 for `dims`, s0…s5 for `strides`
      const expanded = native.flatMap(([name, kind]) => (kind === 'dims' ? [0, 1, 2, 3, 4, 5].map((i) => [`${name[0]}${i}`, kind] as const) : [[name, kind] as const]));
      if (expanded.length !== params.length) {
        problems.push(`${kernel}: ${params.length} parameters in lib/backend.ts, ${expanded.length} in the addon`);
        continue;
      }
      expanded.forEach(([name, kind], i) => {
        const p = params[i];
        if (canonical(p.name) !== canonical(name)) problems.push(`${kernel}, argument ${i}: '${p.name}' in lib/backend.ts, '${name}' in the addon`);
        if (!tsTypes[kind].includes(p.type)) problems.push(`${kernel}, argument ${i} (${p.name}): type ${p.type} in lib/backend.ts, kind ${kind} in the addon`);
      });
    }
    expect(problems).toEqual([]);
  });

  it.skipIf(!cpuAvailable)("names the addon's arguments as kernel_list.h's prototypes do", () => {
    const addon = loadCpuAddon() as unknown as { signatures: Record<string, Signature> };
    const protos = prototypes();
    const problems: string[] = [];
    for (const [kernel, sig] of Object.entries(addon.signatures)) {
      const names = protos.get(kernel);
      if (!names) continue; // an adapter of the addon (matmul over gemm, the checked recurrent kernels keep their names)
      const ours = sig.map(([n]) => n);
      if (ours.join(',') !== names.join(',')) problems.push(`${kernel}: (${ours.join(', ')}) in the table, (${names.join(', ')}) in kernel_list.h`);
    }
    expect(problems).toEqual([]);
    expect(protos.size).toBeGreaterThan(60);
  });
});
