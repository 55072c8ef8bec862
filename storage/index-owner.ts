// The index owner: with `kiln server --workers N`, one process (the cluster primary) opens the
// LevelDB replicas and answers the HTTP worker processes over a Unix-domain socket. LevelDB
// takes a process-wide lock on each replica, and the commit step (key lock, read old record,
// write new one) needs one view of the metadata: both live here. Workers do everything per
// request and per byte themselves: HTTP, auth, erasure coding, shard reads and writes, MD5.
//
// What crosses processes, and the invariant each keeps:
// - index reads and group-committed batches: unchanged (metadata last; ack at write quorum);
// - a PUT's commit runs here (ObjectStore.commitObject under this process's key lock);
// - other key locks: granted here, FIFO per key; a worker that dies releases its locks;
// - freeing replaced data (invariant 1, a read during an overwrite returns the old or the new
//   object whole): a data dir freed at time T is removed only once no worker has a read in
//   flight that started before T (each worker reports the start of its oldest read);
// - bucket records cached in workers: a change is acknowledged once every worker dropped its copy;
// - object records (and inline bytes) cached in workers: the owner knows which worker may hold
//   which key (it handed the value out, marked cacheable only when no write of the key was in
//   flight), and a batch is acknowledged only after every worker holding one of its keys has
//   dropped it: a read that starts after a write was acknowledged never sees what it replaced;
// - heal work found by a worker's read or write is queued here, where the healer runs;
// - only the primary's workers are served: a connection must present its token first.
import * as net from 'node:net';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { ObjectStore } from './object-store';
import { MetaIndex, IndexIterator, IndexOp, IterateOptions } from './meta-index';
import { HealRecord, ObjectRecord, NS_INLINE, decodeJson, key } from './records';
import { Frame, FrameReader, FrameWriter, Op, json, parseJson, socketPath } from './index-wire';
import { isStorageError } from './errors';

interface Conn {
  socket: net.Socket;
  out: FrameWriter;
  closed: boolean;
  iterators: Map<number, { it: IndexIterator; chain: Promise<unknown> }>;
  /** Lock token (the Lock request's id) → release. */
  locks: Map<number, () => void>;
  /** Object keys (latin1) whose values this worker may hold in its record cache → the id of the GetRecord that handed the value out. */
  cached: Map<string, number>;
  /** The worker's process id, from its Hello. */
  pid?: number;
  /** The worker closed with nothing half-done (clean-mark.ts) before going away. */
  cleanBye?: boolean;
}

const CACHEABLE = Buffer.from([1]);
const NOT_CACHEABLE = Buffer.from([0]);

export interface OwnerHooks {
  /** Metrics of this process (prom-client JSON), merged with every worker's for /metrics. */
  metrics?: () => Promise<unknown>;
  /** Aggregate JSON metrics of all processes into the text format. */
  renderMetrics?: (all: unknown[]) => Promise<string>;
}

export class IndexOwner {
  /** What a worker must present first (IndexClient.connect). */
  readonly token = randomBytes(32);
  private readonly server: net.Server;
  private readonly conns = new Set<Conn>();
  private nextQuery = 1;
  private readonly queries = new Map<number, { conn: Conn; resolve: (f: Frame | undefined) => void }>();
  private frees: { t: bigint; dirs: string[] }[] = [];
  /** Which workers may hold each object key in their record cache (the reverse of Conn.cached). */
  private readonly holders = new Map<string, Set<Conn>>();
  private readonly meta?: MetaIndex;
  /**
   * How long a worker may take to drop cached keys. A write waits for it; a worker that has not
   * answered by then (its event loop stuck) is killed, so it can never serve what it held.
   */
  dropTimeoutMs = 10_000;
  private sweeping = false;
  /** Some worker went away without a clean close: its writes may have left orphan data dirs. */
  workersUnclean = false;

  private lastOnline: number;
  private readonly stateTimer: NodeJS.Timeout;

