// How the scripts under mpirun hand their results to test/distributed.test.ts: one JSON file per rank in
// $RG_RANK_OUT (mpirun forwards output in pieces of 2 KiB, which other ranks' lines can split), else a line of stdout.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function report(rank, out) {
  const text = JSON.stringify(out);
  if (process.env.RG_RANK_OUT) writeFileSync(join(process.env.RG_RANK_OUT, `${rank}.json`), text);
  else console.log(text);
}
