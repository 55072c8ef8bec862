// How bytes reach a drive: the one place. A body is cut into blocks, each block is RS-encoded
// into D+P shards, every shard block is framed with its CRC32C and appended to a shard file in
// the drive's tmp area. Only after every block is written (and fsynced, in durable mode) are
// the tmp dirs renamed into the data tree. The index commit (metadata last) is the caller's.
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { createHash, randomUUID, Hash } from 'node:crypto';
import { ErasureSet } from './erasure-set';
import { ErasureLayout } from './records';
import { crc, frameHeader, frameOffset } from './bitrot';
import { StorageError } from './errors';
import { Drive } from './drive';
import { WRITE_PIPELINE_DEPTH } from './constants';
import { md5Pool, OffloadedMd5 } from './md5-pool';

export interface Digests { size: number; md5: Buffer; crc32c: number }
export interface WrittenData extends Digests { dataDir: string; failedSlots: number[] }

/** Early datasync cadence in durable mode (blocks per shard file). */
const SYNC_EVERY_BLOCKS = 4;

interface ShardOut { drive: Drive; handle: FileHandle | null; ok: boolean; syncs: Promise<void>[] }

/**
 * Hashes computed in the same pass as the write: MD5 (the ETag) and the whole-object CRC32C.
 * For large bodies the MD5 runs on a worker thread (md5-pool.ts) so the event loop only copies.
 */
export class BodyDigest {
  private readonly md5: Hash | null;
  private readonly offloaded: OffloadedMd5 | null;
  crc32c = 0;
  size = 0;
  constructor(withMd5: boolean, offload = false) {
    this.offloaded = withMd5 && offload ? md5Pool.open() : null;
    this.md5 = withMd5 && !offload ? createHash('md5') : null;
  }
  update(b: Buffer): void {
    this.md5?.update(b);
    this.offloaded?.update(b);
    this.crc32c = crc(b, this.crc32c);
    this.size += b.length;
  }
  async finish(): Promise<Digests> {
    const md5 = this.md5 ? this.md5.digest() : this.offloaded ? await this.offloaded.digest() : Buffer.alloc(0);
    return { size: this.size, md5, crc32c: this.crc32c };
  }
  abandon(): void { this.offloaded?.drop(); }
  /** Wait while the MD5 worker is more than a few MiB behind (bounded memory per PUT). */
  backlog(): Promise<void> | undefined { return this.offloaded?.backlog(); }
}

/**
 * Stream `chunks` (already-consumed `head` first, then `rest`) into a new data dir.
 * Throws InsufficientWriteQuorum if fewer than the write quorum of drives took every block;
 * any error leaves nothing behind but tmp dirs, which are removed.
 */
