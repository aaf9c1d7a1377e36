// A live training dashboard, served by the training process itself: `fit(…, { dashboard: 8080 })` (or the Dashboard
// callback, or `retrograd train config.json --dashboard 8080`) starts an HTTP server on 127.0.0.1 whose page shows the
// loss per batch and per epoch, the metrics, the learning rate, gradient norms per parameter (fit's diagnostics) and
// the throughput, redrawn every second while fit runs. The charts are the report's (lib/report.ts), rendered on the
// server; the page fetches them (GET /panels) and the raw numbers are at GET /state. The server handles a request in
// microseconds and the kernels run off the event loop, so watching does not slow training down; it does not keep the
// process alive (unref), and stops when training ends unless `keepOpen`.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkOptions, describe } from '../errors.js';
import type { Module } from '../nn/module.js';
import { escape, historyPanels, lastEpochRows, REPORT_STYLE } from '../report.js';
import type { Callback, History, Logs } from './types.js';

/** Options of the {@link Dashboard}. */
export interface DashboardOptions {
  /** The port (default 0: any free one; `dashboard.url` says which). */
  port?: number;
  /** The address to listen on (default '127.0.0.1': this machine only). */
  host?: string;
  /** Keep serving after training ends (default false); `close()` stops it. */
  keepOpen?: boolean;
  /** The page's title (default 'retrograd training'). */
  title?: string;
  /** Say the address on stdout when the server starts (default true). */
  announce?: boolean;
}

/** What the dashboard knows of the run: {@link Dashboard.snapshot}, and GET /state as JSON. */
export interface DashboardState {
  /** 'waiting' before training, 'training', then 'done'. */
  state: string;
  /** Epochs finished. */
  epochs: number;
  /** Batches finished. */
  batches: number;
  /** The epochs' logs, with `lr` and `samples_per_second` added. */
  history: History;
  /** The batches' losses (thinned past 4,000 points). */
  batchLoss: number[];
  /** Seconds since training began. */
  seconds: number;
}

/** The most per-batch losses kept: beyond, every other one is dropped (the curve keeps its shape). */
const MAX_BATCH_POINTS = 4000;

/** The live dashboard as a fit callback (see the file's header); `await dashboard.start()` serves before fit. */
export class Dashboard implements Callback {
  /** The port asked for (0: any free one; `url` has the one taken). */
  readonly port: number;
  /** The address the server listens on. */
  readonly host: string;
  /** Whether the server keeps serving after training ends. */
  readonly keepOpen: boolean;
  /** The page's title. */
  readonly title: string;
  private readonly announce: boolean;
  private server?: Server;
  private model?: Module;
  /** The epochs' logs so far, as a History. */
  readonly history: History = { epoch: [], history: {} };
  /** The batches' losses so far (thinned past 4,000 points). */
  batchLoss: number[] = [];
  private batchStride = 1;
  private batchesSeen = 0;
  private samples = 0;
  private epochStart = 0;
  private state: 'waiting' | 'training' | 'done' = 'waiting';
  private startedAt = 0;

  /** A port number, or the {@link DashboardOptions}; the server starts with training (or `start()`). */
  constructor(options: DashboardOptions | number = {}) {
    const o = typeof options === 'number' ? { port: options } : options;
    if (o === null || typeof o !== 'object') throw new TypeError(`Dashboard: options must be a port number or an object, got ${describe(options)}`);
    checkOptions('Dashboard', o, ['port', 'host', 'keepOpen', 'title', 'announce']);
    const port = o.port ?? 0;
    if (!Number.isSafeInteger(port) || port < 0 || port > 65535) throw new RangeError(`Dashboard: port must be an integer in 0…65535, got ${describe(port)}`);
    this.port = port;
    this.host = o.host ?? '127.0.0.1';
    if (typeof this.host !== 'string') throw new TypeError(`Dashboard: host must be a string, got ${describe(this.host)}`);
    this.keepOpen = o.keepOpen ?? false;
    this.title = o.title ?? 'retrograd training';
    this.announce = o.announce ?? true;
  }

  /** The page's address once the server listens. */
  get url(): string | undefined {
    const a = this.server?.address() as AddressInfo | null | undefined;
    return a ? `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/` : undefined;
  }

