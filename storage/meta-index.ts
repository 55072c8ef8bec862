// The metadata index: one LevelDB per online drive, all holding the same ordered key space.
// Invariant 4: losing the drive that holds an index, or an index itself, loses nothing — every
// batch goes to every online replica, is acknowledged once a write quorum of replicas has it,
// and a replica that missed batches is rebuilt from the freshest one at start.
// Writes are group-committed per replica: each replica applies batches strictly in order, and
// takes everything queued while its previous write was syncing as ONE synced LevelDB write. The
// replicas progress independently, so a batch is acknowledged as soon as a write quorum has it
// (the slowest replica's fsync is not waited for), and reads go to the most advanced replica,
// which holds every acknowledged batch.
import { promises as fsp } from 'node:fs';
import { Level } from 'level';
import { Drive } from './drive';
import { StorageError } from './errors';

type DB = Level<Buffer, Buffer>;
export type IndexOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

const SEQ_KEY = Buffer.from([0]);
const ENC = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;
/** Bound on ops in one group commit, so one flush cannot grow without limit under load. */
const MAX_BATCH_OPS = 20000;

interface Replica { drive: Drive; db: DB; queue: Pending[]; busy: boolean; applied: bigint; dead: boolean }
interface Pending {
  ops: IndexOp[];
  /** The ops' keys as the read cache names them, while the batch is in flight. */
  keys: string[];
  seq: bigint;
  /** Replicas it was queued on, and how many applied it or failed. */
  targets: number;
  acks: number;
  fails: number;
  done: boolean;
  resolve: () => void;
  reject: (e: Error) => void;
}

export interface IterateOptions {
  gt?: Buffer; gte?: Buffer; lt?: Buffer; lte?: Buffer; reverse?: boolean; limit?: number; highWaterMarkBytes?: number;
  /** Values may come as strings (JSON records): no Buffer per value. An index may still give Buffers. */
  valuesAsText?: boolean;
}

/** A forward or reverse cursor over the index (list.ts drives it page by page). */
export interface IndexIterator {
  nextv(n: number): Promise<[Buffer, Buffer][]>;
  seek(target: Buffer): void;
  close(): Promise<void>;
}

/**
 * What the object store needs of an index: MetaIndex in the process that owns the LevelDB
 * replicas, IndexClient (index-client.ts) in an HTTP worker process that reaches it over a socket.
 */
export interface Index {
  readonly online: number;
  get(key: Buffer): Promise<Buffer | undefined>;
  iterator(opts: IterateOptions): IndexIterator;
  entries(opts: IterateOptions): AsyncGenerator<[Buffer, Buffer]>;
  batch(ops: IndexOp[]): Promise<void>;
  close(): Promise<void>;
}

/** Every entry of an iterator, fetched a page at a time; the iterator is closed at the end. */
export async function* entriesOf(it: IndexIterator): AsyncGenerator<[Buffer, Buffer]> {
  try {
    for (;;) {
      const page = await it.nextv(256);
      if (page.length === 0) return;
      for (const kv of page) yield kv;
    }
  } finally {
    await it.close();
  }
}

export class MetaIndex implements Index {
  private seq = 0n;
  private dropped: Promise<void>[] = [];
  /** Point reads of hot keys (records, inline bytes) answered from memory; see ReadCache. */
  private readonly cache = new ReadCache(CACHE_BYTES);

  /**
   * Called with a batch's keys once it has reached a write quorum (or failed to), before the
   * batch is acknowledged (or refused), which waits for it. The index owner drops the keys from the
   * HTTP workers' record caches here (index-owner.ts).
   */
  beforeSettle?: (keys: string[]) => Promise<void> | undefined;

  private constructor(private replicas: Replica[], private readonly writeQuorum: number, private readonly sync: boolean) {}

  /** Batches queued so far: unchanged across a read means no write began during it. */
  get batches(): bigint { return this.seq; }

  /** Whether a batch touching this key is in flight on some replica (what it reads may change). */
  writing(key: Buffer): boolean { return this.cache.writing(key.toString('latin1')); }

