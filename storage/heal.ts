// Heal: rebuild missing or corrupt shard files from the healthy ones. Work arrives from reads
// that met damage (heal-on-read), writes that missed a drive, and a full sweep when a drive is
// replaced. The queue is persisted in the index (NS_HEAL) so a restart does not forget it.
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { ErasureSet } from './erasure-set';
import { Index, MetaIndex } from './meta-index';
import { HealRecord, key, NS_HEAL, NS_OBJECT, NS_PART, NS_VERSION, decodeJson, encodeJson, ObjectRecord, PartRecord } from './records';
import { frameOffset } from './bitrot';
import { closeFile, readFrame, writeFrame } from './native';
import { HEAL_QUEUE_MAX } from './constants';
import { fsyncDir } from './drive';

export interface HealStats { queued: number; healed: number; failed: number }

/** What the object store needs of the healer (a worker process reaches the owner's over its socket). */
export interface HealQueue {
  enqueue(rec: HealRecord): void;
  /** Queue every part of the store; resolves with how many were queued. */
  sweep(): Promise<number>;
  status(): Promise<{ pending: number } & HealStats>;
  stop(): Promise<void>;
}

export class Healer implements HealQueue {
  private queue = new Map<string, HealRecord>();
  private running = false;
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  /** Parts whose damaged shards include some on drives that are not online: healed later. */
  private readonly deferred = new Set<string>();
  readonly stats: HealStats = { queued: 0, healed: 0, failed: 0 };

  constructor(private readonly set: ErasureSet, private readonly index: Index,
    private readonly log: (msg: string, extra?: object) => void) {}

  get length(): number { return this.queue.size; }

  async status(): Promise<{ pending: number } & HealStats> { return { pending: this.queue.size, ...this.stats }; }

  /** Load the persisted queue (after a restart). */
  async load(): Promise<void> {
    for await (const [, v] of this.index.entries({ gte: Buffer.from([NS_HEAL]), lt: Buffer.from([NS_HEAL + 1]) })) {
      const rec = decodeJson<HealRecord>(v);
      this.queue.set(rec.dataDir, rec);
    }
    this.kick();
  }

  enqueue(rec: HealRecord, persist = true): void {
    if (this.queue.has(rec.dataDir) || this.queue.size >= HEAL_QUEUE_MAX) return;
    this.queue.set(rec.dataDir, rec);
    this.stats.queued++;
    if (persist) void this.index.batch([{ type: 'put', key: key(NS_HEAL, rec.dataDir), value: encodeJson(rec) }]).catch(() => undefined);
    this.kick();
  }

  /** Queue every erasure-coded part in the index (a replaced or returning drive, the admin heal) and check every inline body in the index logs. */
  async sweep(): Promise<number> {
    let n = 0;
    const add = (p: PartRecord, ec: HealRecord['ec']) => {
      if (p.inline) return;
      this.enqueue({ dataDir: p.dataDir, size: p.size, ec, queued: Date.now() }, false);
      n++;
    };
    for await (const [, v] of this.index.entries({ gte: Buffer.from([NS_OBJECT]), lt: Buffer.from([NS_OBJECT + 1]) })) {
      const rec = decodeJson<ObjectRecord>(v);
      for (const p of rec.parts) add(p, rec.ec);
    }
    for await (const [, v] of this.index.entries({ gte: Buffer.from([NS_VERSION]), lt: Buffer.from([NS_VERSION + 1]) })) {
      const rec = decodeJson<ObjectRecord>(v);
      for (const p of rec.parts) add(p, rec.ec);
    }
    for await (const [, v] of this.index.entries({ gte: Buffer.from([NS_PART]), lt: Buffer.from([NS_PART + 1]) })) {
      const p = decodeJson<PartRecord & { ec: HealRecord['ec'] }>(v);
      add(p, p.ec);
    }
    // Inline bodies live in the index replicas' logs: checked there, bad copies rewritten.
    if (this.index instanceof MetaIndex) n += await this.index.scrubValues();
    return n;
  }

  /** Resolves when the queue is empty (tests, admin). */
  async drain(): Promise<void> {
    while (this.queue.size > 0 || this.running) await new Promise((r) => setTimeout(r, 10));
  }

