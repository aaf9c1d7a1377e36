// A Node HTTP server that trains a model in the background and keeps answering: GET /health replies at once
// while fit runs (its kernels run on retrograd's native thread, not on the event loop), GET /predict?i=N[&n=K]
// classifies test digits N … N+K−1 with predictAsync, GET /status reports the training progress and how the
// predictions were batched. Concurrent /predict requests share batches: the serving model's dynamic batching
// coalesces the predictAsync calls that arrive while a batch runs into one forward pass. Every failure is answered
// on its own request as JSON (400 for a bad request, 503 when the model is busy, 500 otherwise); none stops the server.
//   node examples/server.mjs [--port 8080] [--epochs 5]
//   node examples/server.mjs --check     (starts on a free port, polls /health and /predict during training, prints the latencies)
import http from 'node:http';
import { parseArgs } from 'node:util';
import * as rg from 'retrograd';

const { values } = parseArgs({ options: { port: { type: 'string', default: '8080' }, epochs: { type: 'string' }, check: { type: 'boolean', default: false } } });
const check = values.check;
const port = check ? 0 : Number(values.port);
const epochs = Number(values.epochs ?? (check ? 1 : 5));
if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`server: --port must be an integer in [0, 65535], got '${values.port}'`);
if (!Number.isInteger(epochs) || epochs < 1) throw new RangeError(`server: --epochs must be a positive integer, got '${values.epochs}'`);

const { xTrain, yTrain, xTest, yTest } = rg.mnistSplit();
const x = rg.tensor(xTrain, [yTrain.length, 784]), y = rg.tensor(yTrain, [yTrain.length]);
rg.manualSeed(1);
const mlp = () => new rg.Sequential([new rg.Linear(784, 1024), new rg.ReLU(), new rg.Linear(1024, 1024), new rg.ReLU(), new rg.Linear(1024, 10)]);
const model = mlp();
model.compile({ optimizer: new rg.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 }), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
// A second copy serves predictions while the first trains (fit and inference on one model refuse to overlap). Its
// concurrent predictAsync calls are coalesced: up to 128 rows per forward, started as soon as the model is free.
const serving = mlp();
serving.setBatching({ maxBatch: 128, maxDelayMs: 0 });
const maxDigits = 64;
let status = { epoch: 0, loss: null, accuracy: null, done: false, error: null };

/** An error answered with its own status code. */
class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function intParam(url, name, fallback, min, max) {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(v) || v < min || v > max) throw new HttpError(400, `${name} must be an integer in [${min}, ${max}], got '${raw}'`);
  return v;
}

function send(res, code, body) {
  if (res.headersSent) return res.destroy(); // the answer had begun: all that is left is to cut it short
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function handle(req, res) {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method !== 'GET') throw new HttpError(405, `${req.method} is not supported; use GET`);
  if (url.pathname === '/health') return res.end('ok');
  if (url.pathname === '/status') return send(res, 200, { ...status, batching: serving.batchingStats() });
  if (url.pathname === '/predict') {
    const i = intParam(url, 'i', 0, 0, yTest.length - 1);
    const n = intParam(url, 'n', 1, 1, Math.min(maxDigits, yTest.length - i));
    const input = rg.tensor(xTest.subarray(i * 784, (i + n) * 784), [n, 784]);
    let logits;
    try {
      // the input stays alive until its batch has run
      const out = await serving.predictAsync(input);
      logits = await out.data();
      out.dispose();
    } finally {
      input.dispose();
    }
    const predicted = Array.from({ length: n }, (_, r) => {
      const row = logits.subarray(r * 10, (r + 1) * 10);
      return row.indexOf(Math.max(...row));
    });
    if (n === 1) return send(res, 200, { index: i, predicted: predicted[0], label: yTest[i] });
    return send(res, 200, { index: i, predicted, labels: [...yTest.subarray(i, i + n)] });
  }
  throw new HttpError(404, `no route for ${url.pathname}; try /health, /status or /predict?i=N`);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((e) => {
    const code = e instanceof HttpError ? e.status : e instanceof rg.RetrogradError && e.code === 'BUSY' ? 503 : 500;
    if (code >= 500) console.error(`${req.method} ${req.url}: ${e.stack ?? e}`);
    send(res, code, { error: e.message, ...(e.code ? { code: e.code } : {}) });
  });
});
// A malformed request or a client that went away concerns that connection only.
server.on('clientError', (err, socket) => {
  if (socket.writable && !socket.writableEnded) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
  else socket.destroy();
});

server.listen(port, '127.0.0.1', async () => {
  const address = `http://127.0.0.1:${server.address().port}`;
  console.log(`listening on ${address} — training in the background`);
  const health = [], predict = [];
  let failures = 0;
  let polling = check;
  const timed = async (path, into) => {
    const t = performance.now();
    try {
      const r = await fetch(`${address}${path}`);
      await r.text();
      if (r.ok) into.push(performance.now() - t);
      else failures++;
    } catch {
      failures++;
    }
  };
  const poll = async () => {
    while (polling) {
      await timed('/health', health);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  // Bursts of concurrent predictions of 1–3 digits, which the serving model coalesces.
  const burst = async () => {
    for (let k = 0; polling; k++) {
      await Promise.all(Array.from({ length: 8 }, (_, j) => timed(`/predict?i=${(k * 8 + j) % yTest.length}&n=${1 + (j % 3)}`, predict)));
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const pollers = [poll(), burst()];
  try {
    await model.fit(x, y, {
      epochs, batchSize: 256, verbose: 0,
      callbacks: [{ onEpochEnd: (e, logs) => {
        status = { ...status, epoch: e + 1, loss: logs.loss, accuracy: logs.accuracy };
        serving.loadStateDict(model.stateDict());
        console.log(`epoch ${e + 1}: loss ${logs.loss.toFixed(4)}, accuracy ${(100 * logs.accuracy).toFixed(2)}%`);
      } }],
    });
    status.done = true;
  } catch (e) {
    // training failed; the server keeps answering, and /status says why
    status.error = e.message;
    console.error(`training stopped: ${e.message}`);
    if (check) process.exitCode = 1;
  }
  polling = false;
  await Promise.all(pollers);
  if (check) {
    const q = (list, p) => list[Math.min(list.length - 1, Math.floor(p * list.length))]?.toFixed(1);
    health.sort((a, b) => a - b);
    predict.sort((a, b) => a - b);
    const { batches, requests } = serving.batchingStats();
    console.log(`health checks during training: ${health.length}, median ${q(health, 0.5)} ms, p99 ${q(health, 0.99)} ms, max ${health.at(-1)?.toFixed(1)} ms`);
    console.log(`predictions during training: ${predict.length}, median ${q(predict, 0.5)} ms, p99 ${q(predict, 0.99)} ms, in ${batches} batches for ${requests} calls`);
    console.log(`failed requests: ${failures}`);
    if (failures) process.exitCode = 1;
    server.close();
  }
});
