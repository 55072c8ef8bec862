// Reads a byte range of one erasure-coded part. Only the blocks the range touches are read.
// With all data shards healthy the block is the concatenation of the data shards (systematic
// code: no decoding). Every shard block is checked against its CRC32C before use (invariant 3),
// in the thread-pool task that reads it; a missing or corrupt shard is rebuilt from parity for
// this reply and reported for repair.
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { ErasureSet } from './erasure-set';
import { ErasureLayout } from './records';
import { frameOffset } from './bitrot';
import { READ_PREFETCH_BLOCKS } from './constants';
import { closeFile, readBlock, readFiles, readFrame } from './native';
import { StorageError } from './errors';
import { giveBlock, takeBlock } from './block-pool';

export interface PartSource { dataDir: string; size: number; ec: ErasureLayout }

/** Open shard files of one part, lazily, and remember which ones failed. */
class ShardFiles {
  private handles: (Promise<FileHandle | null> | undefined)[];
  readonly bad = new Set<number>();

  constructor(private readonly set: ErasureSet, private readonly part: PartSource) {
    this.handles = new Array(part.ec.data + part.ec.parity);
  }

  handle(i: number): Promise<FileHandle | null> {
    if (this.bad.has(i)) return Promise.resolve(null);
    let h = this.handles[i];
    if (!h) {
      const drive = this.set.driveFor(this.part.ec, i);
      h = drive.online
        ? fsp.open(drive.shardFile(this.part.dataDir), 'r').catch((e: NodeJS.ErrnoException) => {
          // A missing file is a shard to heal; any other error is a sick drive.
          if (e.code !== 'ENOENT') drive.fail(e);
          this.bad.add(i);
          return null;
        })
        : Promise.resolve(null);
      this.handles[i] = h;
    }
    return h;
  }

  /** Read and verify shard i of block b into `into`. False when missing, short or corrupt. */
  async read(i: number, b: number, into: Buffer, fullShard: number): Promise<boolean> {
    const fh = await this.handle(i);
    if (!fh) return false;
    try {
      // Read and CRC check run together off the event loop (native.ts).
      if (await readFrame(fh, frameOffset(b, fullShard), into)) return true;
    } catch (e) {
      this.set.driveFor(this.part.ec, i).fail(e);
    }
    this.bad.add(i);
    return false;
  }

