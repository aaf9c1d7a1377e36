// The native sources compile for Windows x64: every source of binding.gyp through Debian's MinGW-w64 cross compiler
// (g++-mingw-w64-x86-64-posix) against Node-API's headers, syntax and types only. There is no Windows here to link or
// run the addon; this keeps the POSIX-only calls (mmap, sched_getaffinity, aligned_alloc) behind their guards.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findTool, requireOrSkip, root } from './helpers.js';

const mingw = findTool(['x86_64-w64-mingw32-g++-posix']);
const nodeHeaders = '/usr/include/node';
const ready = requireOrSkip('the MinGW-w64 cross compiler', mingw !== undefined, 'x86_64-w64-mingw32-g++-posix not found (apt-get install g++-mingw-w64-x86-64-posix)');

/** binding.gyp's sources (a JSON-like file with comments, none here). */
function sources(): string[] {
  const gyp = JSON.parse(readFileSync(join(root, 'binding.gyp'), 'utf8')) as { targets: { sources: string[] }[] };
  return gyp.targets[0].sources;
}

function compile(file: string): Promise<{ file: string; status: number | null; stderr: string }> {
  const addonApi = (createRequire(import.meta.url)('node-addon-api') as { include_dir: string }).include_dir;
  const args = ['-std=c++17', '-fsyntax-only', '-Wall', '-Wextra', '-Wno-unused-parameter', '-Wno-psabi', '-DNAPI_EXPERIMENTAL',
    '-DNODE_ADDON_API_DISABLE_DEPRECATED', '-DNODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS', '-DNOMINMAX', `-I${nodeHeaders}`, `-I${join(root, addonApi)}`, file];
  return new Promise((resolve) => {
    const p = spawn(mingw!, args, { cwd: root });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => resolve({ file, status, stderr }));
  });
}

describe.runIf(ready)('Windows x64 (compile only)', () => {
  it('every native source of the CPU addon compiles with MinGW-w64, without warnings', async () => {
    const files = sources();
    expect(files.length).toBeGreaterThan(10);
    const results: Awaited<ReturnType<typeof compile>>[] = [];
    // two at a time (the machine's cores)
    for (let i = 0; i < files.length; i += 2) results.push(...(await Promise.all(files.slice(i, i + 2).map(compile))));
    for (const r of results) {
      expect(r.status, `${r.file}:\n${r.stderr}`).toBe(0);
      expect(r.stderr, r.file).toBe('');
    }
  }, 300_000);
});
