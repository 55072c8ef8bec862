// The metadata index: one LevelDB per online drive, all holding the same ordered key space.
// Invariant 4: losing the drive that holds an index, or an index itself, loses nothing — every
// batch goes to every online replica, is acknowledged once a write quorum of replicas has it,
// and a replica that missed batches is rebuilt from the freshest one at start.
// Writes are group-committed per replica: each replica applies batches strictly in order, and
// takes everything queued while its previous write was syncing as ONE record in its log
// (value-log.ts: on disk before anything else), then one unsynced LevelDB write; a restart
// replays the log from the replica's last checkpoint. The replicas progress independently, so
// a batch is acknowledged as soon as a write quorum has it (the slowest replica's sync is not
// waited for), and reads go to the most advanced replica, which holds every acknowledged batch.
// Inline bodies (namespace `i`) stay in the log records: LevelDB holds a pointer, and get()
// returns the bytes, checked, from whichever replica has them intact (repairing a bad copy).
import { promises as fsp } from 'node:fs';
import { Level } from 'level';
import { Drive } from './drive';
import { StorageError } from './errors';
import { NS_INLINE } from './records';
import { ValueLog, LogOp, LogPosition } from './value-log';

type DB = Level<Buffer, Buffer>;
export type IndexOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

const SEQ_KEY = Buffer.from([0]);
/** Present once every `i` value of the replica is a value-log pointer (replicas older than the log are moved at open). */
const VLOG_KEY = Buffer.from([0, 0x76]);
/** Value-log position up to which this replica's LevelDB is known to be on disk: replay starts there. */
const CHECKPOINT_KEY = Buffer.from([0, 0x63]);
/** A key range no entry falls in: compacting it makes LevelDB write its memtable out (and sync it), nothing else. */
const FLUSH_RANGE = [Buffer.from([0, 0xff, 0xff]), Buffer.from([0, 0xff, 0xff, 0xff])] as const;
const INLINE_RANGE = { gte: Buffer.from([NS_INLINE]), lt: Buffer.from([NS_INLINE + 1]) };
/** Values moved per step of a value-log compaction, between two group commits. */
const COMPACT_STEP = 64;
const ENC = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;
/** Bound on ops in one group commit, so one flush cannot grow without limit under load. */
const MAX_BATCH_OPS = 20000;

interface Replica {
  drive: Drive; db: DB; vlog: ValueLog; queue: Pending[]; busy: boolean; applied: bigint; dead: boolean;
  /** Value-log compaction: live values still to move out of the segments being compacted. */
  moves: { key: Buffer; pointer: Buffer }[];
  planning: boolean;
  /** First value-log segment a restart replays: segments before it may be compacted away. */
  replayFrom: number;
  checkpointing: boolean;
  /**
   * After a crash: the count of the log's live bytes from the index's pointers, running beside
   * serving (countLive); nothing is compacted until it is done. Undefined once counted.
   */
  counting?: Promise<void>;
}
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
/** One index replica's log (value-log.ts): segments on disk, their bytes, the bytes still referenced. */
export interface LogUsage { drive: string; segments: number; bytes: number; live: number }

export interface Index {
  readonly online: number;
  /** Each live replica's log (`kiln admin status`); in a worker process, asked of the owner. */
  logUsage(): Promise<LogUsage[]>;
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
  private closing = false;
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