export async function writeShards(set: ErasureSet, ec: ErasureLayout, head: Buffer[], rest: AsyncIterator<Buffer> | null,
  digest: BodyDigest, maxSize: number): Promise<WrittenData> {
  const dataDir = randomUUID().replace(/-/g, '');
  const n = ec.data + ec.parity;
  const outs: ShardOut[] = [];
  for (let i = 0; i < n; i++) {
    const drive = set.driveFor(ec, i);
    let handle: FileHandle | null = null;
    if (drive.online) {
      try {
        await fsp.mkdir(drive.tmpPath(dataDir), { recursive: true });
        handle = await fsp.open(`${drive.tmpPath(dataDir)}/shard`, 'w');
      } catch (e) {
        drive.fail(e);
      }
    }
    outs.push({ drive, handle, ok: handle !== null, syncs: [] });
  }
  const alive = () => outs.filter((o) => o.handle !== null).length;
  const cleanup = async () => {
    await Promise.all(outs.map(async (o) => {
      await o.handle?.close().catch(() => undefined);
      o.handle = null;
      await o.drive.removeTmp(dataDir);
    }));
  };

  try {
    if (alive() < set.writeQuorum) throw quorumError(alive(), set.writeQuorum);
    const B = ec.blockSize;
    const er = set.erasure;
    const inflight: Promise<void>[] = [];
    const fullShard = er.shardSize(B);
    let block = Buffer.allocUnsafe(B);
    let fill = 0;
    let blockIndex = 0;

    // Blocks may be in flight together, so each writes at its own fixed offset.
    const flushBlock = async (buf: Buffer, len: number, b: number) => {
      const S = er.shardSize(len);
      const dataBuf = S * ec.data === B && len === B ? buf : padTo(buf, len, S * ec.data);
      const parityBuf = Buffer.allocUnsafe(S * ec.parity);
      await er.encode(dataBuf, parityBuf, S);
      const writes = outs.map(async (o, i) => {
        if (!o.handle) return;
        const shard = i < ec.data ? dataBuf.subarray(i * S, (i + 1) * S) : parityBuf.subarray((i - ec.data) * S, (i - ec.data + 1) * S);
        try {
          await o.handle.writev([frameHeader(shard), shard], frameOffset(b, fullShard));
          // Durable mode: start flushing every few blocks while the body still streams in, so
          // the fsync before commit has little left to do (disk and network work overlap).
          if (set.durable && (b + 1) % SYNC_EVERY_BLOCKS === 0) o.syncs.push(o.handle.datasync().catch(() => undefined));
        } catch (e) {
          o.drive.fail(e);
          o.ok = false;
          await o.handle?.close().catch(() => undefined);
          o.handle = null;
        }
      });
      await Promise.all(writes);
      if (alive() < set.writeQuorum) throw quorumError(alive(), set.writeQuorum);
    };

    const push = async (chunk: Buffer) => {
      digest.update(chunk);
      if (digest.size > maxSize) throw new StorageError('EntityTooLarge', `body exceeds ${maxSize} bytes`);
      const behind = digest.backlog();
      if (behind) await behind;
      let off = 0;
      while (off < chunk.length) {
        const take = Math.min(B - fill, chunk.length - off);
        chunk.copy(block, fill, off, off + take);
        fill += take;
        off += take;
        if (fill === B) {
          // Keep at most WRITE_PIPELINE_DEPTH blocks in flight: memory per PUT stays bounded.
          if (inflight.length >= WRITE_PIPELINE_DEPTH) await inflight.shift();
          inflight.push(flushBlock(block, B, blockIndex++));
          block = Buffer.allocUnsafe(B);
          fill = 0;
        }
      }
    };

    for (const c of head) await push(c);
    if (rest) {
      for (;;) {
        const r = await rest.next();
        if (r.done) break;
        await push(r.value);
      }
    }
    if (fill > 0) inflight.push(flushBlock(block, fill, blockIndex++));
    // Settle every block before deciding: a rejected block must not leave others writing.
    const settled = await Promise.allSettled(inflight);
    const bad = settled.find((s) => s.status === 'rejected') as PromiseRejectedResult | undefined;
    if (bad) throw bad.reason;

    await Promise.all(outs.map(async (o) => {
      if (!o.handle || !o.ok) return;
      try {
        await Promise.all(o.syncs);
        if (set.durable) await o.handle.sync();
        await o.handle.close();
        o.handle = null;
        await o.drive.commit(dataDir, dataDir);
      } catch (e) {
        o.drive.fail(e);
        o.ok = false;
        await o.handle?.close().catch(() => undefined);
        o.handle = null;
      }
    }));
    const committed = outs.filter((o) => o.ok);
    if (committed.length < set.writeQuorum) {
      await Promise.all(committed.map((o) => o.drive.remove(dataDir).catch(() => undefined)));
      throw quorumError(committed.length, set.writeQuorum);
    }
    const failedSlots = outs.map((o, i) => (o.ok ? -1 : i)).filter((i) => i >= 0);
    return { ...(await digest.finish()), dataDir, failedSlots };
  } catch (e) {
    digest.abandon();
    await cleanup();
    throw e;
  }
}

function padTo(buf: Buffer, len: number, total: number): Buffer {
  if (buf.length >= total) {
    buf.fill(0, len, total);
    return buf.subarray(0, total);
  }
  const out = Buffer.alloc(total);
  buf.copy(out, 0, 0, len);
  return out;
}

function quorumError(have: number, need: number): StorageError {
  return new StorageError('InsufficientWriteQuorum', `${have} drives accepted the write, quorum is ${need}`);
}
