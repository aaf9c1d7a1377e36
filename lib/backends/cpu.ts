// The native CPU backend: loads the addon (a prebuilt binary from prebuilds/, else the one node-gyp built
// into build/Release/) through node-gyp-build, and maps the kernel contract onto the addon's kernel table.
// Kernel calls are queued on the addon's native thread; reads synchronise (DESIGN.md, "Execution model").
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { nativeLoadError, type Backend, type BackendInfo } from '../backend.js';
import { RetrogradError } from '../errors.js';
import { missingKernels, NativeBackend, type NativeAddon } from './native.js';

/** The package root: lib/backends/ and dist/backends/ both sit two levels below it. */
export const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

let addon: NativeAddon | undefined;
let loadError: RetrogradError | undefined;

export function loadCpuAddon(): NativeAddon {
  if (addon) return addon;
  if (loadError) throw loadError;
  const require = createRequire(import.meta.url);
  const platform = `${os.platform()}-${os.arch()}`;
  try {
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeAddon;
    const a = nodeGypBuild(packageRoot);
    const missing = missingKernels(a);
    if (missing.length) throw new Error(`the addon is out of date: it lacks the kernels ${missing.join(', ')}`);
    a.setErrorClass(RetrogradError);
    // Threads the system refused (a tight ulimit): the backend runs with those it got, and says so once.
    const threadWarning = a.info().threadWarning;
    if (typeof threadWarning === 'string') process.emitWarning(`retrograd: ${threadWarning}`, { code: 'RETROGRAD_THREADS' });
    addon = a;
    return a;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    loadError = nativeLoadError(
      `retrograd: the native CPU addon could not be loaded.\n` +
        `  tried: ${packageRoot}prebuilds/${platform}/ (prebuilt binaries) and ${packageRoot}build/Release/ (local build)\n` +
        `  why: ${why}\n` +
        `  what to do: run \`npm rebuild retrograd\` with a C++ toolchain installed (Debian/Ubuntu: apt-get install build-essential python3), ` +
        `or use the pure TypeScript backend with rg.setBackend('reference') (slow, but complete).`,
    );
    throw loadError;
  }
}

export function createCpuBackend(): Backend {
  return new NativeBackend('cpu', loadCpuAddon());
}

export function probeCpu(): BackendInfo {
  try {
    return createCpuBackend().info();
  } catch (e) {
    return { name: 'cpu', available: false, reason: e instanceof Error ? e.message : String(e), detail: {} };
  }
}
