// Runs an example's PyTorch twin (examples/twins/<script>, Debian's python3-torch) and compares its final figure with
// ours: the examples' --compare.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export function compareWithTwin(script, args, { pattern, ours, what, goal, goalText }) {
  const file = join(import.meta.dirname, '..', 'twins', script);
  console.log(`running the PyTorch twin: /usr/bin/python3 examples/twins/${script} ${args.join(' ')}`);
  const r = spawnSync('/usr/bin/python3', [file, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0 || r.error) {
    console.log(`the twin could not run (${r.error?.message ?? `exit status ${r.status}`}): no comparison`);
    return null;
  }
  process.stdout.write(r.stdout.split('\n').map((l) => (l ? `  [PyTorch] ${l}` : l)).join('\n'));
  const m = pattern.exec(r.stdout);
  if (!m) {
    console.log(`the twin's output has no ${what}: no comparison`);
    return null;
  }
  const theirs = Number(m[1]);
  const met = goal(ours, theirs);
  console.log(`${what}: retrograd ${ours.toFixed(3)}, PyTorch ${theirs.toFixed(3)}; goal (${goalText}): ${met ? 'met' : 'not met'}`);
  return { ours, theirs, met };
}