  static async open(drives: Drive[], writeQuorum: number, sync: boolean): Promise<MetaIndex> {
    const opened: { drive: Drive; db: DB; seq: bigint }[] = [];
    for (const drive of drives) {
      if (!drive.online) continue;
      try {
        // Bigger memtable and block cache than LevelDB's defaults (4 MiB / 8 MiB): inline values
        // and group-committed batches otherwise trigger constant small compactions. No Snappy:
        // inline bodies are mostly incompressible (model and dataset bytes), and trying to
        // compress every block at each flush and compaction cost 4 KiB PUTs ~15 % of their rate.
        const db = new Level<Buffer, Buffer>(drive.indexDir, { ...ENC, writeBufferSize: 16 * 1024 * 1024, cacheSize: 32 * 1024 * 1024, maxFileSize: 8 * 1024 * 1024, compression: false });
        await db.open();
        const s = await db.get(SEQ_KEY);
        opened.push({ drive, db, seq: s ? s.readBigUInt64BE(0) : 0n });
      } catch (e) {
        // A held LevelDB lock means another process owns these drives: running beside it would
        // corrupt both, so refuse outright instead of degrading.
        const cause = (e as { cause?: Error }).cause?.message ?? (e as Error).message;
        if (/\block\b/i.test(cause) && /unavailable|held|busy/i.test(cause)) {
          for (const r of opened) await r.db.close();
          throw new StorageError('InvalidArgument', `the index on ${drive.root} is locked: is another Kiln already running on these drives?`);
        }
        drive.fail(e);
      }
    }
    const readQuorum = drives.length - writeQuorum + 1;
    if (opened.length < Math.min(readQuorum, drives.length)) {
      for (const r of opened) await r.db.close();
      throw new StorageError('InsufficientReadQuorum', `only ${opened.length} of ${drives.length} index replicas could be opened`);
    }
    // The freshest replica (highest batch sequence) holds every acknowledged batch, because any
    // write quorum and any read quorum of replicas overlap.
    opened.sort((a, b) => (a.seq > b.seq ? -1 : a.seq < b.seq ? 1 : 0));
    const best = opened[0];
    for (const r of opened.slice(1)) {
      if (r.seq !== best.seq) await copyReplica(best.db, r.db);
    }
    const idx = new MetaIndex(opened.map(({ drive, db }) => ({ drive, db, queue: [], busy: false, applied: best.seq, dead: false })), writeQuorum, sync);
    idx.seq = best.seq;
    return idx;
  }

  /** Replicas on drives that are still online. */
  get online(): number { return this.replicas.length; }

  // Point reads are synchronous: LevelDB answers them from its memtable and block cache (or the
  // page cache) in microseconds, while the asynchronous get costs a thread-pool round trip (two
  // thread wake-ups), which was the largest cost of a 4 KiB GET. An index that is not cached at
  // all blocks the loop for one disk read per lookup instead.
  async get(key: Buffer): Promise<Buffer | undefined> {
    const k = key.toString('latin1');
    const writing = this.cache.writing(k);
    if (!writing) {
      const hit = this.cache.get(k);
      if (hit !== undefined) return hit ?? undefined;
    }
    // drop() takes a failed replica out of `replicas`: the next most advanced one answers.
    for (;;) {
      const r = this.primary;
      try {
        const v = r.db.getSync(key);
        if (!writing) this.cache.set(k, v ?? null);
        return v;
      } catch (e) {
        this.drop(r, e);
      }
    }
  }

