// Load test of the example server: starts examples/server.mjs on a free port and, while it trains, runs a bounded
// local load — `clients` concurrent clients of `requests` requests each, every third one GET /predict of 1–4 digits,
// the others GET /health. Prints the requests, errors and p50/p99 latency per endpoint, and the batches the
// serving model's dynamic batching formed. Exit code 1 on any failed request or if the server dies.
//   node bench/serve-load.mjs [--clients 16] [--requests 150]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { clients: { type: 'string', default: '16' }, requests: { type: 'string', default: '150' } } });
const clients = Number(values.clients), requests = Number(values.requests);
for (const [name, v] of [['clients', clients], ['requests', requests]])
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`serve-load: --${name} must be a positive integer, got '${values[name]}'`);

// Enough epochs to outlast the load: the server is stopped once the load is done.
const server = spawn(process.execPath, [join(import.meta.dirname, '..', 'examples', 'server.mjs'), '--port', '0', '--epochs', '1000'], {
  stdio: ['ignore', 'pipe', 'pipe'],
});
let log = '';
server.stdout.setEncoding('utf8').on('data', (s) => (log += s));
server.stderr.setEncoding('utf8').on('data', (s) => (log += s));
let exited = null;
const exit = once(server, 'exit').then(([code, signal]) => (exited = { code, signal }));

function fail(message) {
  console.error(`serve-load: ${message}\n--- server output ---\n${log.trim()}`);
  server.kill();
  process.exit(1);
}

// The address the server prints when it listens (MNIST loads first: allow it a while).
let address;
const waitLimit = setTimeout(() => fail('the server did not listen within 120 s'), 120_000);
exit.then(() => address ?? fail(`the server exited before it listened (${JSON.stringify(exited)})`));
address = await new Promise((resolve) => server.stdout.on('data', () => {
  const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(log);
  if (m) resolve(m[1]);
}));
clearTimeout(waitLimit);

const latencies = { '/health': [], '/predict': [] };
const errors = [];
let digits = 0;
async function client(c) {
  for (let k = 0; k < requests && exited === null; k++) {
    const predict = (c + k) % 3 === 0;
    const n = 1 + ((c * 7 + k) % 4);
    const path = predict ? `/predict?i=${(c * requests + k) % 2000}&n=${n}` : '/health';
    const route = predict ? '/predict' : '/health';
    const t = performance.now();
    try {
      const r = await fetch(`${address}${path}`, { signal: AbortSignal.timeout(60_000) });
      const body = await r.text();
      if (!r.ok) throw new Error(`HTTP ${r.status}: ${body}`);
      latencies[route].push(performance.now() - t);
      if (predict) digits += n;
    } catch (e) {
      errors.push(`${path}: ${e.message}`);
    }
  }
}

const started = performance.now();
await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
const seconds = (performance.now() - started) / 1000;
let status;
try {
  status = await (await fetch(`${address}/status`)).json();
} catch (e) {
  errors.push(`/status: ${e.message}`);
}
const crashed = exited !== null;
server.kill();
await exit;

const q = (list, p) => (list.length ? list[Math.min(list.length - 1, Math.floor(p * list.length))].toFixed(1) : '-');
console.log(`serve-load: ${clients} clients × ${requests} requests in ${seconds.toFixed(1)} s against examples/server.mjs, training at epoch ${status?.epoch ?? '?'}`);
for (const [route, list] of Object.entries(latencies)) {
  list.sort((a, b) => a - b);
  const failed = errors.filter((e) => e.startsWith(route)).length;
  console.log(`${route.padEnd(9)} ${String(list.length + failed).padStart(6)} requests   ${String(failed).padStart(3)} errors   p50 ${q(list, 0.5).padStart(7)} ms   p99 ${q(list, 0.99).padStart(7)} ms`);
}
if (status?.batching) {
  const { batches, requests: calls, rows } = status.batching;
  console.log(`batches formed: ${batches} for ${calls} predict calls (${rows} rows; ${digits} digits answered): ${(calls / Math.max(1, batches)).toFixed(2)} calls per batch`);
}
for (const e of errors.slice(0, 10)) console.log(`  error: ${e}`);
if (crashed) fail(`the server died during the load (${JSON.stringify(exited)})`);
console.log(errors.length ? `verdict: ${errors.length} failed requests` : 'verdict: no errors');
process.exitCode = errors.length ? 1 : 0;
