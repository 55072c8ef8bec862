// The storage library's front door. Plain values and streams in and out; no HTTP.
// Write protocol (invariant 1): shards to tmp → fsync → rename into data/ on each drive →
// one index batch (metadata last) → old data dirs removed after their readers finish.
import { Readable } from 'node:stream';
import { randomBytes, randomUUID } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { loadFormat, FormattedSet } from './format';
import { Drive } from './drive';
import { ErasureSet } from './erasure-set';
import { MetaIndex, Index, IndexOp } from './meta-index';
import { Healer, HealQueue } from './heal';
import type { IndexClient } from './index-client';
import { KeyLock, ReadPins } from './locks';
import { listObjects, ListOptions, ListResult } from './list';
import { VersionClock, findVersion, versionKey, versionsOf, vseqOf, listVersions, VersionListOptions, VersionListResult } from './versioning';
import { BodyDigest, Digests, writeShards } from './shard-writer';
import { readOneBlock, readShards } from './shard-reader';
import { giveBlock } from './block-pool';
import { takeCleanMarks, writeCleanMarks } from './clean-mark';
import { StorageError, isStorageError } from './errors';
import { crcCombine, CRC32C_POLY } from './crc-combine';
import { crcBase64, crcOnce, knownCrc } from './bitrot';
import {
  BucketRecord, ObjectRecord, PartRecord, ErasureLayout, key, keyPrefix, prefixEnd, decodeJson, encodeJson, encodeRecord, dataDirsOf,
  NS_BUCKET, NS_OBJECT, NS_UPLOAD, NS_INLINE, NS_PART, NS_VERSION,
} from './records';
import { DEFAULT_BLOCK_SIZE, DEFAULT_INLINE_THRESHOLD, defaultParity, MAX_DRIVES, MAX_PARTS } from './constants';

export interface StoreOptions {
  drives: string[];
  parity?: number;
  blockSize?: number;
  inlineThreshold?: number;
  /** Size at which each index replica's value log starts a new segment (tests use small ones). */
  valueLogSegmentBytes?: number;
  /** true (default): an acknowledged write survives power loss. false: no fsync, for scratch data. */
  durable?: boolean;
  /** Storage events worth an operator's eye; `info` for routine ones (default: warn). */
  log?: (msg: string, extra?: object, level?: 'info' | 'warn') => void;
}

export interface PutOptions {
  contentType?: string;
  headers?: Record<string, string>;
  meta?: Record<string, string>;
  tags?: Record<string, string>;
  /** Checksums (algorithm → base64) the caller computed and wants stored, e.g. from a trailer. */
  checksums?: Record<string, string>;
  /** Largest body accepted (S3: 5 GiB for a single PUT). */
  maxSize?: number;
  /** Conditional write, evaluated atomically at commit: '*' = must not exist. */
  ifNoneMatch?: string;
  /** Conditional write: current ETag must equal this. */
  ifMatch?: string;
  /** Object Lock state for the new version (retention, legal hold). */
  lock?: Pick<ObjectRecord, 'retention' | 'legalHold'>;
  acl?: string;
  owner?: string;
  /** 'md5' (default) or 'random' (directory buckets: no MD5 on the write path). */
  etag?: 'md5' | 'random';
  /**
   * Runs after the whole body arrived and before anything is committed: verify Content-MD5,
   * trailing checksums, lengths. Throw to abort (nothing becomes visible); return checksums to store.
   */
  beforeCommit?: (d: Digests) => Promise<Record<string, string> | void> | Record<string, string> | void;
}

export interface GetResult {
  record: ObjectRecord;
  /** The bytes as a stream (built when first asked for). */
  stream: Readable;
  /**
   * Set for streamed answers: the same bytes for a caller that writes each chunk out and can say
   * when it is done with it (the server). Use this or `stream`, not both.
   */
  blocks?: BlockBody;
  /** Set for inline objects and one-block parts: the requested bytes, already verified (then `stream` just wraps them). */
  bytes?: Buffer;
  /**
   * Set with `bytes`: call it once they have been written out and nothing reads them any more
   * (a recycled buffer is then reused). Not calling it is always safe.
   */
  release?: () => void;
  start: number;
  end: number;
}

export type Body = AsyncIterable<Buffer> | Readable;

/** A streamed answer read chunk by chunk; chunks may sit in recycled blocks (block-pool.ts). */
export interface BlockBody {
  /** The next chunk, undefined at the end; throws when the data cannot be read (read quorum). */
  next(): Promise<Buffer | undefined>;
  /** `chunk` is written out and nothing reads it any more: its block may be reused. Never calling it is safe. */
  recycle(chunk: Buffer): void;
  /** Done, read to the end or abandoned: stops reading (after reads in flight settle), closes the shard files, unpins. */
  close(): Promise<void>;
}

/** Key locks: in-process (KeyLock), or granted by the index owner to a worker process. */
export interface Locks { run<T>(key: string, fn: () => Promise<T>): Promise<T> }

/**
 * Other processes sharing these drives (`kiln server --workers N`, index-owner.ts): where
 * replaced data goes to be freed once no process reads it, and who hears of bucket changes.
 */
export interface Peers {
  free(dirs: string[]): void;
  bucketChanged(name: string): Promise<void>;
  /** In a worker: commitObject run by the index owner; resolves with the version fields it set. */
  commit?(rec: ObjectRecord, cond: Pick<PutOptions, 'ifMatch' | 'ifNoneMatch'>, ops: IndexOp[], del: string[]): Promise<Partial<ObjectRecord>>;
}