  async getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]> {
    return this.primary.db.getMany(keys);
  }

  iterator(opts: IterateOptions): IndexIterator {
    // LevelDB's default read-ahead (16 KiB) ends a nextv(1000) after ~30 records: one thread-pool
    // round trip per 30 keys made a listing page cost ~14 ms. 1 MiB fits a page of records.
    const { valuesAsText, ...range } = opts;
    return this.primary.db.iterator({ highWaterMarkBytes: 1024 * 1024, ...range, ...ENC, ...(valuesAsText ? { valueEncoding: 'utf8' } : {}) }) as unknown as IndexIterator;
  }

  entries(opts: IterateOptions): AsyncGenerator<[Buffer, Buffer]> { return entriesOf(this.iterator(opts)); }

  /** The replica reads use: the most advanced one, which has every acknowledged batch. */
  private get primary(): Replica {
    let best: Replica | undefined;
    for (const r of this.replicas) if (!best || r.applied > best.applied) best = r;
    if (!best) throw new StorageError('InsufficientReadQuorum', 'no index replica online');
    return best;
  }

  /** Commit ops atomically on a write quorum of replicas (group-committed with concurrent callers). */
  batch(ops: IndexOp[]): Promise<void> {
    return new Promise((resolve, reject) => {
      // A replica on a drive that went offline or faulty (e.g. a failed shard write) is not
      // trusted and must not count towards the quorum. Below quorum, write nothing, so a
      // rejected batch never becomes visible on the remaining replicas.
      for (const r of this.replicas.filter((x) => !x.drive.online)) this.drop(r, r.drive.lastError || 'drive offline');
      if (this.replicas.length < this.writeQuorum) {
        reject(new StorageError('InsufficientWriteQuorum', `${this.replicas.length} index replicas online, quorum is ${this.writeQuorum}`));
        return;
      }
      const keys = this.cache.startWrite(ops);
      const p: Pending = { ops, keys, seq: ++this.seq, targets: this.replicas.length, acks: 0, fails: 0, done: false, resolve, reject };
      for (const r of this.replicas) {
        r.queue.push(p);
        // The first commit after a quiet spell waits for the end of this loop turn, so the
        // commits that complete in the same turn share its write (one LevelDB batch per replica).
        if (!r.busy) { r.busy = true; setImmediate(() => void this.pump(r)); }
      }
    });
  }

  /** Apply a replica's queue in order, everything queued so far in one synced write. */
  private async pump(r: Replica): Promise<void> {
    r.busy = true;
    try {
      while (r.queue.length > 0 && !r.dead) {
        const group: Pending[] = [];
        let n = 0;
        while (r.queue.length > 0 && (group.length === 0 || n + r.queue[0].ops.length <= MAX_BATCH_OPS)) {
          const p = r.queue.shift()!;
          group.push(p);
          n += p.ops.length;
        }
        const last = group[group.length - 1].seq;
        const seqBuf = Buffer.alloc(8);
        seqBuf.writeBigUInt64BE(last);
        const ops = group.length === 1 ? [...group[0].ops] : group.flatMap((p) => p.ops);
        ops.push({ type: 'put', key: SEQ_KEY, value: seqBuf });
        try {
          if (!r.drive.online) throw r.drive.lastError || new Error('drive offline');
          await writeBatch(r.db, ops, this.sync);
          r.applied = last;
          for (const p of group) p.acks++;
        } catch (e) {
          for (const p of group) p.fails++;
          this.drop(r, e);
        }
        this.settle(group);
      }
    } finally {
      r.busy = false;
    }
  }

  /** Acknowledge what reached a write quorum; fail what can no longer reach it. */
  private settle(group: Pending[]): void {
    for (const p of group) {
      if (p.acks + p.fails === p.targets) this.cache.endWrite(p.keys);
      if (p.done) continue;
      const ok = p.acks >= this.writeQuorum;
      if (!ok && p.targets - p.fails >= this.writeQuorum) continue;
      p.done = true;
      const refusal = ok ? undefined : new StorageError('InsufficientWriteQuorum', `index batch reached ${p.acks} replicas, quorum is ${this.writeQuorum}`);
      const answer = refusal ? () => p.reject(refusal) : () => p.resolve();
      // A refused batch may be on some replicas all the same: its keys are dropped from caches too.
      const waiting = this.beforeSettle?.(p.keys);
      if (waiting) waiting.then(answer, answer);
      else answer();
    }
  }

  private drop(r: Replica, err: unknown): void {
    if (r.dead) return;
    r.dead = true;
    r.drive.fail(err);
    // Another replica answers reads from now on; what was read from this one is not kept.
    this.cache.clear();
    this.replicas = this.replicas.filter((x) => x !== r);
    // What it had not applied yet counts as failed on it.
    const lost = r.queue.splice(0);
    for (const p of lost) p.fails++;
    this.settle(lost);
    // Close only once its in-flight write (if any) has returned.
    this.dropped.push((async () => {
      while (r.busy) await new Promise((res) => setTimeout(res, 5));
      await r.db.close().catch(() => undefined);
    })());
  }

  async close(): Promise<void> {
    while (this.replicas.some((r) => r.busy || r.queue.length > 0)) await new Promise((r) => setTimeout(r, 5));
    // Dropped replicas are closed too, so a reopen in this process finds their LevelDB unlocked.
    await Promise.all(this.dropped);
    await Promise.all(this.replicas.map((r) => r.db.close().catch(() => undefined)));
    this.replicas = [];
  }
}

