// An HTTP worker's side of the index owner's socket (index-owner.ts): the Index the worker's
// ObjectStore reads and commits through, the key locks, heal and free requests, and the
// owner's pushes (bucket invalidations, replica count, "how old is your oldest read?").
import * as net from 'node:net';
import { entriesOf, Index, IndexIterator, IndexOp, IterateOptions, LogUsage } from './meta-index';
import { HealRecord, NS_OBJECT, ObjectRecord } from './records';
import type { HealQueue, HealStats } from './heal';
import { Frame, FrameReader, FrameWriter, Op, json, parseJson, socketPath, u32 } from './index-wire';
import { encodeOps, encodeRange } from './index-owner';
import { StorageError, StorageErrorCode } from './errors';

type Waiter = { resolve: (f: (Buffer | undefined)[]) => void; reject: (e: Error) => void };

/** An object record as the owner handed it out, with its inline bytes; `id`: the GetRecord that brought it. */
interface CachedRecord { v?: Buffer; ik?: Buffer; iv?: Buffer; id: number; bytes: number }

/** Bytes of object records and inline bytes a worker keeps (keys, values and ~200 B each). */
const RECORD_CACHE_BYTES = 32 * 1024 * 1024;
const RECORD_ENTRY_OVERHEAD = 200;

export interface ClientHooks {
  invalidateBucket(name: string): void;
  /** Start time (process.hrtime.bigint) of this process's oldest read in flight. */
  oldestRead(): bigint | undefined;
}

export class IndexClient implements Index {
  private nextId = 1;
  private readonly waiters = new Map<number, Waiter>();
  private readonly out: FrameWriter;
  private closed = false;
  private replicas = 0;
  hooks?: ClientHooks;
  /** prom-client JSON of this process, for the owner's /metrics aggregate (set by server/). */
  metrics?: () => Promise<unknown>;
  /** Bound on the record cache's bytes (tests make it tiny to exercise eviction). */
  recordCacheBytes = RECORD_CACHE_BYTES;
  /** Object records (or absences) served without asking the owner, now. */
  get cachedRecords(): number { return this.records.size; }
  /** Called once when the owner goes away (the worker cannot serve without it). */
  onLost?: () => void;

  private constructor(private readonly socket: net.Socket) {
    this.out = new FrameWriter(socket);
    const reader = new FrameReader((f) => this.handle(f));
    socket.on('data', (c: Buffer) => reader.push(c));
    const lost = () => {
      if (this.closed) return;
      this.closed = true;
      const err = new StorageError('InsufficientWriteQuorum', 'the index owner process is gone');
      for (const w of this.waiters.values()) w.reject(err);
      this.waiters.clear();
      this.onLost?.();
    };
    socket.on('close', lost);
    socket.on('error', lost);
  }