export class ObjectStore {
  readonly pins = new ReadPins();
  private peers?: Peers;
  private readonly clock = new VersionClock();
  private closed = false;
  private removing = 0;
  private startupSweep: Promise<void> = Promise.resolve();
  /** Writes between their first shard file and their commit or clean-up (see clean-mark.ts). */
  private writes = 0;
  /** Something this run did may have left a data dir no record names: the next start sweeps. */
  private orphansPossible = false;
  /** Whether close() may mark the drives clean (with workers: only if every one said goodbye clean; cluster.ts). */
  cleanMarks = true;
  /** In a worker process: the owner's connection (for cleanBye). */
  private remote?: IndexClient;

  private constructor(readonly set: ErasureSet, readonly index: Index, readonly heal: HealQueue,
    readonly deploymentId: string, readonly inlineThreshold: number, private readonly log: (m: string, e?: object, level?: 'info' | 'warn') => void,
    readonly locks: Locks = new KeyLock()) {}

  /**
   * The store of an HTTP worker process: shard files are read and written here, directly on the
   * drives; the index, key locks, heal queue and frees go through the owner's socket.
   */
  static async connect(opts: StoreOptions, client: IndexClient): Promise<ObjectStore> {
    const durable = opts.durable ?? true;
    const fmt = await ObjectStore.format(opts, durable, true);
    const set = new ErasureSet(fmt.drives, fmt.layout.data, fmt.layout.parity, fmt.layout.blockSize, durable);
    const store = new ObjectStore(set, client, client.healer, fmt.deploymentId, opts.inlineThreshold ?? DEFAULT_INLINE_THRESHOLD, opts.log ?? (() => undefined), client.locks);
    store.remote = client;
    store.setPeers({
      free: (dirs) => client.free(dirs), bucketChanged: (name) => client.bucketChanged(name),
      commit: (rec, cond, ops, del) => client.commit(rec, cond, ops, del),
    });
    client.hooks = { invalidateBucket: (name) => store.forgetBucket(name), oldestRead: () => store.pins.oldest() };
    return store;
  }

  setPeers(p: Peers): void { this.peers = p; }

  /** Check the drive count and parity, then load (or, unless readOnly, create) the drives' format. */
  private static async format(opts: StoreOptions, durable: boolean, readOnly: boolean): Promise<FormattedSet> {
    const n = opts.drives.length;
    if (n < 1 || n > MAX_DRIVES) throw new StorageError('InvalidArgument', `1 to ${MAX_DRIVES} drives, got ${n}`);
    const parity = opts.parity ?? defaultParity(n);
    if (parity < 0 || (n > 1 && parity > n / 2) || (n === 1 && parity !== 0)) {
      throw new StorageError('InvalidArgument', `parity ${parity} invalid for ${n} drives (at most half)`);
    }
    return loadFormat(opts.drives.map((d) => path.resolve(d)), { data: n - parity, parity, blockSize: opts.blockSize ?? DEFAULT_BLOCK_SIZE }, durable, readOnly);
  }

  /** The healer itself: only in the process that owns the index (a worker queues via `heal`). */
  get healer(): Healer {
    if (!(this.heal instanceof Healer)) throw new Error('the healer runs in the index owner process');
    return this.heal;
  }

  static async open(opts: StoreOptions): Promise<ObjectStore> {
    const durable = opts.durable ?? true;
    const log = opts.log ?? (() => undefined);
    const fmt = await ObjectStore.format(opts, durable, false);
    const set = new ErasureSet(fmt.drives, fmt.layout.data, fmt.layout.parity, fmt.layout.blockSize, durable);
    if (set.onlineCount < set.readQuorum) throw new StorageError('InsufficientReadQuorum', `${set.onlineCount} drives online, ${set.readQuorum} needed`);
    // The index first: its LevelDB locks refuse a second process on these drives before
    // anything below empties the tmp/ and trash/ dirs a running server is writing in.
    const index = await MetaIndex.open(fmt.drives, set.writeQuorum, durable, opts.valueLogSegmentBytes);
    for (const d of fmt.drives) {
      if (!d.online) continue;
      await d.prepare().catch((e) => d.fail(e));
    }
    if (set.onlineCount < set.readQuorum) {
      await index.close();
      throw new StorageError('InsufficientReadQuorum', `${set.onlineCount} drives online, ${set.readQuorum} needed`);
    }
    const healer = new Healer(set, index, log);
    const store = new ObjectStore(set, index, healer, fmt.deploymentId, opts.inlineThreshold ?? DEFAULT_INLINE_THRESHOLD, log);
    await healer.load();
    const replaced = fmt.drives.filter((d) => d.online && d.needsHeal);
    if (replaced.length > 0) {
      const n = await healer.sweep();
      log('drives need heal: sweep queued', { drives: replaced.map((d) => d.root), parts: n });
    }
    if (await takeCleanMarks(fmt.drives, fmt.deploymentId, index.batches)) {
      log('orphan sweep skipped: the last run shut down clean', undefined, 'info');
    } else {
      store.startupSweep = store.collectOrphans(Date.now() - ORPHAN_GRACE_MS).then(() => undefined, (e) => {
        store.orphansPossible = true;
        log('orphan sweep failed', { error: (e as Error).message });
      });
    }
    return store;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Background work still touching the drives or the index finishes first: the heal in
    // progress, the start-up orphan sweep, removals of replaced data.
    await this.heal.stop();
    await this.startupSweep;
    while (this.removing > 0) await new Promise((r) => setTimeout(r, 5));
    const clean = this.cleanMarks && this.cleanRun();
    // A worker process vouches for its own writes to the owner, which marks the drives.
    if (clean && this.remote) await this.remote.cleanBye().catch(() => undefined);
    await this.index.close();
    if (clean && this.index instanceof MetaIndex) {
      await writeCleanMarks(this.set.drives, this.deploymentId, this.index.batches)
        .catch((e) => this.log('could not mark the drives clean: the next start sweeps for orphans', { error: (e as Error).message }));
    }
  }