  static async open(drives: Drive[], writeQuorum: number, sync: boolean, valueLogSegmentBytes?: number): Promise<MetaIndex> {
    const opened: { drive: Drive; db: DB; vlog: ValueLog; seq: bigint; uncounted?: IndexIterator }[] = [];
    let locked: Drive | undefined;
    // The replicas open side by side.
    await Promise.all(drives.map(async (drive) => {
      if (!drive.online) return;
      try {
        // Bigger memtable and block cache than LevelDB's defaults (4 MiB / 8 MiB): inline values
        // and group-committed batches otherwise trigger constant small compactions. No Snappy:
        // inline bodies are mostly incompressible (model and dataset bytes), and trying to
        // compress every block at each flush and compaction cost 4 KiB PUTs ~15 % of their rate.
        const db = new Level<Buffer, Buffer>(drive.indexDir, { ...ENC, writeBufferSize: 16 * 1024 * 1024, cacheSize: 32 * 1024 * 1024, maxFileSize: 8 * 1024 * 1024, compression: false });
        await db.open();
        const vlog = await ValueLog.open(drive.vlogDir, sync, valueLogSegmentBytes).catch(async (e) => { await db.close(); throw e; });
        const saved = await vlog.takeSavedLive();
        // LevelDB is written without syncing (the log is this replica's write-ahead log): what a
        // crash took from it is applied again from the log, from its last checkpoint on. No
        // checkpoint: the replica predates the log, or its LevelDB was lost (then it is rebuilt).
        const from = await db.get(CHECKPOINT_KEY);
        if (from) await vlog.replay(decodePosition(from), (ops) => writeBatch(db, ops, false));
        const s = await db.get(SEQ_KEY);
        const seq = s ? s.readBigUInt64BE(0) : 0n;
        // After a clean close, the live counts it saved (the log and the index exactly as it left
        // them). After a crash they are counted from every inline pointer (~1 s per replica per
        // 300,000) beside serving, from a snapshot taken now, before any write (countLive). A
        // replica written before the log has its bodies moved into one here; one whose log is
        // gone while it names inline bodies counts as empty, so the freshest replica rebuilds it.
        const logged = (await db.get(VLOG_KEY)) !== undefined;
        const counted = saved !== undefined && saved.batches === seq && logged && vlog.adoptLive(saved.segments);
        const hadLog = vlog.segmentCount > 0;
        await vlog.start();
        let uncounted: IndexIterator | undefined;
        let intact = true;
        if (!logged) {
          await moveIntoLog(db, vlog, sync);
        } else if (!hadLog) {
          intact = !(await namesInlineBodies(db));
        } else if (!counted) {
          uncounted = db.iterator({ ...INLINE_RANGE, ...ENC }) as unknown as IndexIterator;
          vlog.counting = true;
        }
        opened.push({ drive, db, vlog, seq: intact ? seq : 0n, uncounted });
      } catch (e) {
        // A held LevelDB lock means another process owns these drives: running beside it would
        // corrupt both, so refuse outright instead of degrading.
        const cause = (e as { cause?: Error }).cause?.message ?? (e as Error).message;
        if (/\block\b/i.test(cause) && /unavailable|held|busy/i.test(cause)) locked = drive;
        else drive.fail(e);
      }
    }));
    if (locked) {
      for (const r of opened) { await r.db.close(); await r.vlog.close(); }
      throw new StorageError('InvalidArgument', `the index on ${locked.root} is locked: is another Kiln already running on these drives?`);
    }
    // In drive order, as before the opens ran side by side (the freshest replica wins ties by it).
    opened.sort((a, b) => a.drive.slot - b.drive.slot);
    const readQuorum = drives.length - writeQuorum + 1;
    if (opened.length < Math.min(readQuorum, drives.length)) {
      for (const r of opened) { await r.db.close(); await r.vlog.close(); }
      throw new StorageError('InsufficientReadQuorum', `only ${opened.length} of ${drives.length} index replicas could be opened`);
    }
    // The freshest replica (highest batch sequence) holds every acknowledged batch, because any
    // write quorum and any read quorum of replicas overlap.
    opened.sort((a, b) => (a.seq > b.seq ? -1 : a.seq < b.seq ? 1 : 0));
    const best = opened[0];
    for (const r of opened.slice(1)) {
      if (r.seq !== best.seq) {
        // Rebuilt from the freshest: its writes count what it holds.
        await r.uncounted?.close();
        r.uncounted = undefined;
        r.vlog.counting = false;
        await copyReplica(best, r, opened);
      }
    }
    const replicas: Replica[] = [];
    for (const { drive, db, vlog } of opened) {
      const replayFrom = (await checkpoint(db, vlog)).segment;
      replicas.push({ drive, db, vlog, queue: [], busy: false, applied: best.seq, dead: false, moves: [], planning: false, replayFrom, checkpointing: false });
    }
    const idx = new MetaIndex(replicas, writeQuorum, sync);
    idx.seq = best.seq;
    for (const [i, o] of opened.entries()) if (o.uncounted) replicas[i].counting = idx.countLive(replicas[i], o.uncounted);
    return idx;
  }

