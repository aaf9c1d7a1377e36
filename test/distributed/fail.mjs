// Run under mpirun by test/distributed.test.ts: rank 1 fails after init while the others wait in a collective.
import * as rg from '../../dist/index.js';

const { rank } = await rg.distributed.init();
if (rank === 1) throw new Error('rank 1 fails on purpose');
await rg.distributed.barrier();
console.log('never reached');