  /** Resolves when the start-up orphan sweep has finished (or was skipped). */
  sweepFinished(): Promise<void> { return this.startupSweep; }

  /**
   * Nothing this run did can have left a data dir no record names: no write or removal still
   * in flight, none failed on a drive, no heal ran (a heal racing a delete can recreate a dir),
   * the start-up sweep (if any) finished with nothing deferred, every drive online.
   */
  private cleanRun(): boolean {
    // Heals run in the owner process only (a worker's queue is the owner's).
    const healed = this.heal instanceof Healer ? this.heal.stats.healed + this.heal.stats.failed : 0;
    return !this.orphansPossible && this.writes === 0 && this.pendingRemovals === 0 && healed === 0
      && this.set.drives.every((d) => d.online && !d.removeFailed);
  }

  get drives(): Drive[] { return this.set.drives; }

  private readonly buckets = new Map<string, BucketRecord>();
  private bucketGen = 0;

  // ---------- buckets ----------

  async createBucket(name: string, extra: Partial<BucketRecord> = {}): Promise<BucketRecord> {
    return this.locks.run(`b/${name}`, async () => {
      if (await this.index.get(key(NS_BUCKET, name))) throw new StorageError('BucketAlreadyExists');
      const rec: BucketRecord = { config: {}, ...extra, name, created: Date.now() };
      await this.index.batch([{ type: 'put', key: key(NS_BUCKET, name), value: encodeJson(rec) }]);
      await this.bucketChanged(name);
      return rec;
    });
  }

  /**
   * The bucket record, read on every object request: cached, frozen (callers must not mutate it;
   * updateBucket hands its callback a copy). Every write of a bucket record goes through this
   * class and drops the entry; a read that raced a write does not fill the cache (generation).
   */
  async getBucket(name: string): Promise<BucketRecord> {
    const hit = this.buckets.get(name);
    if (hit) return hit;
    const gen = this.bucketGen;
    const v = await this.index.get(key(NS_BUCKET, name));
    if (!v) throw new StorageError('NoSuchBucket');
    const rec = deepFreeze(decodeJson<BucketRecord>(v));
    if (gen === this.bucketGen) this.buckets.set(name, rec);
    return rec;
  }

  private async bucketChanged(name: string): Promise<void> {
    this.forgetBucket(name);
    await this.peers?.bucketChanged(name);
  }

  /** Drop a cached bucket record (another process changed it). */
  forgetBucket(name: string): void {
    this.bucketGen++;
    this.buckets.delete(name);
  }

  async listBuckets(): Promise<BucketRecord[]> {
    const out: BucketRecord[] = [];
    for await (const [, v] of this.index.entries({ gte: Buffer.from([NS_BUCKET]), lt: Buffer.from([NS_BUCKET + 1]) })) out.push(decodeJson(v));
    return out;
  }

  async updateBucket(name: string, fn: (b: BucketRecord) => BucketRecord | void): Promise<BucketRecord> {
    return this.locks.run(`b/${name}`, async () => {
      const b = structuredClone(await this.getBucket(name));
      const next = fn(b) ?? b;
      try {
        await this.index.batch([{ type: 'put', key: key(NS_BUCKET, name), value: encodeJson(next) }]);
      } finally {
        await this.bucketChanged(name);
      }
      return next;
    });
  }

  async deleteBucket(name: string): Promise<void> {
    return this.locks.run(`b/${name}`, async () => {
      await this.getBucket(name);
      for (const ns of [NS_OBJECT, NS_UPLOAD]) {
        const p = keyPrefix(ns, name);
        for await (const _ of this.index.entries({ gte: p, lt: prefixEnd(p), limit: 1 })) throw new StorageError('BucketNotEmpty');
      }
      try {
        await this.index.batch([{ type: 'del', key: key(NS_BUCKET, name) }]);
      } finally {
        await this.bucketChanged(name);
      }
    });
  }

  // ---------- objects ----------

  /**
   * The current version (or `versionId`). A current delete marker reads as NoSuchKey and a
   * delete marker asked for by id as MethodNotAllowed, both carrying `deleteMarker`.
   */
  async headObject(bucket: string, objectKey: string, versionId?: string): Promise<ObjectRecord> {
    const v = await this.index.get(key(NS_OBJECT, bucket, objectKey));
    const current = v ? sharedRecord(v) : undefined;
    if (!current) await this.getBucket(bucket);
    if (versionId === undefined) {
      if (!current) throw new StorageError('NoSuchKey');
      if (current.deleteMarker) throw markerError('NoSuchKey', current);
      return current;
    }
    const rec = await findVersion(this.index, current, versionId);
    if (!rec) throw new StorageError(vseqOf(versionId) === undefined && versionId !== 'null' ? 'InvalidArgument' : 'NoSuchVersion',
      vseqOf(versionId) === undefined && versionId !== 'null' ? 'Invalid version id specified' : undefined);
    if (rec.deleteMarker) throw markerError('MethodNotAllowed', rec);
    return rec;
  }