  /** Each online replica's value log: segments, bytes on disk, bytes still referenced. */
  valueLogUsage(): LogUsage[] {
    return this.replicas.map((r) => ({ drive: r.drive.root, ...r.vlog.usage() }));
  }

  async logUsage(): Promise<LogUsage[]> { return this.valueLogUsage(); }

  /** Whether a replica is writing or compacting its value log (tests wait for quiet). */
  get busy(): boolean { return this.replicas.some((r) => r.busy || r.planning || r.moves.length > 0 || r.counting !== undefined); }

  /** Pointers per step of countLive (tests make it small, so that writes land between steps). */
  static countPage = 1000;

  /** Resolves once every replica's log has its live bytes counted (after a crash that runs beside serving). */
  async counted(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.counting));
  }

  /**
   * Count a replica's live log bytes from a snapshot of its pointers taken at open, while writes
   * go on: a pointer in the snapshot is retained once here and released at most once by the
   * write that deletes or replaces it, before or after (the log does not clamp at zero while
   * counting), and pointers written since were counted by their write. A pointer whose bytes
   * the log lacks (a segment lost or cut) is rewritten from another replica (a repair move).
   * Compaction waits until this is done; a close before then saves no counts.
   */
  private async countLive(r: Replica, it: IndexIterator): Promise<void> {
    let done = false;
    try {
      for (let page = await it.nextv(MetaIndex.countPage); page.length > 0; page = await it.nextv(MetaIndex.countPage)) {
        if (r.dead || this.closing) return;
        for (const [key, pointer] of page) {
          r.vlog.retain(pointer);
          if (!r.vlog.has(pointer)) this.repair(r, key, pointer);
        }
      }
      done = true;
    } catch {
      // The replica is failing or closing: its next write finds out; its counts stay unsaved.
    } finally {
      await it.close().catch(() => undefined);
      if (done) {
        r.vlog.counting = false;
        r.counting = undefined;
        if (!r.busy && !r.dead && !this.closing) { r.busy = true; void this.pump(r); }
      }
    }
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
        let v = r.db.getSync(key);
        if (v !== undefined && key[0] === NS_INLINE) {
          const pointer = v;
          v = r.vlog.read(pointer);
          if (v === undefined) {
            v = this.readElsewhere(key, r);
            if (v === undefined) return undefined; // bad everywhere: the caller reports it, nothing is cached
            this.repair(r, key, pointer);
          }
        }
        if (!writing) this.cache.set(k, v ?? null);
        return v;
      } catch (e) {
        this.drop(r, e);
      }
    }
  }

  /**
   * Rewrite a body whose copy in `r`'s log is bad from a good copy elsewhere: a move like
   * compaction's (moveValues reads the good copy, appends it, repoints the key), taken by the pump.
   */
  private repair(r: Replica, key: Buffer, pointer: Buffer): void {
    r.moves.push({ key, pointer });
    if (!r.busy && !r.dead && !this.closing) { r.busy = true; void this.pump(r); }
  }

  /**
   * Check every inline body in every replica's log against its CRC (the heal sweep's part for
   * bodies that live in the logs); bad copies are rewritten from a good one by their replica's
   * pump. Yields to the event loop as it goes. Returns how many copies were bad.
   */
  async scrubValues(): Promise<number> {
    let bad = 0;
    for (const r of [...this.replicas]) {
      let n = 0;
      try {
        for await (const [key, pointer] of r.db.iterator({ ...INLINE_RANGE, ...ENC })) {
          if (r.dead || this.closing) break;
          if (!r.vlog.read(pointer)) {
            // Moved or deleted since the iterator's snapshot (its segment may be gone): not bad.
            const cur = r.db.getSync(key);
            if (cur && cur.equals(pointer)) { bad++; this.repair(r, key, pointer); }
          }
          if (++n % 256 === 0) await new Promise((res) => setImmediate(res));
        }
      } catch { /* the replica is failing or closing: its next write finds out */ }
    }
    return bad;
  }

  /** An inline value whose copy on replica `bad` is missing or corrupt, from another replica. */
  private readElsewhere(key: Buffer, bad: Replica): Buffer | undefined {
    console.error(`kiln: inline value ${key.toString('latin1', 1)} is missing or corrupt in the log on ${bad.drive.root}; read from another replica (and rewritten there)`);
    return intactCopy(key, this.replicas.filter((r) => r !== bad));
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

  /**
   * Apply a replica's queue in order, everything queued so far as one log record and one LevelDB
   * write; between groups, move a few values (compaction, repairs). The pump is the only
   * writer of its replica, so what it reads of the replica before a write still holds then.
   */
  private async pump(r: Replica): Promise<void> {
    r.busy = true;
    try {
      for (;;) {
        if (r.dead) break;
        if (r.queue.length > 0) await this.applyGroup(r);
        let more = false;
        try {
          if (!r.dead) more = await this.compactStep(r);
        } catch (e) {
          this.drop(r, e);
        }
        // Batches queued during the compaction step find the pump still busy: it takes them.
        if (!more && r.queue.length === 0) break;
      }
    } finally {
      r.busy = false;
    }
  }

  private async applyGroup(r: Replica): Promise<void> {
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
    try {
      if (!r.drive.online) throw r.drive.lastError || new Error('drive offline');
      const { ops, released, replaced } = logOps(r, group.length === 1 ? group[0].ops : group.flatMap((p) => p.ops));
      ops.push({ type: 'put', key: SEQ_KEY, value: seqBuf });
      // On disk in the log first (O_DSYNC when durable); LevelDB's own write need not be synced.
      const stored = await r.vlog.write(ops);
      await writeBatch(r.db, stored, false);
      for (const ptr of released) r.vlog.release(ptr);
      for (const i of replaced) r.vlog.release((stored[i] as { value: Buffer }).value);
      r.applied = last;
      for (const p of group) p.acks++;
      if (r.vlog.position().segment !== r.replayFrom && !r.checkpointing) this.startCheckpoint(r);
    } catch (e) {
      for (const p of group) p.fails++;
      this.drop(r, e);
    }
    this.settle(group);
  }

  /**
   * One step of value-log compaction on a replica; true while values remain to move. Segments
   * with no live value left are removed (after a synced index write, so the deletes and moves
   * that emptied them survive a crash); sparse ones are planned (their live pointers listed from
   * a snapshot, off the pump), then moved COMPACT_STEP values at a time.
   */
  private async compactStep(r: Replica): Promise<boolean> {
    if (this.closing) return false;
    if (r.moves.length > 0) {
      await this.moveValues(r, r.moves.splice(0, COMPACT_STEP));
      if (r.moves.length > 0) return true;
      // Left in `compacting` (never planned again before a restart): values bad on every replica.
      for (const id of r.planning ? [] : r.vlog.compacting) {
        if (r.vlog.live(id) > 0) console.error(`kiln: value-log segment ${id} on ${r.drive.root} keeps ${r.vlog.live(id)} bytes it could not move`);
      }
      return true; // the next step removes the emptied segments
    }
    if (r.planning || r.counting) return false;
    const { empty, sparse } = r.vlog.victims(r.replayFrom);
    const done = [...empty, ...[...r.vlog.compacting].filter((id) => r.vlog.live(id) === 0)];
    if (done.length > 0) {
      await writeBatch(r.db, [{ type: 'put', key: VLOG_KEY, value: VLOG_MARK }], true);
      for (const id of done) await r.vlog.remove(id);
    }
    if (sparse.length > 0) void this.planMoves(r, sparse);
    return false;
  }

  private async planMoves(r: Replica, segments: number[]): Promise<void> {
    r.planning = true;
    for (const id of segments) r.vlog.compacting.add(id);
    const want = new Set(segments);
    try {
      for await (const [key, pointer] of r.db.iterator({ ...INLINE_RANGE, ...ENC })) {
        const seg = r.vlog.segmentOf(pointer);
        if (seg !== undefined && want.has(seg)) r.moves.push({ key, pointer });
      }
    } catch {
      // The replica is failing or closing: its next write finds out. Nothing was moved.
      r.moves = [];
      for (const id of segments) r.vlog.compacting.delete(id);
    } finally {
      r.planning = false;
    }
    if (!r.busy && !r.dead && !this.closing) { r.busy = true; void this.pump(r); }
  }

  /** Rewrite still-live values at the log's head and point the index at the copies. */
  private async moveValues(r: Replica, moves: { key: Buffer; pointer: Buffer }[]): Promise<void> {
    const keep: { key: Buffer; pointer: Buffer }[] = [];
    const values: Buffer[] = [];
    for (const m of moves) {
      const cur = r.db.getSync(m.key);
      if (!cur || !cur.equals(m.pointer)) continue; // deleted (or moved) since the plan
      const v = r.vlog.read(m.pointer) ?? this.readElsewhere(m.key, r);
      if (!v) continue; // bad on every replica: left where it is, the segment stays
      keep.push(m);
      values.push(v);
    }
    if (values.length === 0) return;
    await writeBatch(r.db, await r.vlog.write(keep.map((m, i) => ({ type: 'put', key: m.key, value: values[i], inline: true }))), false);
    for (const m of keep) r.vlog.release(m.pointer);
  }

  /**
   * Once the log has moved to a new segment, flush LevelDB (beside the writes, which go on) and
   * record the position reached before: a restart replays from there, and the segments before
   * it may be compacted away.
   */
  private startCheckpoint(r: Replica): void {
    r.checkpointing = true;
    checkpoint(r.db, r.vlog).then((pos) => { r.replayFrom = pos.segment; }, () => undefined /* the replica's next write finds out */)
      .finally(() => { r.checkpointing = false; });
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
      while (r.busy || r.checkpointing) await new Promise((res) => setTimeout(res, 5));
      await r.db.close().catch(() => undefined);
      await r.vlog.close();
    })());
  }

  async close(): Promise<void> {
    this.closing = true;
    while (this.replicas.some((r) => r.busy || r.checkpointing || r.queue.length > 0)) await new Promise((r) => setTimeout(r, 5));
    // A count still running stops at its next page (closing); its replica saves no counts.
    await Promise.all(this.replicas.map((r) => r.counting));
    // Dropped replicas are closed too, so a reopen in this process finds their LevelDB unlocked.
    await Promise.all(this.dropped);
    await Promise.all(this.replicas.map(async (r) => {
      // Quiet now: a checkpoint at the log's end (nothing to replay at the next open) and the
      // log's live counts, which the next open takes instead of reading every inline pointer.
      let batches: bigint | undefined;
      try {
        await checkpoint(r.db, r.vlog);
        batches = r.db.getSync(SEQ_KEY)?.readBigUInt64BE(0) ?? 0n;
      } catch { /* failing: no counts saved, the next open counts */ }
      await r.db.close().catch(() => undefined);
      if (batches !== undefined && !r.vlog.counting) await r.vlog.saveLive(batches).catch(() => undefined);
      await r.vlog.close();
    }));
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

/**
 * A group's ops as given to this replica's log: inline bodies marked to stay in the log (LevelDB
 * gets pointers). `released`: pointers the ops delete, counted as garbage once the write is
 * committed. `i` keys are written once (a data dir id is never reused) and deleted once.
 */
function logOps(r: Replica, ops: IndexOp[]): { ops: LogOp[]; released: Buffer[]; replaced: number[] } {
  const out: LogOp[] = [];
  const released: Buffer[] = [];
  // `replaced`: ops whose body a later op of the group deletes or replaces (garbage once written).
  const replaced: number[] = [];
  // What this group did to an `i` key so far: the index of its put, or -1 once deleted.
  let group: Map<string, number> | undefined;
  for (const op of ops) {
    if (op.key[0] !== NS_INLINE) { out.push(op); continue; }
    group ??= new Map();
    const k = op.key.toString('latin1');
    const earlier = group.get(k);
    if (earlier !== undefined && earlier >= 0) {
      replaced.push(earlier);
    } else if (earlier === undefined && op.type === 'del') {
      const committed = r.db.getSync(op.key);
      if (committed) released.push(committed);
    }
    group.set(k, op.type === 'put' ? out.length : -1);
    out.push(op.type === 'put' ? { type: 'put', key: op.key, value: op.value, inline: true } : op);
  }
  return { ops: out, released, replaced };
}

/** Flush LevelDB to disk and record (synced) the log position reached before: replay starts there. */
async function checkpoint(db: DB, vlog: ValueLog): Promise<LogPosition> {
  const pos = vlog.position();
  await (db as unknown as { compactRange(a: Buffer, b: Buffer): Promise<void> }).compactRange(FLUSH_RANGE[0], FLUSH_RANGE[1]);
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32BE(pos.segment, 0);
  b.writeUInt32BE(pos.offset, 4);
  await writeBatch(db, [{ type: 'put', key: CHECKPOINT_KEY, value: b }], true);
  return pos;
}

function decodePosition(b: Buffer): LogPosition {
  return { segment: b.readUInt32BE(0), offset: b.readUInt32BE(4) };
}

const VLOG_MARK = Buffer.from([1]);

/** Whether a replica's index names any inline body (in a value log). */
async function namesInlineBodies(db: DB): Promise<boolean> {
  const it = db.iterator({ ...INLINE_RANGE, keys: false, limit: 1, ...ENC });
  try { return (await it.nextv(1)).length > 0; } finally { await it.close(); }
}

/** A replica written before the value log existed: its inline bodies (raw under `i`) moved into the log. */
async function moveIntoLog(db: DB, vlog: ValueLog, sync: boolean): Promise<void> {
  let raw: [Buffer, Buffer][] = [];
  const move = async (): Promise<void> => {
    await writeBatch(db, await vlog.write(raw.map(([key, value]) => ({ type: 'put', key, value, inline: true }))), false);
    raw = [];
  };
  for await (const [key, value] of db.iterator({ ...INLINE_RANGE, ...ENC })) {
    raw.push([key, value]);
    if (raw.length >= 256) await move();
  }
  if (raw.length > 0) await move();
  await writeBatch(db, [{ type: 'put', key: VLOG_KEY, value: VLOG_MARK }], sync);
}

interface OpenedReplica { drive: Drive; db: DB; vlog: ValueLog }

/** An inline body from the first of `replicas` whose copy of it is intact. */
function intactCopy(key: Buffer, replicas: OpenedReplica[]): Buffer | undefined {
  for (const r of replicas) {
    try {
      const p = r.db.getSync(key);
      const v = p && r.vlog.read(p);
      if (v) return v;
    } catch { /* that replica fails too: the next one */ }
  }
  return undefined;
}

/** Make `to` an exact copy of `from` (used for stale or replaced index replicas), value log included. */
async function copyReplica(from: OpenedReplica, to: OpenedReplica, all: OpenedReplica[]): Promise<void> {
  await to.db.clear();
  await to.vlog.reset();
  let ops: LogOp[] = [];
  const flush = async (): Promise<void> => {
    await writeBatch(to.db, await to.vlog.write(ops), false);
    ops = [];
  };
  let seq: Buffer | undefined;
  for await (const [key, value] of from.db.iterator(ENC)) {
    if (key[0] === 0) {
      // The replica's own keys: its sequence number goes last, so a copy cut short is not taken
      // for a fresh replica; its checkpoint is its own.
      if (key.equals(SEQ_KEY)) seq = value;
      continue;
    }
    if (key[0] === NS_INLINE) {
      // The freshest replica's copy, or any other replica's that is intact.
      const v = from.vlog.read(value) ?? intactCopy(key, all.filter((o) => o !== from && o !== to));
      if (!v) { console.error(`kiln: inline value ${key.toString('latin1', 1)} is corrupt on every index replica; not copied to ${to.drive.root}`); continue; }
      ops.push({ type: 'put', key, value: v, inline: true });
    } else {
      ops.push({ type: 'put', key, value });
    }
    if (ops.length >= 1000) await flush();
  }
  ops.push({ type: 'put', key: VLOG_KEY, value: VLOG_MARK });
  if (seq) ops.push({ type: 'put', key: SEQ_KEY, value: seq });
  await flush();
}

/** Remove a replica directory entirely (tests and drive replacement). */
export async function destroyReplica(drive: Drive): Promise<void> {
  await fsp.rm(drive.indexDir, { recursive: true, force: true });
  await fsp.rm(drive.vlogDir, { recursive: true, force: true });
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
