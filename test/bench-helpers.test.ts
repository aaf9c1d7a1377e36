// The benchmark's reporting helpers: why a peer gave no result (the error itself, not the runtime's banner), and
// where results go (never inside node_modules when the bench runs from an installed package).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { peerFailure, resultsDir } from '../bench/workloads.mjs';

describe('bench reporting', () => {
  it('names a missing peer by its missing package or its error line', () => {
    const node = "node:internal/modules/esm/resolve:873\n  throw new ERR_MODULE_NOT_FOUND(packageName);\n        ^\n\nError [ERR_MODULE_NOT_FOUND]: Cannot find package '@tensorflow/tfjs-core' imported from /x/tfjs.mjs\n    at packageResolve (node:internal)\n\nNode.js v20.20.2";
    expect(peerFailure(node, 1)).toBe('@tensorflow/tfjs-core is not installed');
    expect(peerFailure("Traceback (most recent call last):\n  File \"t.py\", line 3, in <module>\nModuleNotFoundError: No module named 'torch'", 1)).toBe('torch is not installed');
    expect(peerFailure('Traceback (most recent call last):\n  File "t.py", line 9, in step\nRuntimeError: mat1 and mat2 shapes cannot be multiplied', 1)).toBe('RuntimeError: mat1 and mat2 shapes cannot be multiplied');
    expect(peerFailure('', null)).toBe('killed (time limit)');
    expect(peerFailure('', 3)).toBe('exit 3');
  });

  it('writes results to bench/results/ in the repository, to ./retrograd-bench/ from an installed package', () => {
    expect(resultsDir('/src/retrograd/bench')).toBe('/src/retrograd/bench/results');
    expect(resultsDir('/app/node_modules/retrograd/bench')).toBe(join(process.cwd(), 'retrograd-bench'));
  });
});