  /** Read and verify data shards 0..D-1 of block b, each into its slice of `into`. */
  async readData(D: number, b: number, into: Buffer, fullShard: number): Promise<boolean[]> {
    const S = into.length / D;
    const fhs = await Promise.all(Array.from({ length: D }, (_, i) => this.handle(i)));
    if (fhs.some((fh) => !fh)) return Promise.all(fhs.map((_, i) => this.read(i, b, into.subarray(i * S, (i + 1) * S), fullShard)));
    const res = await readBlock(fhs as FileHandle[], frameOffset(b, fullShard), into);
    return res.map((r, i) => {
      if (r === true) return true;
      if (r instanceof Error) this.set.driveFor(this.part.ec, i).fail(r);
      this.bad.add(i);
      return false;
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.handles.map(async (h) => { const fh = await h; if (fh) await closeFile(fh).catch(() => undefined); }));
  }
}

/**
 * Yield the bytes [start, end) of a part. `onDamage` receives the shard indices found missing
 * or corrupt, once, after the read.
 */
export async function* readShards(set: ErasureSet, part: PartSource, start: number, end: number,
  onDamage: (slots: number[]) => void): AsyncGenerator<Buffer> {
  if (start >= end) return;
  const { ec } = part;
  const B = ec.blockSize;
  const er = set.erasure;
  const fullShard = er.shardSize(B);
  const files = new ShardFiles(set, part);
  const firstBlock = Math.floor(start / B);
  const lastBlock = Math.floor((end - 1) / B);

  // Each block read goes into a pooled block (block-pool.ts) and is yielded as a slice of it: a
  // consumer that knows when the bytes are written out gives it back (giveBlock), others let go.
  const readBlock = async (b: number): Promise<Buffer> => {
    const len = Math.min(B, part.size - b * B);
    const S = er.shardSize(len);
    const block = takeBlock(fullShard * ec.data);
    try {
      const dataBuf = block.subarray(0, S * ec.data);
      const ok = await files.readData(ec.data, b, dataBuf, fullShard);
      const missing = ok.map((g, i) => (g ? -1 : i)).filter((i) => i >= 0);
      if (missing.length === 0) return dataBuf.subarray(0, len);
      if (missing.length > ec.parity) throw readQuorumError(part);
      // Degraded: fetch parity shards until D verified shards are in hand, then rebuild.
      const parity = takeBlock(fullShard * ec.parity);
      try {
        const parityBuf = parity.subarray(0, S * ec.parity);
        const pOk = await Promise.all(Array.from({ length: ec.parity }, (_, j) => files.read(ec.data + j, b, parityBuf.subarray(j * S, (j + 1) * S), fullShard)));
        const pMissing = pOk.map((g, j) => (g ? -1 : ec.data + j)).filter((i) => i >= 0);
        if (missing.length + pMissing.length > ec.parity) throw readQuorumError(part);
        await er.reconstruct(dataBuf, parityBuf, S, [...missing, ...pMissing]);
      } finally {
        giveBlock(parity);
      }
      return dataBuf.subarray(0, len);
    } catch (e) {
      giveBlock(block);
      throw e;
    }
  };

  const queue: Promise<Buffer>[] = [];
  try {
    let next = firstBlock;
    const fillQueue = () => {
      while (next <= lastBlock && queue.length < READ_PREFETCH_BLOCKS) {
        const p = readBlock(next++);
        p.catch(() => undefined); // observed when awaited; avoid unhandled rejection while queued
        queue.push(p);
      }
    };
    for (let b = firstBlock; b <= lastBlock; b++) {
      fillQueue();
      const data = await queue.shift()!;
      const from = b === firstBlock ? start - b * B : 0;
      const to = b === lastBlock ? end - b * B : data.length;
      yield from === 0 && to === data.length ? data : data.subarray(from, to);
    }
  } finally {
    // A client that goes away mid-read stops the generator: let queued reads settle before
    // closing their files, or they would fail and wrongly mark drives faulty.
    for (const r of await Promise.allSettled(queue)) if (r.status === 'fulfilled') giveBlock(r.value);
    // Parity shards are never opened on a healthy read; a damaged data shard makes every
    // other shard worth checking by the healer, which reads the whole part anyway.
    await files.close();
    if (files.bad.size > 0) onDamage([...files.bad]);
  }
}

/**
 * A part of one block read whole, its data shards opened, read, checked and closed in one
 * thread-pool task (readShards takes ~5 round trips and a stream for the same). The bytes are in
 * a slice of a pooled block (a fresh 1 MiB buffer costs a page fault per 4 KiB page): giveBlock it
 * once nothing reads them any more (the reply is written out); never given back, it is simply
 * collected. Undefined when a data shard is missing, short, corrupt or unreadable: readShards
 * then does the degraded read and reports the damage.
 */
export async function readOneBlock(set: ErasureSet, part: PartSource): Promise<Buffer | undefined> {
  const { ec } = part;
  const D = ec.data;
  const drives = Array.from({ length: D }, (_, i) => set.driveFor(ec, i));
  if (part.size === 0 || part.size > ec.blockSize || drives.some((d) => !d.online)) return undefined;
  const S = set.erasure.shardSize(part.size);
  const block = takeBlock(set.erasure.shardSize(ec.blockSize) * D); // the size readShards takes: one pool
  const ok = await readFiles(drives.map((d) => d.shardFile(part.dataDir)), frameOffset(0, S), block.subarray(0, S * D));
  if (!ok.every((r) => r === true)) {
    giveBlock(block);
    return undefined;
  }
  return block.subarray(0, part.size);
}

function readQuorumError(part: PartSource): StorageError {
  return new StorageError('InsufficientReadQuorum', `fewer than ${part.ec.data} healthy shards for ${part.dataDir}`);
}