  /** Starts the server (once); resolves to its address. A port in use rejects with the system's error, naming it. */
  async start(): Promise<string> {
    if (this.server) return this.url!;
    const server = createServer((req, res) => this.serve(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new Error(`Dashboard: cannot listen on ${this.host}:${this.port}: ${(e as Error).message}`)));
      server.listen(this.port, this.host, () => resolve());
    });
    server.unref();
    this.server = server;
    if (this.announce) console.log(`dashboard: ${this.url}`);
    return this.url!;
  }

  /** Keeps the process alive while the server runs (the command line's `--dashboard` after training). */
  keepAlive(): void {
    this.server?.ref();
  }

  /** Stops the server. */
  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((resolve) => { s.closeAllConnections?.(); s.close(() => resolve()); });
  }

  setModel(model: Module): void {
    this.model = model;
  }

  async onTrainBegin(): Promise<void> {
    await this.start();
    this.state = 'training';
    this.startedAt = Date.now();
  }

  onEpochBegin(): void {
    this.samples = 0;
    this.epochStart = performance.now();
  }

  onBatchEnd(_batch: number, logs: Logs): void {
    if (typeof logs.size === 'number') this.samples += logs.size;
    if (this.batchesSeen++ % this.batchStride !== 0 || typeof logs.loss !== 'number') return;
    this.batchLoss.push(logs.loss);
    if (this.batchLoss.length > MAX_BATCH_POINTS) {
      this.batchLoss = this.batchLoss.filter((_, i) => i % 2 === 0);
      this.batchStride *= 2;
    }
  }

  onEpochEnd(epoch: number, logs: Logs): void {
    const record: Record<string, number> = {};
    for (const [k, v] of Object.entries(logs)) if (typeof v === 'number') record[k] = v;
    const lr = (this.model?.compiled?.optimizer as { lr?: unknown } | undefined)?.lr;
    if (record.lr === undefined && typeof lr === 'number') record.lr = lr;
    const seconds = (performance.now() - this.epochStart) / 1000;
    if (this.samples > 0 && seconds > 0) record.samples_per_second = this.samples / seconds;
    this.history.epoch.push(epoch);
    for (const [k, v] of Object.entries(record)) {
      const series = (this.history.history[k] ??= []);
      while (series.length < this.history.epoch.length - 1) series.push(NaN); // a key that appeared late
      series.push(v);
    }
  }

  async onTrainEnd(): Promise<void> {
    this.state = 'done';
    if (!this.keepOpen) await this.close();
  }

  /** The numbers behind the page (GET /state). */
  snapshot(): DashboardState {
    return { state: this.state, epochs: this.history.epoch.length, batches: this.batchesSeen, history: this.history, batchLoss: this.batchLoss, seconds: this.startedAt ? (Date.now() - this.startedAt) / 1000 : 0 };
  }

  private panels(): string {
    const s = this.snapshot();
    const status = `<p id="status" data-state="${s.state}" data-epochs="${s.epochs}" data-batches="${s.batches}">${s.state === 'training' ? 'training' : s.state}: ` +
      `${s.epochs} epoch${s.epochs === 1 ? '' : 's'}, ${s.batches} batches, ${s.seconds.toFixed(1)} s</p>`;
    const charts = s.batches || s.epochs ? historyPanels(this.history, { batchLoss: this.batchLoss }).join('') : '<p>waiting for the first batch…</p>';
    return `${status}${charts}${s.epochs ? `<h2>Last epoch</h2><table>${lastEpochRows(this.history)}</table>` : ''}`;
  }

  /** The page: a shell whose script fetches the panels now and every second until training is done. */
  private page(): string {
    return `<!doctype html><html><head><meta charset="utf-8"><title>${escape(this.title)}</title><style>${REPORT_STYLE}</style></head>` +
      `<body data-refreshes="0"><h1>${escape(this.title)}</h1><div id="panels"><p>loading…</p></div><script>` +
      `let n=0;async function refresh(){try{const r=await fetch('panels',{cache:'no-store'});` +
      `if(r.ok){document.getElementById('panels').innerHTML=await r.text();document.body.dataset.refreshes=String(++n);}}catch(e){}` +
      `const st=document.getElementById('status');if(!st||st.dataset.state!=='done')setTimeout(refresh,1000);}refresh();</script></body></html>`;
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    const send = (type: string, body: string, status = 200) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET') return send('text/plain', 'only GET\n', 405);
    if (path === '/') return send('text/html; charset=utf-8', this.page());
    if (path === '/panels') return send('text/html; charset=utf-8', this.panels());
    if (path === '/state') return send('application/json', JSON.stringify(this.snapshot(), (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)));
    send('text/plain', 'not found\n', 404);
  }
}