/** Bytes of index values kept in memory by each MetaIndex (keys of at most 64 KiB values). */
const CACHE_BYTES = 64 * 1024 * 1024;
const CACHE_MAX_VALUE = 64 * 1024;
const CACHE_ENTRY_OVERHEAD = 200; // a Map entry, its key string and a Buffer object, roughly

/**
 * Recently read index values, so that a hot object's GET costs no LevelDB read (two synchronous
 * reads, their copies and the record's decoding were a third of a 4 KiB GET's CPU). null: the
 * key is known absent. Bounded in bytes; the oldest entries go first.
 * Invariant: a key is served from here only while no write of it is in flight on any replica,
 * and then its entry is what every live replica holds. A write's keys are dropped when it is
 * queued and read straight from LevelDB until every replica has applied or failed it, as
 * before there was a cache (a record read before a batch and the inline bytes read after it,
 * from different sources, would not match).
 */
class ReadCache {
  private readonly map = new Map<string, Buffer | null>();
  private readonly inFlight = new Map<string, number>();
  private bytes = 0;
  constructor(private readonly limit: number) {}

  writing(k: string): boolean { return this.inFlight.size > 0 && this.inFlight.has(k); }

  /** A batch of these ops is queued; returns their keys for endWrite. */
  startWrite(ops: IndexOp[]): string[] {
    const keys = ops.map((op) => op.key.toString('latin1'));
    for (const k of keys) {
      this.inFlight.set(k, (this.inFlight.get(k) ?? 0) + 1);
      this.delete(k);
    }
    return keys;
  }

  endWrite(keys: string[]): void {
    for (const k of keys) {
      const n = (this.inFlight.get(k) ?? 1) - 1;
      if (n > 0) this.inFlight.set(k, n);
      else this.inFlight.delete(k);
    }
  }

  get(k: string): Buffer | null | undefined { return this.map.get(k); }

  set(k: string, v: Buffer | null): void {
    if (v && v.length > CACHE_MAX_VALUE) return;
    this.delete(k);
    this.map.set(k, v);
    this.bytes += k.length + (v ? v.length : 0) + CACHE_ENTRY_OVERHEAD;
    while (this.bytes > this.limit) {
      const oldest = this.map.keys().next().value as string;
      this.delete(oldest);
    }
  }

  delete(k: string): void {
    const v = this.map.get(k);
    if (v === undefined) return;
    this.map.delete(k);
    this.bytes -= k.length + (v ? v.length : 0) + CACHE_ENTRY_OVERHEAD;
  }

  clear(): void { this.map.clear(); this.bytes = 0; }
}

/** Make `to` an exact copy of `from` (used for stale or replaced index replicas). */
async function copyReplica(from: DB, to: DB): Promise<void> {
  await to.clear();
  let ops: IndexOp[] = [];
  for await (const [key, value] of from.iterator(ENC)) {
    ops.push({ type: 'put', key: key as Buffer, value: value as Buffer });
    if (ops.length >= 1000) { await to.batch(ops, ENC); ops = []; }
  }
  await to.batch(ops, { sync: true, ...ENC });
}

/** Remove a replica directory entirely (tests and drive replacement). */
export async function destroyReplica(drive: Drive): Promise<void> {
  await fsp.rm(drive.indexDir, { recursive: true, force: true });
}

type Db = Level<Buffer, Buffer>;

/**
 * One LevelDB batch. abstract-level's public batch() clones every op and resolves its encodings
 * on the event loop (18.7 % of a 4 KiB PUT profile, for four replicas); our ops are already
 * plain {type, key: Buffer, value: Buffer}, exactly what classic-level's binding reads, so an
 * open database gets them through its implementation hook `_batch` directly.
 */
function writeBatch(db: Db, ops: IndexOp[], sync: boolean): Promise<void> {
  const direct = (db as unknown as { _batch?: (o: IndexOp[], opts: { sync: boolean }) => Promise<void> })._batch;
  if (db.status === 'open' && typeof direct === 'function') return direct.call(db, ops, { sync });
  return db.batch(ops, { sync, ...ENC });
}
