#!/usr/bin/env node
// `npm run binaries`: the prebuilt addons that `npm pack` ships.
//   - prebuilds/linux-x64/ (or this machine's platform): prebuildify, Node-API, stripped;
//   - prebuilds/linux-arm64/ on a Linux x64 machine with Debian's cross compiler (apt-get install
//     g++-aarch64-linux-gnu): the same sources built by aarch64-linux-gnu-g++ (x86 kernels compiled out, the portable
//     ones vectorised with NEON); without the cross compiler one line says it was not built;
//   - prebuilds/<platform>-<arch>-cuda/ where the CUDA addon was built (scripts/install-cuda.mjs --prebuild).
// `--arch arm64` builds the arm64 addon only.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTool } from './build-tools.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const prebuildify = join(root, 'node_modules', 'prebuildify', 'bin.js');
const onlyArm64 = process.argv.includes('--arch') && process.argv[process.argv.indexOf('--arch') + 1] === 'arm64';

function run(args, env = {}) {
  const r = spawnSync(process.execPath, [prebuildify, ...args], { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`prebuildify ${args.join(' ')} exited with ${r.status}`);
}

// arm64 first: node-gyp builds in build/, which the x64 build then leaves holding this machine's addon
if (process.platform === 'linux' && process.arch === 'x64') {
  const cross = 'aarch64-linux-gnu-g++';
  if (findTool(cross)) {
    console.log('retrograd: building the linux-arm64 addon with aarch64-linux-gnu-g++');
    run(['--napi', '--strip', '--arch', 'arm64'], { CC: 'aarch64-linux-gnu-gcc', CXX: cross, PREBUILD_STRIP_BIN: 'aarch64-linux-gnu-strip' });
  } else {
    console.log(`retrograd: linux-arm64 addon not built: ${cross} not found (apt-get install g++-aarch64-linux-gnu)`);
    if (onlyArm64) process.exit(1);
  }
}

if (!onlyArm64) {
  run(['--napi', '--strip']);
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'install-cuda.mjs'), '--prebuild'], { cwd: root, stdio: 'inherit' });
  process.exitCode = r.status ?? 1;
}
