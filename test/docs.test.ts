// The documentation in the box: every relative link in README.md and docs/ leads to a file that ships, the guide's
// JavaScript blocks run as written, and TypeDoc finds every export documented (the API reference is complete).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireBuiltDist, root } from './helpers.js';

beforeAll(requireBuiltDist);

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[] };
const markdown = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** Whether a path (relative to the repository) is in the package by package.json's "files". */
function ships(path: string): boolean {
  return path === 'README.md' || path === 'package.json' || pkg.files.some((f) => {
    const pattern = f.replace(/\/$/, '');
    if (pattern.includes('*')) return new RegExp(`^${pattern.replace(/[.]/g, '\\.').replace(/\*/g, '[^/]*')}$`).test(path);
    return path === pattern || path.startsWith(`${pattern}/`);
  });
}

/** Runs each ```js block of `doc` (at least `least` of them) as a module from the repository; `check` reads its output. */
function runBlocks(doc: string, least: number, check: (code: string, out: string, where: string) => void): void {
  const blocks = [...readFileSync(join(root, doc), 'utf8').matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  expect(blocks.length).toBeGreaterThanOrEqual(least);
  blocks.forEach((code, i) => {
    const file = join(root, 'test', `doc-block-${i}.tmp.mjs`);
    writeFileSync(file, code);
    try {
      const r = spawnSync(process.execPath, [file], { cwd: root, encoding: 'utf8', timeout: 120_000 });
      expect(r.status, `${doc} block ${i}:\n${code}\n${r.stderr}`).toBe(0);
      check(code, r.stdout.trim(), `${doc} block ${i}`);
    } finally {
      rmSync(file, { force: true });
    }
  });
}

describe('documentation', () => {
  it('links only to files that exist and ship in the package', () => {
    const broken: string[] = [];
    for (const file of markdown) {
      const text = readFileSync(join(root, file), 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^(https?:|mailto:|#)/.test(target)) continue;
        const path = normalize(join(dirname(file), target.split('#')[0]));
        // the API reference is generated (npm run docs, and at pack): its entry point is checked by the TypeDoc test
        const generated = path.startsWith('docs/api/');
        if ((!generated && !existsSync(join(root, path))) || !ships(path)) broken.push(`${file} → ${target}`);
      }
    }
    expect(broken).toEqual([]);
    // the README names no file that is not shipped as where to read more
    expect(readFileSync(join(root, 'README.md'), 'utf8')).not.toMatch(/`(API|DESIGN)\.md`/);
  });

  it("runs the guide's JavaScript blocks as written", () => {
    runBlocks('docs/guide.md', 4, (code, out, where) => {
      // what each block prints: an accuracy, a loss, or what it wrote
      const accuracy = /^accuracy (\S+)/m.exec(out), mse = /^mse (\S+)/m.exec(out);
      if (accuracy) expect(Number(accuracy[1]), `${where}: ${out}`).toBeGreaterThan(0.85);
      if (mse) expect(Number(mse[1])).toBeLessThan(0.01);
      if (/TensorBoard/.test(code)) expect(out).toBe('true 5');
      expect(accuracy || mse || /TensorBoard|exportOnnx/.test(code), `${where} prints nothing the test checks: ${out}`).toBeTruthy();
    });
  }, 300_000);

  it("runs the README's JavaScript blocks as written (as a world of one where they use rg.distributed)", () => {
    runBlocks('README.md', 2, (_code, out, where) => expect(out.length, `${where} printed nothing`).toBeGreaterThan(0));
  }, 300_000);

  it('documents every export: TypeDoc reports nothing undocumented and writes the reference', () => {
    const out = mkdtempSync(join(tmpdir(), 'retrograd-typedoc-'));
    try {
      const r = spawnSync(process.execPath, [join(root, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--treatWarningsAsErrors', '--out', out], { cwd: root, encoding: 'utf8', timeout: 240_000 });
      const said = `${r.stdout}${r.stderr}`.split('\n').filter((l) => /warning|error/.test(l));
      expect(said.slice(0, 20), `${said.length} lines of warnings and errors`).toEqual([]);
      expect(r.status).toBe(0);
      expect(existsSync(join(out, 'index.html'))).toBe(true);
      const exported = readFileSync(join(out, 'index.html'), 'utf8');
      for (const name of ['Sequential', 'exportOnnx', 'DataLoader', 'Tensor']) expect(exported).toContain(name);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 300_000);

  it('ships the config schema that `retrograd train --schema` prints', () => {
    const printed = execFileSync(process.execPath, [join(root, 'dist', 'cli.js'), 'train', '--schema'], { encoding: 'utf8' });
    expect(JSON.parse(readFileSync(join(root, 'docs', 'train-config.schema.json'), 'utf8'))).toEqual(JSON.parse(printed));
    expect(relative(root, join(root, 'docs', 'train-config.schema.json'))).toSatisfy(ships);
  });
});