  async putObject(bucket: string, objectKey: string, body: Body, opts: PutOptions = {}): Promise<ObjectRecord> {
    return this.writing(async () => {
      await this.getBucket(bucket);
      const ec = this.set.layoutFor(bucket, objectKey);
      // The inline bytes go to their own index key, never into the JSON record.
      const { inlineBytes, ...part } = await this.writeBody(ec, body, opts, 1);
      const now = Date.now();
      const rec: ObjectRecord = {
        bucket, key: objectKey, size: part.size, etag: part.etag, mtime: now, versionId: 'null',
        contentType: opts.contentType, headers: opts.headers ?? {}, meta: opts.meta ?? {}, tags: opts.tags,
        checksums: { CRC32C: crcBase64(part.crc32c), ...(opts.checksums ?? {}), ...(part.checksums ?? {}) }, checksumType: 'FULL_OBJECT',
        ec, parts: [part], multipart: false, ...(opts.lock ?? {}), ...(opts.acl && opts.acl !== 'private' ? { acl: opts.acl } : {}), ...(opts.owner ? { owner: opts.owner } : {}),
      };
      try {
        await this.commitObject(rec, opts, part.inline ? [{ type: 'put', key: key(NS_INLINE, part.dataDir), value: inlineBytes! }] : []);
      } catch (e) {
        if (!part.inline) await this.removeData(part.dataDir);
        throw e;
      }
      return rec;
    });
  }

  /**
   * Store one body (a PUT or one multipart part). Small bodies are kept for the index
   * (inline); large ones are erasure-coded to shard files. Nothing is visible until committed.
   */
  async writeBody(ec: ErasureLayout, body: Body, opts: PutOptions, number: number): Promise<PartRecord & { inlineBytes?: Buffer }> {
    const it = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    const head: Buffer[] = [];
    let headLen = 0;
    let ended = false;
    while (headLen <= this.inlineThreshold) {
      const r = await it.next();
      if (r.done) { ended = true; break; }
      const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
      head.push(b);
      headLen += b.length;
    }
    const maxSize = opts.maxSize ?? Number.MAX_SAFE_INTEGER;
    let result: PartRecord & { inlineBytes?: Buffer };
    if (ended) {
      const bytes = head.length === 1 ? head[0] : Buffer.concat(head, headLen);
      const digest = new BodyDigest(opts.etag !== 'random');
      digest.update(bytes);
      if (bytes.length > maxSize) throw new StorageError('EntityTooLarge');
      const d = digest.finish();
      knownCrc(bytes, d.crc32c); // the index logs check the body against it
      const checksums = (await opts.beforeCommit?.(d)) ?? undefined;
      result = { number, size: d.size, etag: etagOf(d, opts), crc32c: d.crc32c, dataDir: newId(), inline: true, inlineBytes: bytes, checksums: checksums || undefined, mtime: Date.now() };
    } else {
      const w = await writeShards(this.set, ec, head, it, opts.etag !== 'random', maxSize);
      try {
        const checksums = (await opts.beforeCommit?.(w)) ?? undefined;
        result = { number, size: w.size, etag: etagOf(w, opts), crc32c: w.crc32c, dataDir: w.dataDir, checksums: checksums || undefined, mtime: Date.now() };
      } catch (e) {
        await this.removeData(w.dataDir);
        throw e;
      }
      if (w.failedSlots.length > 0) this.heal.enqueue({ dataDir: w.dataDir, size: w.size, ec, queued: Date.now() });
    }
    return result;
  }

  /**
   * Atomically make `rec` the current version; data no version refers to any more is freed
   * once its readers finish. In a versioned bucket the previous version stays readable.
   */
  async commitObject(rec: ObjectRecord, cond: Pick<PutOptions, 'ifMatch' | 'ifNoneMatch'>, extraOps: IndexOp[] = [], extraDel: string[] = []): Promise<void> {
    if (this.peers?.commit) {
      // A worker process: the owner runs this same method (one round trip, its key lock) and
      // says which version id the record got.
      Object.assign(rec, await this.peers.commit(rec, { ifMatch: cond.ifMatch, ifNoneMatch: cond.ifNoneMatch }, extraOps, extraDel));
      return;
    }
    const mode = (await this.getBucket(rec.bucket)).versioning;
    const k = key(NS_OBJECT, rec.bucket, rec.key);
    const lockKey = `${rec.bucket}\0${rec.key}`;
    const garbage = [...extraDel];
    await this.locks.run(lockKey, async () => {
      const prevBuf = await this.index.get(k);
      const prev = prevBuf ? decodeJson<ObjectRecord>(prevBuf) : undefined;
      const live = prev && !prev.deleteMarker ? prev : undefined;
      if (cond.ifNoneMatch !== undefined && live && (cond.ifNoneMatch === '*' || stripQuotes(cond.ifNoneMatch) === live.etag)) {
        throw new StorageError('PreconditionFailed');
      }
      if (cond.ifMatch !== undefined && (!live || (cond.ifMatch !== '*' && stripQuotes(cond.ifMatch) !== live.etag))) {
        throw new StorageError(live ? 'PreconditionFailed' : 'NoSuchKey');
      }
      const ops: IndexOp[] = [...extraOps];
      this.supersede(rec, prev, mode, ops, garbage);
      if (mode === 'Suspended') await this.dropNullVersion(rec, prev, ops, garbage);
      ops.push({ type: 'put', key: k, value: encodeRecord(rec) });
      await this.index.batch(ops);
    });
    this.freeLater(lockKey, garbage);
  }

  /**
   * Give `rec` its version id and queue what happens to the version it replaces: kept (as the
   * null version) in a versioned bucket, freed otherwise.
   */
  private supersede(rec: ObjectRecord, prev: ObjectRecord | undefined, mode: BucketRecord['versioning'], ops: IndexOp[], garbage: string[]): void {
    if (!mode) {
      rec.versionId = 'null';
      if (prev) this.dropVersionData(prev, ops, garbage);
      return;
    }
    rec.vseq = this.clock.next(prev?.vseq);
    rec.versionId = mode === 'Enabled' ? this.clock.newId(rec.vseq) : 'null';
    rec.versioned = true;
    ops.push({ type: 'put', key: versionKey(rec.bucket, rec.key, rec.vseq), value: encodeRecord(rec) });
    if (prev && !prev.versioned) {
      // Written before versioning was turned on: it is the null version.
      if (mode === 'Enabled') {
        prev.versioned = true;
        prev.vseq = prev.vseq ?? prev.mtime * 1000;
        ops.push({ type: 'put', key: versionKey(prev.bucket, prev.key, prev.vseq), value: encodeRecord(prev) });
      } else {
        this.dropVersionData(prev, ops, garbage);
      }
    }
  }

