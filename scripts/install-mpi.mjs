#!/usr/bin/env node
// Builds the optional MPI addon (native/mpi/) at install when MPI's compiler wrapper and headers are found, and
// otherwise says in one line why not (build-mpi/not-built.txt keeps the reason for rg.distributed.init):
//   - RETROGRAD_SKIP_MPI=1, or no mpicxx on the PATH (Debian: apt-get install libopenmpi-dev): not built;
//   - else mpicxx compiles it into build-mpi/Release/retrograd_mpi.node against Node-API's headers from the Node
//     installation and node-addon-api. A failed build does not fail the install: it is reported, and the reason kept.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTool, notBuilt as giveUp, nodeApiIncludeDir } from './build-tools.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'build-mpi');
const built = join(out, 'Release', 'retrograd_mpi.node');

const notBuilt = (reason) => giveUp(out, 'MPI addon', reason, 'training in one process is unaffected');

if (process.env.RETROGRAD_SKIP_MPI === '1') notBuilt('skipped at install (RETROGRAD_SKIP_MPI=1)');
const mpicxx = findTool('mpicxx');
if (!mpicxx) notBuilt('mpicxx not found at install (Debian/Ubuntu: apt-get install libopenmpi-dev, then npm rebuild retrograd)');
const { dir: nodeApi, tried } = nodeApiIncludeDir();
if (!nodeApi) notBuilt(`Node-API headers (node_api.h) not found in ${tried.join(', ')}`);
let addonApi;
try {
  addonApi = createRequire(import.meta.url)('node-addon-api').include_dir;
} catch {
  notBuilt('node-addon-api is not installed');
}
rmSync(join(out, 'not-built.txt'), { force: true });
mkdirSync(join(out, 'Release'), { recursive: true });
const r = spawnSync(mpicxx, [
  '-std=c++17', '-O2', '-shared', '-fPIC', '-fvisibility=hidden', '-Wall', '-Wextra', '-Wno-unused-parameter',
  '-DNAPI_VERSION=8', '-DNODE_ADDON_API_DISABLE_DEPRECATED', '-DNODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
  `-I${nodeApi}`, `-I${addonApi}`, join(root, 'native', 'mpi', 'mpi_addon.cc'), '-o', built, '-ldl', '-pthread',
], { cwd: root, encoding: 'utf8' });
if (r.status !== 0 || !existsSync(built)) {
  console.log(`${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').filter((l) => /error/i.test(l)).slice(-8).join('\n'));
  notBuilt(`the MPI build failed at install (mpicxx exit ${r.status}); rerun \`npm rebuild retrograd\` to see why`);
}
console.log(`retrograd: MPI addon built: ${built}`);
