// What the optional addons' install steps share (scripts/install-cuda.mjs, install-mpi.mjs, binaries.mjs): finding a
// tool, finding Node-API's headers without downloading them, and giving up on an optional build in one line.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';

/** The first `name` on the PATH or in `extra` folders, or undefined. */
export function findTool(name, extra = []) {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...extra].filter(Boolean);
  return dirs.map((d) => join(d, name)).find((p) => existsSync(p));
}

/** The folder of node_api.h: npm's nodedir, the official tarball's layout beside the node binary, or Debian's nodejs. */
export function nodeApiIncludeDir() {
  const dirs = [process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
    join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node'].filter(Boolean);
  return { dir: dirs.find((d) => existsSync(join(d, 'node_api.h'))), tried: dirs };
}

/**
 * An optional addon that is not built: the reason kept in `<out>/not-built.txt` (the loader reports it), one line
 * on the console, and the install step ends successfully.
 */
export function notBuilt(out, what, reason, unaffected) {
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'not-built.txt'), `${reason}\n`);
  console.log(`retrograd: ${what} not built: ${reason} (${unaffected})`);
  process.exit(0);
}