  /** Versioning suspended: a new null version replaces the old null version. */
  private async dropNullVersion(rec: ObjectRecord, prev: ObjectRecord | undefined, ops: IndexOp[], garbage: string[]): Promise<void> {
    if (!prev?.versioned) return;
    const old = (await versionsOf(this.index, rec.bucket, rec.key)).find((r) => r.versionId === 'null' && r.vseq !== rec.vseq);
    if (!old) return;
    ops.push({ type: 'del', key: versionKey(old.bucket, old.key, old.vseq!) });
    this.dropVersionData(old, ops, garbage);
  }

  private dropVersionData(r: ObjectRecord, ops: IndexOp[], garbage: string[]): void {
    for (const p of r.parts) {
      if (p.inline) ops.push({ type: 'del', key: key(NS_INLINE, p.dataDir) });
      else garbage.push(p.dataDir);
    }
  }

  private freeLater(lockKey: string, garbage: string[]): void {
    if (garbage.length === 0) return;
    this.pins.afterReaders(lockKey, () => {
      if (this.peers) this.peers.free(garbage);
      else for (const d of garbage) void this.removeLater(d);
    });
  }

  /** Apply a metadata-only change (tags, retention, ...) to one version under the key lock. */
  async updateObject(bucket: string, objectKey: string, fn: (r: ObjectRecord) => ObjectRecord | void, versionId?: string): Promise<ObjectRecord> {
    return this.locks.run(`${bucket}\0${objectKey}`, async () => {
      const rec = structuredClone(await this.headObject(bucket, objectKey, versionId));
      const next = fn(rec) ?? rec;
      const cur = await this.index.get(key(NS_OBJECT, bucket, objectKey));
      const isCurrent = cur !== undefined && sharedRecord(cur).versionId === next.versionId;
      const ops: IndexOp[] = [];
      if (isCurrent) ops.push({ type: 'put', key: key(NS_OBJECT, bucket, objectKey), value: encodeRecord(next) });
      if (next.versioned && next.vseq !== undefined) ops.push({ type: 'put', key: versionKey(bucket, objectKey, next.vseq), value: encodeRecord(next) });
      await this.index.batch(ops);
      return next;
    });
  }