  constructor(private readonly store: ObjectStore, private readonly hooks: OwnerHooks = {}) {
    this.server = net.createServer((s) => this.accept(s));
    // Workers answer /health/ready from the replica count: tell them when it changes.
    this.lastOnline = store.index.online;
    this.stateTimer = setInterval(() => {
      if (store.index.online === this.lastOnline) return;
      this.lastOnline = store.index.online;
      this.broadcast(Op.State, [json({ online: this.lastOnline })]);
    }, 1000);
    this.stateTimer.unref();
    if (store.index instanceof MetaIndex) {
      this.meta = store.index;
      this.meta.beforeSettle = (keys) => this.dropCached(keys);
    }
    store.setPeers({ free: (dirs) => this.free(dirs), bucketChanged: (name) => this.askAll(Op.Invalidate, [Buffer.from(name, 'utf8')]).then(() => undefined) });
  }

  listen(name: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(socketPath(name), () => { this.server.off('error', reject); resolve(); });
    });
  }

  /** Stop accepting; existing connections end when their workers exit. */
  async close(): Promise<void> {
    clearInterval(this.stateTimer);
    for (const c of this.conns) c.socket.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
    // Frees still waiting are safe to do now: no worker is left to read.
    for (const f of this.frees) for (const d of f.dirs) this.store.removeSoon(d);
    this.frees = [];
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    const conn: Conn = { socket, out: new FrameWriter(socket), closed: false, iterators: new Map(), locks: new Map(), cached: new Map() };
    // An abstract socket has no file permissions and is listed in /proc/net/unix: any local
    // process could connect. Only one that presents the token the primary handed its workers
    // (in their environment, readable by the same user only) is served.
    let admitted = false;
    const hello = setTimeout(() => socket.destroy(), 10_000);
    const reader = new FrameReader((f) => {
      if (admitted) { this.handle(conn, f); return; }
      const t = f.fields[0];
      if (f.op !== Op.Hello || !t || t.length !== this.token.length || !timingSafeEqual(t, this.token)) { socket.destroy(); return; }
      admitted = true;
      clearTimeout(hello);
      conn.pid = f.fields[1]?.readUInt32LE(0);
      this.conns.add(conn);
      conn.out.send(Op.State, 0, [json({ online: this.store.index.online })]);
    });
    socket.on('data', (chunk: Buffer) => {
      try { reader.push(chunk); } catch { socket.destroy(); }
    });
    const gone = () => {
      clearTimeout(hello);
      if (conn.closed) return;
      conn.closed = true;
      // A worker that went without saying it was done (killed, crashed) may have left orphans.
      if (admitted && !conn.cleanBye) this.workersUnclean = true;
      this.conns.delete(conn);
      for (const release of conn.locks.values()) release();
      conn.locks.clear();
      for (const { it } of conn.iterators.values()) void it.close().catch(() => undefined);
      conn.iterators.clear();
      for (const [id, q] of this.queries) if (q.conn === conn) { this.queries.delete(id); q.resolve(undefined); }
      for (const k of conn.cached.keys()) this.release(conn, k);
      conn.cached.clear();
    };
    socket.on('close', gone);
    socket.on('error', gone);
  }

  private reply(conn: Conn, id: number, p: Promise<(Buffer | undefined)[]>): void {
    p.then((fields) => { if (id && !conn.closed) conn.out.send(Op.Ok, id, fields); },
      (e: Error) => {
        if (!id || conn.closed) return;
        const code = isStorageError(e) ? e.code : 'InternalError';
        conn.out.send(Op.Err, id, [json({ code, message: e.message })]);
      });
  }

  private handle(conn: Conn, f: Frame): void {
    const idx = this.store.index;
    const [a, b] = f.fields;
    switch (f.op) {
      case Op.Get:
        this.reply(conn, f.id, idx.get(a!).then((v) => [v]));
        return;
      case Op.GetRecord:
        this.reply(conn, f.id, this.getRecord(conn, a!, f.id));
        return;
      case Op.Forget:
        // [key, id of the GetRecord whose value the worker evicted]...: a key fetched again
        // since (a later id) stays held, or the next write would not reach that newer copy.
        for (let i = 0; i + 1 < f.fields.length; i += 2) {
          const k = f.fields[i]!.toString('latin1');
          if (conn.cached.get(k) !== f.fields[i + 1]!.readUInt32LE(0)) continue;
          conn.cached.delete(k);
          this.release(conn, k);
        }
        return;
      case Op.Commit: {
        const { rec, cond, del } = parseJson<{ rec: ObjectRecord; cond: { ifMatch?: string; ifNoneMatch?: string }; del: string[] }>(a);
        this.reply(conn, f.id, this.store.commitObject(rec, cond, decodeOps(f.fields.slice(1)), del)
          .then(() => [json({ versionId: rec.versionId, vseq: rec.vseq, versioned: rec.versioned })]));
        return;
      }
      case Op.Batch:
        this.reply(conn, f.id, idx.batch(decodeOps(f.fields)).then(() => []));
        return;
      case Op.IterOpen: {
        const opts = decodeRange(f.fields);
        this.reply(conn, f.id, (async () => {
          conn.iterators.set(f.id, { it: idx.iterator(opts), chain: Promise.resolve() });
          return [];
        })());
        return;
      }
      case Op.IterNext:
      case Op.IterSeek:
      case Op.IterClose: {
        const itId = a!.readUInt32LE(0);
        const entry = conn.iterators.get(itId);
        if (!entry) { this.reply(conn, f.id, Promise.reject(new Error(`no iterator ${itId}`))); return; }
        // Operations on one iterator run in the order they were sent.
        const run = entry.chain.then(async (): Promise<(Buffer | undefined)[]> => {
          if (f.op === Op.IterSeek) { entry.it.seek(b!); return []; }
          if (f.op === Op.IterClose) { conn.iterators.delete(itId); await entry.it.close(); return []; }
          const page = await entry.it.nextv(b!.readUInt32LE(0));
          const out: Buffer[] = [];
          for (const [k, v] of page) out.push(k, v);
          return out;
        });
        entry.chain = run.catch(() => undefined);
        this.reply(conn, f.id, run);
        return;
      }
      case Op.Lock:
        this.lock(conn, f.id, a!.toString('utf8'));
        return;
      case Op.Unlock: {
        const token = a!.readUInt32LE(0);
        conn.locks.get(token)?.();
        conn.locks.delete(token);
        return;
      }
      case Op.Heal:
        this.store.healer.enqueue(parseJson<HealRecord>(a));
        return;
      case Op.Free:
        this.free(parseJson<string[]>(a));
        return;
      case Op.Call:
        this.reply(conn, f.id, this.call(conn, a!.toString('utf8'), b).then((r) => [json(r ?? null)]));
        return;
      case Op.EpochAnswer:
      case Op.MetricsAnswer:
      case Op.Ack: {
        const q = this.queries.get(f.id);
        if (q) { this.queries.delete(f.id); q.resolve(f); }
        return;
      }
      default:
        conn.socket.destroy();
    }
  }

  /**
   * [cacheable, record, inline key, inline bytes]: an object record and, for a small object
   * stored inline, its bytes (a 4 KiB GET is one round trip; the worker keeps the bytes for the
   * read that follows). Cacheable when no batch began during the read and none of this key was
   * in flight: then every live replica holds what was read, and the worker is noted as a holder
   * before the answer leaves, so the next write of the key waits for it to drop the value.
   */
  private async getRecord(conn: Conn, k: Buffer, id: number): Promise<(Buffer | undefined)[]> {
    const m = this.meta;
    const before = m && !m.writing(k) ? m.batches : undefined;
    const out = await this.readRecord(k);
    const cacheable = before !== undefined && m!.batches === before && !conn.closed && id !== 0;
    if (cacheable) this.hold(conn, k.toString('latin1'), id);
    return [cacheable ? CACHEABLE : NOT_CACHEABLE, ...out];
  }

  private async readRecord(k: Buffer): Promise<(Buffer | undefined)[]> {
    const v = await this.store.index.get(k);
    if (!v || !v.includes('"inline":true')) return [v];
    const rec = decodeJson<ObjectRecord>(v);
    const only = rec.parts.length === 1 && rec.parts[0].inline ? rec.parts[0] : undefined;
    if (!only) return [v];
    const ik = key(NS_INLINE, only.dataDir);
    return [v, ik, await this.store.index.get(ik)];
  }

  private hold(conn: Conn, k: string, id: number): void {
    conn.cached.set(k, id);
    let s = this.holders.get(k);
    if (!s) this.holders.set(k, s = new Set());
    s.add(conn);
  }

  private release(conn: Conn, k: string): void {
    const s = this.holders.get(k);
    if (!s) return;
    s.delete(conn);
    if (s.size === 0) this.holders.delete(k);
  }

  /** MetaIndex.beforeSettle: every worker holding one of these keys drops it (undefined: none does). */
  private dropCached(keys: string[]): Promise<void> | undefined {
    let per: Map<Conn, Buffer[]> | undefined;
    for (const k of keys) {
      const s = this.holders.get(k);
      if (!s) continue;
      this.holders.delete(k);
      for (const c of s) {
        c.cached.delete(k);
        per ??= new Map();
        const list = per.get(c);
        if (list) list.push(Buffer.from(k, 'latin1'));
        else per.set(c, [Buffer.from(k, 'latin1')]);
      }
    }
    if (!per) return undefined;
    return Promise.all([...per].map(([c, ks]) => this.askOrKill(c, Op.DropKeys, ks))).then(() => undefined);
  }

  /** ask(), but a worker that does not answer within dropTimeoutMs is killed and its connection closed. */
  private askOrKill(conn: Conn, op: Op, fields: Buffer[]): Promise<Frame | undefined> {
    const timer = setTimeout(() => {
      // SIGKILL first: once its socket closes, a worker with a stuck loop might still answer one
      // more HTTP request from its cache before it sees the close. (In-process clients, as in
      // tests, only lose their connection.)
      if (conn.pid && conn.pid !== process.pid) { try { process.kill(conn.pid, 'SIGKILL'); } catch { /* gone already */ } }
      conn.socket.destroy();
    }, this.dropTimeoutMs);
    return this.ask(conn, op, fields).finally(() => clearTimeout(timer));
  }

  private lock(conn: Conn, token: number, key: string): void {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    conn.locks.set(token, release);
    void this.store.locks.run(key, async () => {
      // A worker that went away while waiting never holds the lock.
      if (conn.closed || !conn.locks.has(token)) return;
      conn.out.send(Op.Ok, token, []);
      await held;
    });
  }

  private async call(from: Conn, name: string, arg: Buffer | undefined): Promise<unknown> {
    const s = this.store;
    switch (name) {
      case 'bucketChanged': {
        // Answered once every other worker dropped its copy: a client that saw its bucket
        // change acknowledged finds it on whichever worker serves its next request.
        const bucket = parseJson<string>(arg);
        s.forgetBucket(bucket);
        await this.askAll(Op.Invalidate, [Buffer.from(bucket, 'utf8')], from);
        return null;
      }
      case 'healStatus': return s.heal.status();
      case 'healSweep': return s.healer.sweep();
      case 'logUsage': return s.index.logUsage();
      case 'cleanBye': from.cleanBye = true; return null;
      case 'metrics': {
        const mine = this.hooks.metrics ? [await this.hooks.metrics()] : [];
        const theirs = await this.askAll(Op.MetricsQuery);
        const all = [...mine, ...theirs.map((f) => parseJson<unknown>(f.fields[0]))];
        return this.hooks.renderMetrics ? this.hooks.renderMetrics(all) : '';
      }
      default: throw new Error(`unknown call ${name}`);
    }
  }

  private broadcast(op: Op, fields: Buffer[], except?: Conn): void {
    for (const c of this.conns) if (c !== except) c.out.send(op, 0, fields);
  }

  /** Ask every worker (but `except`); resolves with the answers of those still connected. */
  private askAll(op: Op, fields: Buffer[] = [], except?: Conn): Promise<Frame[]> {
    const to = [...this.conns].filter((c) => c !== except);
    return Promise.all(to.map((conn) => this.ask(conn, op, fields))).then((fs) => fs.filter((f): f is Frame => f !== undefined));
  }

  /** Ask one worker; undefined if it goes away first (its caches and reads went with it). */
  private ask(conn: Conn, op: Op, fields: Buffer[]): Promise<Frame | undefined> {
    if (conn.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      if (this.nextQuery >= 0xfffffff0) this.nextQuery = 1;
      const id = this.nextQuery++;
      this.queries.set(id, { conn, resolve });
      conn.out.send(op, id, fields);
    });
  }

  /** Free data dirs once no read that could still see them is in flight in any process. */
  free(dirs: string[]): void {
    if (dirs.length === 0) return;
    this.frees.push({ t: process.hrtime.bigint(), dirs });
    if (!this.sweeping) void this.sweepFrees();
  }

  private async sweepFrees(): Promise<void> {
    this.sweeping = true;
    try {
      while (this.frees.length > 0) {
        // process.hrtime is CLOCK_MONOTONIC: one clock for every process on the machine.
        const answers = await this.askAll(Op.EpochQuery);
        let oldest: bigint | undefined;
        for (const f of answers) {
          const v = f.fields[0];
          if (!v) continue;
          const t = BigInt(v.toString('ascii'));
          if (oldest === undefined || t < oldest) oldest = t;
        }
        const keep: typeof this.frees = [];
        for (const f of this.frees) {
          if (oldest !== undefined && oldest <= f.t) keep.push(f);
          else for (const d of f.dirs) this.store.removeSoon(d);
        }
        this.frees = keep;
        if (keep.length > 0) await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      this.sweeping = false;
    }
  }
}