  /** Stop taking queued work; resolves once the part being healed (if any) is done. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private kick(): void {
    if (this.running || this.stopped || this.queue.size === 0) return;
    this.running = true;
    this.loop = (async () => {
      try {
        while (!this.stopped && this.queue.size > 0) {
          const [id, rec] = this.queue.entries().next().value as [string, HealRecord];
          try {
            await this.healPart(rec);
            this.stats.healed++;
          } catch (e) {
            this.stats.failed++;
            this.log('heal failed', { dataDir: id, error: (e as Error).message });
          }
          this.queue.delete(id);
          if (this.deferred.delete(id)) {
            // Shards on drives that are offline now could not be rebuilt: keep the record in the
            // index so the heal runs again when the store restarts with the drive back.
            await this.index.batch([{ type: 'put', key: key(NS_HEAL, id), value: encodeJson(rec) }]).catch(() => undefined);
          } else {
            await this.index.batch([{ type: 'del', key: key(NS_HEAL, id) }]).catch(() => undefined);
          }
        }
      } finally {
        this.running = false;
      }
    })();
  }

  /** Verify every shard block of a part; rewrite the shard files that are missing or damaged. */
  async healPart(rec: HealRecord): Promise<string[]> {
    const { ec, size, dataDir } = rec;
    const er = this.set.erasure;
    const n = ec.data + ec.parity;
    const B = ec.blockSize;
    const full = er.shardSize(B);
    const blocks = Math.ceil(size / B);
    const handles: (FileHandle | null)[] = await Promise.all(Array.from({ length: n }, async (_, i) => {
      const d = this.set.driveFor(ec, i);
      if (!d.online) return null;
      return fsp.open(d.shardFile(dataDir), 'r').catch(() => null);
    }));
    if (handles.every((h) => h === null)) return []; // deleted meanwhile: nothing to heal
    const bad = new Set<number>();
    const readBlock = async (b: number) => {
      const len = Math.min(B, size - b * B);
      const S = er.shardSize(len);
      const dataBuf = Buffer.alloc(S * ec.data);
      const parityBuf = Buffer.alloc(S * ec.parity);
      const shard = (i: number) => (i < ec.data ? dataBuf.subarray(i * S, (i + 1) * S) : parityBuf.subarray((i - ec.data) * S, (i - ec.data + 1) * S));
      const missing: number[] = [];
      await Promise.all(handles.map(async (h, i) => {
        let ok = false;
        if (h) {
          try {
            // Read and check in one thread-pool task (native.ts), as the read path does.
            ok = await readFrame(h, frameOffset(b, full), shard(i));
          } catch { ok = false; }
        }
        if (!ok) { missing.push(i); bad.add(i); }
      }));
      return { S, dataBuf, parityBuf, shard, missing };
    };
    try {
      for (let b = 0; b < blocks; b++) await readBlock(b);
      const targets = [...bad].filter((i) => this.set.driveFor(ec, i).online);
      if (targets.length < bad.size) this.deferred.add(dataDir);
      if (targets.length === 0) return [];
      if (bad.size > ec.parity) throw new Error(`part ${dataDir}: ${bad.size} damaged shards exceed parity ${ec.parity}`);
      const tmpId = randomUUID();
      const outs = await Promise.all(targets.map(async (i) => {
        const d = this.set.driveFor(ec, i);
        // A drive whose format record vanished (unmounted, wiped) must not be written through:
        // mkdir -p would recreate its tree on whatever file system lies underneath.
        await fsp.access(d.formatFile).catch((e) => { d.fail(e); throw e; });
        await fsp.mkdir(d.tmpPath(tmpId), { recursive: true });
        return { i, d, fh: await fsp.open(path.join(d.tmpPath(tmpId), 'shard'), 'w') };
      }));
      try {
        for (let b = 0; b < blocks; b++) {
          const blk = await readBlock(b);
          await er.reconstruct(blk.dataBuf, blk.parityBuf, blk.S, blk.missing);
          await Promise.all(outs.map((o) => writeFrame(o.fh, frameOffset(b, full), blk.shard(o.i))));
        }
        for (const o of outs) {
          if (this.set.durable) await o.fh.sync();
          await closeFile(o.fh);
          const dest = o.d.dataPath(dataDir);
          await fsp.mkdir(dest, { recursive: true });
          await fsp.rename(path.join(o.d.tmpPath(tmpId), 'shard'), path.join(dest, 'shard'));
          if (this.set.durable) await fsyncDir(dest);
        }
      } finally {
        await Promise.all(outs.map(async (o) => { await closeFile(o.fh).catch(() => undefined); await o.d.removeTmp(tmpId); }));
      }
      this.log('healed part', { dataDir, slots: targets });
      return targets.map((i) => this.set.driveFor(ec, i).root);
    } finally {
      await Promise.all(handles.map((h) => (h ? closeFile(h).catch(() => undefined) : undefined)));
    }
  }
}