  /**
   * Read [start, end) of an object (end exclusive; defaults to the whole object). The data
   * dirs read stay pinned until the stream finishes or is destroyed.
   */
  async getObject(bucket: string, objectKey: string,
    rangeOf?: { start: number; end: number } | ((r: ObjectRecord) => { start: number; end: number } | undefined), versionId?: string): Promise<GetResult> {
    // The record is read before its data: an overwrite committed in between (another process,
    // or a batch landing mid-request) deletes inline bytes at once and may free shard files
    // not yet pinned. The record read again names the new data; a few tries, then the error stands.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.getOnce(bucket, objectKey, rangeOf, versionId);
      } catch (e) {
        if (!(e instanceof ReplacedMidRead) || attempt >= 3) throw e instanceof ReplacedMidRead ? e.cause : e;
      }
    }
  }

  private async getOnce(bucket: string, objectKey: string,
    rangeOf?: { start: number; end: number } | ((r: ObjectRecord) => { start: number; end: number } | undefined), versionId?: string): Promise<GetResult> {
    const record = await this.headObject(bucket, objectKey, versionId);
    // The range may depend on the record (part numbers, preconditions).
    const range = typeof rangeOf === 'function' ? rangeOf(record) : rangeOf;
    const start = range?.start ?? 0;
    const end = range?.end ?? record.size;
    if (start < 0 || end > record.size || start > end) throw new StorageError('InvalidRange');
    const only = record.parts.length === 1 ? record.parts[0] : undefined;
    if (only?.inline) {
      // A small object is one index read and needs no pin (its bytes are not freed later, they
      // go with the batch that replaces them: see ReplacedMidRead).
      const bytes = (await this.readInline(only, true)).subarray(start, end);
      return new BytesResult(record, start, end, bytes);
    }
    // Shard files of a replaced version are freed once the readers pinned at its replacement are
    // done. Pinned only now, so the record must still be current: if it was replaced meanwhile,
    // its data may be gone already, and the read starts over (ReplacedMidRead is that signal).
    const lockKey = `${bucket}\0${objectKey}`;
    const release = this.pins.acquire(lockKey);
    try {
      const still = await this.headObject(bucket, objectKey, versionId);
      if (still !== record && !sameVersion(still, record)) throw new ReplacedMidRead(new StorageError('Busy', 'the object was replaced while being read'));
      // One block (objects up to 1 MiB): read whole in one task, sent as one buffer.
      const one = only && start < end ? await readOneBlock(this.set, { dataDir: only.dataDir, size: only.size, ec: record.ec }) : undefined;
      if (one) {
        release();
        return new BytesResult(record, start, end, one.subarray(start, end));
      }
    } catch (e) {
      release();
      throw e;
    }
    return new StreamResult(record, start, end, this.readRecord(record, start, end, release), release);
  }

  private async *readRecord(rec: ObjectRecord, start: number, end: number, release: () => void): AsyncGenerator<Buffer> {
    try {
      let base = 0;
      for (const p of rec.parts) {
        const pStart = Math.max(start - base, 0);
        const pEnd = Math.min(end - base, p.size);
        if (pStart < pEnd) {
          if (p.inline) yield (await this.readInline(p)).subarray(pStart, pEnd);
          else {
            yield* readShards(this.set, { dataDir: p.dataDir, size: p.size, ec: rec.ec }, pStart, pEnd, () =>
              this.heal.enqueue({ dataDir: p.dataDir, size: p.size, ec: rec.ec, queued: Date.now() }));
          }
        }
        base += p.size;
        if (base >= end) break;
      }
    } finally {
      release();
    }
  }

  /**
   * Inline bytes are replicated in every index replica; the index read them from a replica whose
   * copy matched its log's CRC (crcOnce keeps it: not computed again here, unless the bytes came
   * over a worker's socket), and that must be the part's.
   */
  private async readInline(p: PartRecord, retryable = false): Promise<Buffer> {
    const v = await this.index.get(key(NS_INLINE, p.dataDir));
    if (v && crcOnce(v) === p.crc32c) return v;
    const err = new StorageError('FileCorrupt', `inline data ${p.dataDir} missing or corrupt`);
    throw retryable && !v ? new ReplacedMidRead(err) : err;
  }

  /**
   * Delete the current version (unversioned: the object; versioned: by adding a delete marker)
   * or, with `versionId`, that version for good. Locked versions refuse (see canDelete).
   */
  async deleteObject(bucket: string, objectKey: string,
    opts: { versionId?: string; canDelete?: (r: ObjectRecord) => void; check?: (r: ObjectRecord) => void } = {}): Promise<DeleteResult> {
    const mode = (await this.getBucket(bucket)).versioning;
    const lockKey = `${bucket}\0${objectKey}`;
    const k = key(NS_OBJECT, bucket, objectKey);
    const garbage: string[] = [];
    const result = await this.locks.run(lockKey, async (): Promise<DeleteResult> => {
      const prevBuf = await this.index.get(k);
      const prev = prevBuf ? decodeJson<ObjectRecord>(prevBuf) : undefined;
      const ops: IndexOp[] = [];
      if (opts.versionId === undefined) {
        if (prev) opts.check?.(prev); // conditional delete, judged under the key lock
        if (!mode) {
          if (!prev) return {};
          opts.canDelete?.(prev);
          ops.push({ type: 'del', key: k });
          this.dropVersionData(prev, ops, garbage);
          await this.index.batch(ops);
          return { deleted: prev };
        }
        // A conditional delete of a key with no versions at all is a no-op, not a new marker.
        if (!prev && opts.check) return {};
        const marker: ObjectRecord = {
          bucket, key: objectKey, size: 0, etag: '', mtime: Date.now(), versionId: 'null', headers: {}, meta: {}, checksums: {},
          ec: prev?.ec ?? this.set.layoutFor(bucket, objectKey), parts: [], multipart: false, deleteMarker: true,
        };
        this.supersede(marker, prev, mode, ops, garbage);
        if (mode === 'Suspended') await this.dropNullVersion(marker, prev, ops, garbage);
        ops.push({ type: 'put', key: k, value: encodeRecord(marker) });
        await this.index.batch(ops);
        return { deleteMarker: true, versionId: marker.versionId };
      }
      const target = await findVersion(this.index, prev, opts.versionId);
      if (!target) {
        if (opts.versionId !== 'null' && vseqOf(opts.versionId) === undefined) throw new StorageError('InvalidArgument', 'Invalid version id specified');
        return { versionId: opts.versionId };
      }
      opts.check?.(target);
      if (!target.deleteMarker) opts.canDelete?.(target);
      if (target.versioned && target.vseq !== undefined) ops.push({ type: 'del', key: versionKey(bucket, objectKey, target.vseq) });
      this.dropVersionData(target, ops, garbage);
      if (prev && prev.versionId === target.versionId) {
        const next = target.versioned ? (await versionsOf(this.index, bucket, objectKey)).find((r) => r.vseq !== target.vseq) : undefined;
        ops.push(next ? { type: 'put', key: k, value: encodeRecord(next) } : { type: 'del', key: k });
      }
      await this.index.batch(ops);
      return { deleted: target, versionId: target.versionId, deleteMarker: !!target.deleteMarker };
    });
    this.freeLater(lockKey, garbage);
    return result;
  }

  /**
   * Append (directory buckets): `offset` must equal the current size. The body is stored as one
   * more part of the object — nothing already written is touched — and the full-object CRC32C
   * is extended by combination, not by re-reading.
   */
  async appendObject(bucket: string, objectKey: string, offset: number, body: Body, opts: PutOptions = {}): Promise<ObjectRecord> {
    const cur = await this.headObject(bucket, objectKey).catch((e) => { if (isStorageError(e, 'NoSuchKey')) return undefined; throw e; });
    if (!cur) {
      if (offset !== 0) throw new StorageError('InvalidWriteOffset', 'The write offset value does not match the object size');
      return this.putObject(bucket, objectKey, body, opts);
    }
    if (cur.size !== offset) throw new StorageError('InvalidWriteOffset', 'The write offset value does not match the object size');
    if (cur.parts.length >= MAX_PARTS) throw new StorageError('TooManyParts');
    return this.writing(async () => {
      const written = await this.writeBody(cur.ec, body, opts, cur.parts.length + 1);
      const { inlineBytes, ...part } = written;
      const lockKey = `${bucket}\0${objectKey}`;
      try {
        return await this.locks.run(lockKey, async () => {
          const nowBuf = await this.index.get(key(NS_OBJECT, bucket, objectKey));
          const now = nowBuf ? decodeJson<ObjectRecord>(nowBuf) : undefined;
          if (!now || now.deleteMarker || now.size !== offset || now.etag !== cur.etag) throw new StorageError('InvalidWriteOffset', 'The object changed while appending');
          const base = now.checksums.CRC32C && !now.checksums.CRC32C.includes('-') ? Buffer.from(now.checksums.CRC32C, 'base64').readUInt32BE(0) : undefined;
          const next: ObjectRecord = {
            ...now, size: now.size + part.size, mtime: Date.now(), etag: etagOf({ size: 0, md5: Buffer.alloc(0), crc32c: 0 }, { etag: 'random' }),
            parts: [...now.parts, { ...part, number: now.parts.length + 1 }],
            checksums: base !== undefined ? { CRC32C: crcBase64(crcCombine(base, part.crc32c, part.size, CRC32C_POLY)) } : {},
            checksumType: 'FULL_OBJECT',
          };
          const ops: IndexOp[] = [{ type: 'put', key: key(NS_OBJECT, bucket, objectKey), value: encodeRecord(next) }];
          if (inlineBytes) ops.push({ type: 'put', key: key(NS_INLINE, part.dataDir), value: inlineBytes });
          await this.index.batch(ops);
          return next;
        });
      } catch (e) {
        if (!part.inline) await this.removeData(part.dataDir);
        throw e;
      }
    });
  }

  /**
   * Rename within a bucket (directory buckets): the record moves to the new key, the data stays
   * where it is. Atomic: one index batch. `check` sees both records first (conditional headers).
   */
  async renameObject(bucket: string, from: string, to: string,
    check: (src: ObjectRecord, dst: ObjectRecord | undefined) => void = () => undefined): Promise<ObjectRecord> {
    const [first, second] = [from, to].sort();
    const garbage: string[] = [];
    const moved = await this.locks.run(`${bucket}\0${first}`, () => this.locks.run(`${bucket}\0${second}`, async () => {
      const srcBuf = await this.index.get(key(NS_OBJECT, bucket, from));
      const src = srcBuf ? decodeJson<ObjectRecord>(srcBuf) : undefined;
      if (!src || src.deleteMarker) { await this.getBucket(bucket); throw new StorageError('NoSuchKey'); }
      const dstBuf = await this.index.get(key(NS_OBJECT, bucket, to));
      const dst = dstBuf ? decodeJson<ObjectRecord>(dstBuf) : undefined;
      check(src, dst && !dst.deleteMarker ? dst : undefined);
      if (from === to) return src;
      const rec: ObjectRecord = { ...src, key: to };
      const ops: IndexOp[] = [{ type: 'del', key: key(NS_OBJECT, bucket, from) }, { type: 'put', key: key(NS_OBJECT, bucket, to), value: encodeRecord(rec) }];
      if (dst) this.dropVersionData(dst, ops, garbage);
      await this.index.batch(ops);
      return rec;
    }));
    this.freeLater(`${bucket}\0${to}`, garbage);
    return moved;
  }

  async listVersions(bucket: string, opts: VersionListOptions): Promise<VersionListResult> {
    await this.getBucket(bucket);
    return listVersions(this.index, bucket, opts);
  }

  async listObjects(bucket: string, opts: ListOptions): Promise<ListResult> {
    await this.getBucket(bucket);
    return listObjects(this.index, bucket, opts);
  }

  /** Remove a data dir from every drive (best effort: leftovers are found by the orphan sweep). */
  async removeData(dataDir: string): Promise<void> {
    await Promise.all(this.set.drives.map(async (d) => {
      if (d.online) await d.remove(dataDir).catch(() => undefined); // a failure stays on the drive (removeFailed)
      else this.orphansPossible = true;
    }));
  }

  /** Run a write that makes data dirs (a PUT, an append, a part): counted until committed or cleaned up. */
  async writing<T>(fn: () => Promise<T>): Promise<T> {
    this.writes++;
    try { return await fn(); } finally { this.writes--; }
  }

  /** Remove a data dir no reader in any process can still see (index-owner.ts decides when). */
  removeSoon(dataDir: string): void { void this.removeLater(dataDir); }

  /** A deferred removal (after readers): counted until its files are gone, so pendingRemovals is exact. */
  private async removeLater(dataDir: string): Promise<void> {
    this.removing++;
    try { await this.removeData(dataDir); } finally { this.removing--; }
  }

  /**
   * Data-dir removals not finished yet: waiting on readers, or running (tests use it to wait
   * for space to be freed).
   */
  get pendingRemovals(): number { return this.pins.pending + this.removing; }

  /**
   * Remove data dirs no index record references: left by a crash between the shard commit and
   * the index commit, or a delete interrupted before it freed the shards. Dirs modified after
   * `before` may belong to writes in flight and are left alone.
   */
  async collectOrphans(before: number): Promise<number> {
    // The dirs on the drives first, then the records that name them struck off: memory holds the
    // dirs (small objects, kept inline, have none) rather than every record's (a set of every
    // data dir named, slices of the record texts, was +1.2 GiB at a million objects), and with
    // no dir on any drive the records are not read at all.
    const candidates = new Set<string>();
    for (const d of this.set.drives) {
      if (!d.online) { this.orphansPossible = true; continue; }
      for (const fan of await fsp.readdir(d.dataRoot).catch(() => [] as string[])) {
        if (this.closed) { this.orphansPossible = true; return 0; } // close() waits for this sweep: stop early instead
        for (const dir of await fsp.readdir(path.join(d.dataRoot, fan)).catch(() => [] as string[])) candidates.add(dir);
      }
    }
    // One iterator, so one snapshot: records move between these namespaces (a completed upload's
    // parts from `p` to `o`), and one namespace read after another missed a record that moved
    // in between (its data, older than `before`, was removed). Nothing else sorts among them:
    // `u` (uploads) holds no data dirs. Scanned as text: parsing a million records held the
    // event loop for seconds after every start.
    const from = Math.min(NS_OBJECT, NS_PART, NS_VERSION);
    const to = Math.max(NS_OBJECT, NS_PART, NS_VERSION) + 1;
    if (candidates.size > 0) {
      const it = this.index.iterator({ gte: Buffer.from([from]), lt: Buffer.from([to]), valuesAsText: true });
      try {
        for (let page = await it.nextv(1000); page.length > 0 && candidates.size > 0; page = await it.nextv(1000)) {
          if (this.closed) { this.orphansPossible = true; return 0; }
          for (const [k, v] of page) {
            if (k[0] !== NS_OBJECT && k[0] !== NS_PART && k[0] !== NS_VERSION) continue;
            for (const d of dataDirsOf(typeof v === 'string' ? v : v.toString('utf8'))) candidates.delete(d);
          }
        }
      } finally {
        await it.close();
      }
    }
    let removed = 0;
    for (const dir of candidates) {
      if (this.closed) { this.orphansPossible = true; return removed; }
      for (const d of this.set.drives) {
        if (!d.online) { this.orphansPossible = true; continue; }
        const st = await fsp.stat(d.dataPath(dir)).catch(() => null);
        if (!st) continue;
        if (st.mtimeMs >= before) {
          // Left alone: a write of this run, or (made around the start) maybe an orphan of the
          // last one, which only the next start's sweep can tell.
          if (st.mtimeMs < before + ORPHAN_GRACE_MS + 1000) this.orphansPossible = true;
          continue;
        }
        await d.remove(dir).catch(() => undefined);
        removed++;
      }
    }
    if (removed) this.log('orphan data dirs removed', { removed });
    return removed;
  }
}