  static connect(name: string, token: Buffer): Promise<IndexClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(socketPath(name));
      s.setNoDelay(true);
      const c = new IndexClient(s);
      c.out.send(Op.Hello, 0, [token, u32(process.pid)]);
      // The owner's first frame is its State: the client is usable once it has arrived.
      c.ready = () => resolve(c);
      s.once('error', reject);
      s.once('close', () => reject(new Error('the index owner closed the connection (wrong token?)')));
    });
  }

  private ready?: () => void;

  get online(): number { return this.replicas; }

  /**
   * `id` is given where it names something afterwards (an iterator, a lock token, a cached
   * record). `onAnswer` runs inside the frame handler, before frames that came after the answer.
   */
  private request(op: Op, fields: (Buffer | undefined)[], id = this.id(), onAnswer?: (f: (Buffer | undefined)[]) => void): Promise<(Buffer | undefined)[]> {
    if (this.closed) return Promise.reject(new StorageError('InsufficientWriteQuorum', 'the index owner process is gone'));
    return new Promise((resolve, reject) => {
      this.waiters.set(id, { resolve: onAnswer ? (f) => { onAnswer(f); resolve(f); } : resolve, reject });
      this.out.send(op, id, fields);
    });
  }

  private id(): number {
    const id = this.nextId;
    this.nextId = this.nextId >= 0xfffffff0 ? 1 : this.nextId + 1;
    return id;
  }

  private tell(op: Op, fields: (Buffer | undefined)[]): void {
    if (!this.closed) this.out.send(op, 0, fields);
  }

  private handle(f: Frame): void {
    switch (f.op) {
      case Op.Ok:
      case Op.Err: {
        const w = this.waiters.get(f.id);
        if (!w) return;
        this.waiters.delete(f.id);
        if (f.op === Op.Ok) w.resolve(f.fields);
        else {
          const { code, message } = parseJson<{ code: string; message: string }>(f.fields[0]);
          w.reject(code === 'InternalError' ? new Error(message) : new StorageError(code as StorageErrorCode, message));
        }
        return;
      }
      case Op.State:
        this.replicas = parseJson<{ online: number }>(f.fields[0]).online;
        this.ready?.();
        this.ready = undefined;
        return;
      case Op.Invalidate:
        this.hooks?.invalidateBucket(f.fields[0]!.toString('utf8'));
        if (f.id) this.out.send(Op.Ack, f.id, []);
        return;
      case Op.DropKeys:
        // A write of these keys waits for this answer before it is acknowledged.
        for (const k of f.fields) if (k) this.dropRecord(k.toString('latin1'));
        this.out.send(Op.Ack, f.id, []);
        return;
      case Op.EpochQuery: {
        const t = this.hooks?.oldestRead();
        this.out.send(Op.EpochAnswer, f.id, [t === undefined ? undefined : Buffer.from(t.toString(), 'ascii')]);
        return;
      }
      case Op.MetricsQuery:
        void (this.metrics?.() ?? Promise.resolve(null)).then((m) => this.out.send(Op.MetricsAnswer, f.id, [json(m)]));
        return;
      default:
    }
  }

  // ---- Index ----

  async get(key: Buffer): Promise<Buffer | undefined> {
    const stashed = this.stash.get(key.toString('latin1'));
    if (stashed) { this.stash.delete(key.toString('latin1')); return stashed; }
    if (key[0] !== NS_OBJECT) return (await this.request(Op.Get, [key]))[0];
    const k = key.toString('latin1');
    const hit = this.records.get(k);
    if (hit) {
      if (hit.ik && hit.iv) this.keep(hit.ik, hit.iv);
      return hit.v;
    }
    // Fetched again: the owner must go on counting this worker as a holder of the key.
    this.forgetting.delete(k);
    // An object record comes with its inline bytes, if it has any: the GET reads them next.
    // A cacheable answer is kept inside the frame handler, before any later frame (a DropKeys
    // of this key sent after it) is looked at; an await would let that frame pass first.
    const id = this.id();
    const [, v, ik, iv] = await this.request(Op.GetRecord, [key], id, (f) => { if (f[0]?.[0] === 1) this.remember(k, f, id); });
    if (ik && iv) this.keep(ik, iv);
    return v;
  }

  /** Inline bytes that came with a record, kept until the end of this turn of the event loop. */
  private readonly stash = new Map<string, Buffer>();
  private stashClear?: NodeJS.Immediate;

  private keep(ik: Buffer, iv: Buffer): void {
    this.stash.set(ik.toString('latin1'), iv);
    if (!this.stashClear) this.stashClear = setImmediate(() => { this.stash.clear(); this.stashClear = undefined; });
  }

  /**
   * Object records the owner marked cacheable (index-owner.ts getRecord): served here until the
   * owner drops them (DropKeys, before any write of the key is acknowledged) or they are evicted,
   * oldest first, which the owner is told of (Forget) so it stops counting this worker.
   */
  private readonly records = new Map<string, CachedRecord>();
  private recordBytes = 0;
  private readonly forgetting = new Map<string, number>();
  private forgetTimer?: NodeJS.Immediate;

  private remember(k: string, f: (Buffer | undefined)[], id: number): void {
    const [, v, ik, iv] = f;
    this.dropRecord(k);
    const e: CachedRecord = { v, ik, iv, id, bytes: k.length + (v?.length ?? 0) + (ik?.length ?? 0) + (iv?.length ?? 0) + RECORD_ENTRY_OVERHEAD };
    this.records.set(k, e);
    this.recordBytes += e.bytes;
    while (this.recordBytes > this.recordCacheBytes) {
      const [oldest, o] = this.records.entries().next().value as [string, CachedRecord];
      this.dropRecord(oldest);
      this.forgetting.set(oldest, o.id);
    }
    if (this.forgetting.size > 0 && !this.forgetTimer) {
      this.forgetTimer = setImmediate(() => {
        this.forgetTimer = undefined;
        const fields: Buffer[] = [];
        for (const [key, fid] of this.forgetting) fields.push(Buffer.from(key, 'latin1'), u32(fid));
        this.forgetting.clear();
        this.tell(Op.Forget, fields);
      });
    }
  }

  private dropRecord(k: string): void {
    const e = this.records.get(k);
    if (!e) return;
    this.records.delete(k);
    this.recordBytes -= e.bytes;
  }

  async batch(ops: IndexOp[]): Promise<void> {
    if (ops.length === 0) return;
    await this.request(Op.Batch, encodeOps(ops));
  }

  iterator(opts: IterateOptions): IndexIterator {
    const id = this.id();
    const opened = this.request(Op.IterOpen, encodeRange(opts), id);
    opened.catch(() => undefined);
    const idBuf = u32(id);
    let done = false;
    return {
      nextv: async (n: number) => {
        await opened;
        const fields = await this.request(Op.IterNext, [idBuf, u32(n)]);
        const out: [Buffer, Buffer][] = [];
        for (let i = 0; i + 1 < fields.length; i += 2) out.push([fields[i]!, fields[i + 1]!]);
        return out;
      },
      // Frames on one socket arrive in order, and the owner runs one iterator's steps in order.
      seek: (target: Buffer) => this.tell(Op.IterSeek, [idBuf, target]),
      close: async () => {
        if (done) return;
        done = true;
        await opened.catch(() => undefined);
        await this.request(Op.IterClose, [idBuf]).catch(() => undefined);
      },
    };
  }

  entries(opts: IterateOptions): AsyncGenerator<[Buffer, Buffer]> { return entriesOf(this.iterator(opts)); }

  async close(): Promise<void> {
    this.closed = true;
    this.socket.end();
  }

  /** Tell the owner this process stops with nothing half-done (its drives may be marked clean). */
  async cleanBye(): Promise<void> { await this.call('cleanBye'); }

  // ---- coordination ----

  /** Key locks granted by the owner (FIFO per key, released if this process dies). */
  readonly locks = {
    run: async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
      const token = this.id();
      await this.request(Op.Lock, [Buffer.from(key, 'utf8')], token);
      try {
        return await fn();
      } finally {
        this.tell(Op.Unlock, [u32(token)]);
      }
    },
  };

  free(dirs: string[]): void { this.tell(Op.Free, [json(dirs)]); }

  /** ObjectStore.commitObject run by the owner; resolves with the version fields it assigned. */
  async commit(rec: ObjectRecord, cond: { ifMatch?: string; ifNoneMatch?: string }, ops: IndexOp[], del: string[]): Promise<Partial<ObjectRecord>> {
    return parseJson<Partial<ObjectRecord>>((await this.request(Op.Commit, [json({ rec, cond, del }), ...encodeOps(ops)]))[0]);
  }

  logUsage(): Promise<LogUsage[]> { return this.call<LogUsage[]>('logUsage'); }

  /** Resolves once every other worker has dropped its cached copy of the bucket record. */
  async bucketChanged(name: string): Promise<void> { await this.call('bucketChanged', name); }

  async call<T>(name: string, arg?: unknown): Promise<T> {
    return parseJson<T>((await this.request(Op.Call, [Buffer.from(name), json(arg ?? null)]))[0]);
  }

  /** The healer runs in the owner; a worker queues work there. */
  readonly healer: HealQueue = {
    enqueue: (rec: HealRecord) => this.tell(Op.Heal, [json(rec)]),
    sweep: () => this.call<number>('healSweep'),
    status: () => this.call<{ pending: number } & HealStats>('healStatus'),
    stop: async () => undefined,
  };
}
