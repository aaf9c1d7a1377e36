// The GPU scripts' start: the cuda backend chosen and returned with its facts, or one line saying why there is none
// and exit code 1.
import * as rg from '../../dist/index.js';
import { backendByName } from '../../dist/backend.js';

export function cudaOrExit() {
  const info = rg.backends().find((b) => b.name === 'cuda');
  if (!info?.available) {
    console.log(`no CUDA device: ${info?.reason ?? 'no cuda backend'}`);
    process.exit(1);
  }
  rg.setBackend('cuda');
  return { info, be: backendByName('cuda') };
}