/**
 * Directory timestamps come from a coarse kernel clock that can trail Date.now(); the start-up
 * sweep leaves alone anything this recent, so a write that starts right after open is never
 * mistaken for an orphan. Orphans younger than this are collected at the next start.
 */
const ORPHAN_GRACE_MS = 5000;

/** The data a record names: equal for two reads of the same stored version. */
function sameVersion(a: ObjectRecord, b: ObjectRecord): boolean {
  return a.versionId === b.versionId && a.mtime === b.mtime && a.parts.length === b.parts.length && a.parts.every((p, i) => p.dataDir === b.parts[i].dataDir);
}

/**
 * The requested bytes in hand (inline objects, one-block parts); the stream is built only for
 * callers that want one. One-block bytes sit in a pooled block, which `release` gives back;
 * for any other bytes the pool ignores it.
 */
class BytesResult implements GetResult {
  constructor(readonly record: ObjectRecord, readonly start: number, readonly end: number, readonly bytes: Buffer) {}
  get stream(): Readable { return Readable.from([this.bytes]); }
  readonly release = (): void => giveBlock(this.bytes);
}

/**
 * Bytes read as they are sent. `unpin` (idempotent) runs when the generator ends, or is stopped,
 * and again from close() or the stream's 'close', since a generator stopped before its first
 * step never runs its finally.
 */
