#!/usr/bin/env node
// npm's install step for retrograd. It never fails the install for want of a binary or a compiler:
//   1. the native CPU addon: a prebuilt binary for this platform (prebuilds/<platform>-<arch>/) that loads, else
//      compiled with node-gyp (a C++17 compiler and Python); when neither works, one warning says so and why, and
//      retrograd runs on its pure TypeScript reference backend (slow, but complete) until `npm rebuild retrograd`;
//   2. the CUDA addon where nvcc is (scripts/install-cuda.mjs, which also never fails the install);
//   3. the MPI addon for rg.distributed where mpicxx is (scripts/install-mpi.mjs, likewise).
// RETROGRAD_SKIP_NATIVE=1 skips the compile of step 1 (the reference backend is used where no prebuild loads).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

/** Why the prebuilt binary cannot serve, or undefined when one loads. */
function prebuildProblem() {
  let file;
  try {
    file = require('node-gyp-build').path(root);
  } catch {
    return `no prebuilt binary for ${process.platform}-${process.arch}`;
  }
  try {
    require(file);
    return undefined;
  } catch (e) {
    return `the prebuilt binary ${file} does not load (${e instanceof Error ? e.message.split('\n')[0] : e})`;
  }
}

/** node-gyp as npm runs it (npm passes its own copy in npm_config_node_gyp), else the one on the PATH. */
function compile() {
  const gyp = process.env.npm_config_node_gyp;
  const [cmd, args] = gyp && existsSync(gyp) ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) return `node-gyp could not run (${r.error.message})`;
  if (r.status !== 0) {
    const lines = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').filter((l) => l.trim());
    const errors = lines.filter((l) => /error|not found|No such file/i.test(l)).slice(-6);
    return `node-gyp rebuild exited with ${r.status}:\n    ${(errors.length ? errors : lines.slice(-6)).join('\n    ')}`;
  }
  return undefined;
}

const problem = prebuildProblem();
if (problem) {
  const why = process.env.RETROGRAD_SKIP_NATIVE === '1' ? 'RETROGRAD_SKIP_NATIVE=1' : compile();
  if (why) {
    console.warn(
      `retrograd: the native CPU backend is not available (${problem}, and it could not be compiled: ${why}).\n` +
        `retrograd will run on its pure TypeScript reference backend, which is complete but slow. For the native ` +
        `backend install a C++17 compiler and Python (Debian/Ubuntu: apt-get install build-essential python3) and ` +
        `run \`npm rebuild retrograd\`.`,
    );
  }
}

for (const step of ['install-cuda.mjs', 'install-mpi.mjs']) {
  const r = spawnSync(process.execPath, [join(root, 'scripts', step)], { cwd: root, stdio: 'inherit' });
  if (r.error) console.warn(`retrograd: the install step ${step} could not run (${r.error.message})`);
}
process.exitCode = 0;
