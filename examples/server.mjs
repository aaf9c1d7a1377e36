// A Node HTTP server that trains a model in the background and keeps answering: GET /health replies at once
// while fit runs (its kernels run on retrograd's native thread, not on the event loop), GET /predict?i=N
// classifies test digit N with predictAsync, GET /status reports the training progress.
//   node examples/server.mjs [--port 8080]
//   node examples/server.mjs --check     (starts on a free port, polls /health during training, prints the latencies)
import http from 'node:http';
import * as rg from 'retrograd';

const args = process.argv.slice(2);
const check = args.includes('--check');
const port = check ? 0 : Number(args[args.indexOf('--port') + 1] || 8080);

const { xTrain, yTrain, xTest, yTest } = rg.mnistSplit();
const x = rg.tensor(xTrain, [yTrain.length, 784]), y = rg.tensor(yTrain, [yTrain.length]);
rg.manualSeed(1);
const model = new rg.Sequential([new rg.Linear(784, 1024), new rg.ReLU(), new rg.Linear(1024, 1024), new rg.ReLU(), new rg.Linear(1024, 10)]);
model.compile({ optimizer: new rg.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 }), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
// A second copy serves predictions while the first trains (a model runs one call at a time).
const server_model = new rg.Sequential([new rg.Linear(784, 1024), new rg.ReLU(), new rg.Linear(1024, 1024), new rg.ReLU(), new rg.Linear(1024, 10)]);
let status = { epoch: 0, loss: null, accuracy: null, done: false };

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/health') return res.end('ok');
  if (url.pathname === '/status') return res.end(JSON.stringify(status));
  if (url.pathname === '/predict') {
    const i = Math.max(0, Math.min(yTest.length - 1, Number(url.searchParams.get('i') ?? 0)));
    const logits = await (await server_model.predictAsync(rg.tensor(xTest.subarray(i * 784, (i + 1) * 784), [1, 784]))).data();
    return res.end(JSON.stringify({ index: i, predicted: logits.indexOf(Math.max(...logits)), label: yTest[i] }));
  }
  res.statusCode = 404;
  res.end('not found');
});

server.listen(port, '127.0.0.1', async () => {
  const address = `http://127.0.0.1:${server.address().port}`;
  console.log(`listening on ${address} — training in the background`);
  const latencies = [];
  let polling = check;
  const poll = async () => {
    while (polling) {
      const t = performance.now();
      await (await fetch(`${address}/health`)).text();
      latencies.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const poller = poll();
  await model.fit(x, y, {
    epochs: check ? 1 : 5, batchSize: 256, verbose: 0,
    callbacks: [{ onEpochEnd: (e, logs) => {
      status = { epoch: e + 1, loss: logs.loss, accuracy: logs.accuracy, done: false };
      server_model.loadStateDict(model.stateDict());
      console.log(`epoch ${e + 1}: loss ${logs.loss.toFixed(4)}, accuracy ${(100 * logs.accuracy).toFixed(2)}%`);
    } }],
  });
  status.done = true;
  polling = false;
  await poller;
  if (check) {
    latencies.sort((a, b) => a - b);
    const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(1);
    console.log(`health checks during training: ${latencies.length}, median ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${latencies.at(-1).toFixed(1)} ms`);
    server.close();
  }
});