class StreamResult implements GetResult, BlockBody {
  private built?: Readable;
  constructor(readonly record: ObjectRecord, readonly start: number, readonly end: number,
    private readonly gen: AsyncGenerator<Buffer>, private readonly unpin: () => void) {}

  get stream(): Readable {
    if (!this.built) {
      this.built = Readable.from(this.gen, { objectMode: false, highWaterMark: 1 });
      this.built.once('close', this.unpin);
    }
    return this.built;
  }

  get blocks(): BlockBody { return this; }

  async next(): Promise<Buffer | undefined> {
    const r = await this.gen.next();
    return r.done ? undefined : r.value;
  }

  recycle(chunk: Buffer): void { giveBlock(chunk); }

  async close(): Promise<void> {
    try { await this.gen.return(undefined); } finally { this.unpin(); }
  }
}

/** The data a record named is gone or may be: the record was replaced meanwhile (read it again). */
class ReplacedMidRead extends Error {
  constructor(override readonly cause: StorageError) { super(cause.message); }
}

export interface DeleteResult { deleted?: ObjectRecord; deleteMarker?: boolean; versionId?: string }

function markerError(code: 'NoSuchKey' | 'MethodNotAllowed', marker: ObjectRecord): StorageError {
  const e = new StorageError(code);
  e.deleteMarker = { versionId: marker.versionId };
  return e;
}

export function newId(): string { return randomUUID().replace(/-/g, ''); }

/**
 * Random base64url that a command line never takes for an option: no leading '-' (nor '_').
 * Upload ids and generated secrets are typed as `--upload-id X` arguments; one in 64 drawn
 * plainly began with '-', and the AWS CLI then refused it ("expected one argument").
 */
export function randomToken(bytes: number): string {
  for (;;) {
    const s = randomBytes(bytes).toString('base64url');
    if (s[0] !== '-' && s[0] !== '_') return s;
  }
}

function etagOf(d: Digests, opts: PutOptions): string {
  return opts.etag === 'random' ? randomBytes(16).toString('hex') : d.md5.toString('hex');
}

export function stripQuotes(s: string): string {
  const t = s.trim();
  return t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t.startsWith('W/"') ? t.slice(3, -1) : t;
}

// The index's read cache hands out the same Buffer for a value until it changes: what was
// decoded from that Buffer once holds for as long as it lives (its CRC too: bitrot.ts crcOnce).
const sharedRecords = new WeakMap<Buffer, ObjectRecord>();

/** A current record, decoded once per index value and frozen: every reader shares it. */
function sharedRecord(v: Buffer): ObjectRecord {
  let rec = sharedRecords.get(v);
  if (!rec) sharedRecords.set(v, (rec = deepFreeze(decodeJson<ObjectRecord>(v))));
  return rec;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
