// `kiln server --workers N` (N > 1): the primary process owns the index (LevelDB replicas,
// key locks, heal, lifecycle) and serves it to N HTTP worker processes over a Unix-domain
// socket (storage/index-owner.ts); the workers share the listening port (node:cluster) and do
// all per-request and per-byte work. docs/multicore.md has the design and its measurements.
import cluster, { Worker } from 'node:cluster';
import { availableParallelism, tmpdir } from 'node:os';
import { md5Pool } from '../storage/md5-pool';
import { AggregatorRegistry } from 'prom-client';
import { ObjectStore, Multipart } from '../storage';
import { IndexOwner } from '../storage/index-owner';
import { IndexClient } from '../storage/index-client';
import { socketName } from '../storage/index-wire';
import type { ServerConfig } from './config';
import { createServer, startBackground, KilnServer } from './app';
import { Sessions } from './auth/session';
import { Metrics } from './metrics';

const SOCKET_ENV = 'KILN_INDEX_SOCKET';
const TOKEN_ENV = 'KILN_INDEX_TOKEN';

export function isWorker(): boolean { return cluster.isWorker && !!process.env[SOCKET_ENV]; }

type Log = { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };

function stderrLog(level: string): Log {
  const quiet = level === 'error' || level === 'fatal';
  const line = (lvl: string) => (o: object, m: string) => {
    if (quiet && lvl !== 'error') return;
    process.stderr.write(`${JSON.stringify({ level: lvl, time: Date.now(), pid: process.pid, role: 'index-owner', msg: m, ...o })}\n`);
  };
  return { info: line('info'), warn: line('warn'), error: line('error') };
}

export interface Primary { store: ObjectStore; close(): Promise<void> }

/** Open the store, serve its index, start `config.workers` HTTP workers; resolves once all listen. */
export async function startPrimary(config: ServerConfig): Promise<Primary> {
  const log = stderrLog(config.logLevel);
  const store = await ObjectStore.open({ drives: config.drives, parity: config.parity, durable: config.durable, inlineThreshold: config.inlineThreshold, log: (m, e, level) => log[level ?? 'warn']({ ...e }, m) });
  // Workers write shard files this process never hears of (and may die mid-write): the drives
  // are marked clean at close only if every worker that ever ran said goodbye clean.
  store.cleanMarks = false;
  // Created here, before any worker exists: two workers must never mint different secrets.
  await Sessions.open(store);
  const metrics = new Metrics(store, true);
  const owner = new IndexOwner(store, {
    metrics: () => metrics.registry.getMetricsAsJSON(),
    renderMetrics: (all) => AggregatorRegistry.aggregate(all as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics(),
  });
  const name = socketName(tmpdir());
  await owner.listen(name);
  const mp = new Multipart(store, config.minPartSize);
  const stopBackground = startBackground(store, mp, config, log);

  let stopping = false;
  const started = new Map<number, number>();
  const env: Record<string, string> = { [SOCKET_ENV]: name, [TOKEN_ENV]: owner.token.toString('hex') };
  // N processes share the cores: unless the user sized the libuv pool, each worker gets a share
  // of max(16, 2 x cores) threads (at least 4: fsyncs block them), not 16 of its own.
  if (process.env.KILN_POOL_DEFAULT) env.UV_THREADPOOL_SIZE = String(Math.max(4, Math.ceil(Math.max(16, 2 * availableParallelism()) / config.workers)));
  const fork = (): void => { started.set(cluster.fork(env).id, Date.now()); };
  const listening = new Set<number>();
  const allUp = new Promise<void>((resolve, reject) => {
    cluster.on('listening', (w) => {
      listening.add(w.id);
      if (listening.size >= config.workers) resolve();
    });
    cluster.on('exit', (w, code, signal) => {
      if (stopping) return;
      if (listening.size < config.workers && !listening.has(w.id)) {
        reject(new Error(`an HTTP worker exited during start (code ${code}${signal ? `, ${signal}` : ''})`));
        return;
      }
      // Its locks were released when its socket closed; its reads are no longer in flight.
      log.error({ worker: w.process.pid, code, signal }, 'HTTP worker exited: starting another');
      const pid = w.process.pid;
      if (pid) {
        void Promise.all(store.drives.map((d) => d.sweepProcess(pid))).then((n) => {
          const left = n.reduce((a, b) => a + b, 0);
          if (left) log.warn({ worker: pid, entries: left }, 'removed the unfinished writes it left in tmp/');
        });
      }
      listening.delete(w.id);
      // One that dies young is restarted after a pause, so a crash loop does not spin.
      const young = Date.now() - (started.get(w.id) ?? 0) < 5000;
      started.delete(w.id);
      if (young) setTimeout(() => { if (!stopping) fork(); }, 1000).unref();
      else fork();
    });
  });
  for (let i = 0; i < config.workers; i++) fork();
  try {
    await allUp;
  } catch (e) {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
    stopBackground();
    await owner.close();
    await store.close();
    throw e;
  }

  return {
    store,
    async close() {
      if (stopping) return;
      stopping = true;
      // Workers finish their requests in flight first: they need the index until the end.
      const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && !w.isDead());
      await Promise.all(alive.map((w) => new Promise<void>((resolve) => {
        const kill = setTimeout(() => w.process.kill('SIGKILL'), 30_000);
        w.once('exit', () => { clearTimeout(kill); resolve(); });
        w.process.kill('SIGTERM');
      })));
      stopBackground();
      await owner.close();
      store.cleanMarks = !owner.workersUnclean;
      await store.close();
    },
  };
}

/** An HTTP worker: connect to the primary's index, then serve S3 on the shared port. */
export async function startWorker(config: ServerConfig): Promise<KilnServer> {
  md5Pool.setThreads(Math.floor(availableParallelism() / config.workers));
  const client = await IndexClient.connect(process.env[SOCKET_ENV]!, Buffer.from(process.env[TOKEN_ENV] ?? '', 'hex'));
  delete process.env[TOKEN_ENV];
  // Without the owner this process can neither read nor commit metadata: leave, the primary
  // (if it is still there) starts a fresh worker.
  client.onLost = () => process.exit(1);
  return createServer(config, { remote: client });
}
