#!/usr/bin/env node
// Builds the CUDA addon at install time when it can, and otherwise says in one line why not.
//   - a prebuilt CUDA addon in prebuilds/<platform>-<arch>-cuda/: nothing to build;
//   - RETROGRAD_SKIP_CUDA=1, or no nvcc (PATH, CUDA_HOME, /usr/local/cuda; RETROGRAD_NVCC names the only one to
//     try), or no cmake: not built, and build-cuda/not-built.txt keeps the reason for rg.backends();
//   - else cmake builds CMakeLists.txt into build-cuda/ (nvcc at -O3 for sm_80, sm_90 and compute_90 PTX), with
//     Node-API's headers from the running Node's installation (nodedir, <node>/../include/node, /usr/include/node).
// A failed CUDA build does not fail the install (the CPU backend does not need it); it is reported, and the
// reason kept. `--prebuild` copies the built addon into prebuilds/ for `npm run binaries`.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTool, notBuilt as giveUp, nodeApiIncludeDir } from './build-tools.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'build-cuda');
const prebuildDir = join(root, 'prebuilds', `${os.platform()}-${os.arch()}-cuda`);
const built = join(out, 'Release', 'retrograd_cuda.node');

const notBuilt = (reason) => giveUp(out, 'CUDA backend', reason, 'the CPU backend is unaffected');

if (process.argv.includes('--prebuild')) {
  if (!existsSync(built)) {
    console.log('retrograd: no CUDA addon in build-cuda/ to ship as a prebuild');
    process.exit(0);
  }
  mkdirSync(prebuildDir, { recursive: true });
  copyFileSync(built, join(prebuildDir, 'retrograd_cuda.node'));
  spawnSync('strip', ['--strip-unneeded', join(prebuildDir, 'retrograd_cuda.node')]);
  console.log(`retrograd: CUDA prebuild in ${prebuildDir}`);
  process.exit(0);
}

if (existsSync(join(prebuildDir, 'retrograd_cuda.node'))) process.exit(0);
if (process.env.RETROGRAD_SKIP_CUDA === '1') notBuilt('skipped at install (RETROGRAD_SKIP_CUDA=1)');
const nvcc = process.env.RETROGRAD_NVCC
  ? existsSync(process.env.RETROGRAD_NVCC) ? process.env.RETROGRAD_NVCC : undefined
  : findTool('nvcc', [process.env.CUDA_HOME && join(process.env.CUDA_HOME, 'bin'), '/usr/local/cuda/bin']);
if (!nvcc) notBuilt(`nvcc not found at install${process.env.RETROGRAD_NVCC ? ` (RETROGRAD_NVCC=${process.env.RETROGRAD_NVCC})` : ''}`);
if (!findTool('cmake', [])) notBuilt('cmake not found at install (nvcc was found)');

const { dir: nodeApiInclude, tried } = nodeApiIncludeDir();
if (!nodeApiInclude) notBuilt(`Node-API headers (node_api.h) not found in ${tried.join(', ')} (nvcc was found)`);

rmSync(join(out, 'not-built.txt'), { force: true });
console.log(`retrograd: building the CUDA backend with ${nvcc} (about a minute)…`);
const cmake = (args) => spawnSync('cmake', args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, CUDACXX: nvcc } });
const jobs = String(Math.max(1, Math.min(os.availableParallelism(), 8)));
let r = cmake(['-S', root, '-B', out, '-DCMAKE_BUILD_TYPE=Release', `-DCMAKE_CUDA_COMPILER=${nvcc}`, `-DNODE_API_INCLUDE_DIR=${nodeApiInclude}`]);
if (r.status === 0) r = cmake(['--build', out, '--config', 'Release', '--parallel', jobs]);
if (r.status !== 0 || !existsSync(built)) {
  const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').filter((l) => /error/i.test(l)).slice(-8).join('\n');
  console.log(tail);
  notBuilt(`the CUDA build failed at install (cmake exit ${r.status}); rerun \`npm rebuild retrograd\` to see the whole log`);
}
console.log(`retrograd: CUDA backend built: ${built}`);