// ---- codecs shared with index-client.ts ----

export function encodeOps(ops: IndexOp[]): Buffer[] {
  const out: Buffer[] = [];
  for (const o of ops) {
    out.push(o.type === 'put' ? PUT : DEL, o.key);
    if (o.type === 'put') out.push(o.value);
  }
  return out;
}

const PUT = Buffer.from('p');
const DEL = Buffer.from('d');

function decodeOps(fields: (Buffer | undefined)[]): IndexOp[] {
  const ops: IndexOp[] = [];
  for (let i = 0; i < fields.length;) {
    const t = fields[i++]!;
    const key = fields[i++]!;
    if (t[0] === PUT[0]) ops.push({ type: 'put', key, value: fields[i++]! });
    else ops.push({ type: 'del', key });
  }
  return ops;
}

const RANGE_KEYS = ['gt', 'gte', 'lt', 'lte'] as const;

export function encodeRange(o: IterateOptions): (Buffer | undefined)[] {
  return [json({ reverse: o.reverse, limit: o.limit }), ...RANGE_KEYS.map((k) => o[k])];
}

function decodeRange(fields: (Buffer | undefined)[]): IterateOptions {
  const flags = parseJson<{ reverse?: boolean; limit?: number }>(fields[0]);
  const o: IterateOptions = {};
  if (flags.reverse) o.reverse = true;
  if (flags.limit !== undefined && flags.limit !== null) o.limit = flags.limit;
  RANGE_KEYS.forEach((k, i) => { const v = fields[i + 1]; if (v) o[k] = Buffer.from(v); });
  return o;
}

