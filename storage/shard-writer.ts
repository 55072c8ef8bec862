// How bytes reach a drive: the one place. A body is cut into blocks, each block is RS-encoded
// into D+P shards, every shard block is framed with its CRC32C and appended to a shard file in
// the drive's tmp area. Only after every block is written (and fsynced, in durable mode) are
// the tmp dirs renamed into the data tree. The index commit (metadata last) is the caller's.
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { createHash, randomUUID, Hash } from 'node:crypto';
import { ErasureSet } from './erasure-set';
import { ErasureLayout } from './records';
import { crc, frameOffset } from './bitrot';
import { StorageError } from './errors';
import { Drive } from './drive';
import { WRITE_PIPELINE_DEPTH } from './constants';
import { md5Pool } from './md5-pool';
import { closeFile, crc32cAsync, crc32cCombine, writeBlock } from './native';
import { giveBlock, takeBlock } from './block-pool';

export interface Digests { size: number; md5: Buffer; crc32c: number }
export interface WrittenData extends Digests { dataDir: string; failedSlots: number[] }

/** Early datasync cadence in durable mode (blocks per shard file). */
const SYNC_EVERY_BLOCKS = 4;

interface ShardOut { drive: Drive; handle: FileHandle | null; ok: boolean; syncs: Promise<void>[] }

/** MD5 (the ETag) and CRC32C of a small body, on the event loop: it is at most the inline threshold. */
export class BodyDigest {
  private readonly md5: Hash | null;
  crc32c = 0;
  size = 0;
  constructor(withMd5: boolean) {
    this.md5 = withMd5 ? createHash('md5') : null;
  }
  update(b: Buffer): void {
    this.md5?.update(b);
    this.crc32c = crc(b, this.crc32c);
    this.size += b.length;
  }
  finish(): Digests {
    return { size: this.size, md5: this.md5 ? this.md5.digest() : Buffer.alloc(0), crc32c: this.crc32c };
  }
}

/**
 * Stream `chunks` (already-consumed `head` first, then `rest`) into a new data dir, computing
 * the MD5 (on a worker thread, unless `withMd5` is false) and the whole-object CRC32C (combined
 * from the data-shard CRCs of the frames) in the same pass.
 * Throws InsufficientWriteQuorum if fewer than the write quorum of drives took every block;
 * any error leaves nothing behind but tmp dirs, which are removed.
 */
export async function writeShards(set: ErasureSet, ec: ErasureLayout, head: Buffer[], rest: AsyncIterator<Buffer> | null,
  withMd5: boolean, maxSize: number): Promise<WrittenData> {
  const dataDir = randomUUID().replace(/-/g, '');
  const n = ec.data + ec.parity;
  const drives = Array.from({ length: n }, (_, i) => set.driveFor(ec, i));
  // Shard files are opened when the first block is full and more follows: a body of one block
  // (most shard-stored objects) is written by writeOneBlock, one task per drive, no handles.
  // All drives at once: one after the other, these were 2 x (D+P) thread-pool round trips in a row.
  let outs: ShardOut[] = [];
  let opened: Promise<void> | undefined;
  const openAll = () => opened ??= Promise.all(drives.map(async (drive): Promise<ShardOut> => {
    let handle: FileHandle | null = null;
    if (drive.online) {
      try {
        await fsp.mkdir(drive.tmpPath(dataDir), { recursive: true });
        handle = await fsp.open(`${drive.tmpPath(dataDir)}/shard`, 'w');
      } catch (e) {
        drive.fail(e);
      }
    }
    return { drive, handle, ok: handle !== null, syncs: [] };
  })).then((o) => {
    outs = o;
    if (alive() < set.writeQuorum) throw quorumError(alive(), set.writeQuorum);
  });
  const alive = () => outs.filter((o) => o.handle !== null).length;
  const md5 = withMd5 ? md5Pool.open() : null;
  const cleanup = async () => {
    md5?.drop();
    await opened?.catch(() => undefined);
    await Promise.all(outs.map(async (o) => {
      if (o.handle) await closeFile(o.handle).catch(() => undefined);
      o.handle = null;
    }));
    await Promise.all(drives.map((d) => d.removeTmp(dataDir)));
  };

  try {
    const online = drives.filter((d) => d.online).length;
    if (online < set.writeQuorum) throw quorumError(online, set.writeQuorum);
    const B = ec.blockSize;
    const er = set.erasure;
    const inflight: Promise<void>[] = [];
    const fullShard = er.shardSize(B);
    // A block holds the body's bytes and, after them, its parity: every shard of it is one equal
    // slice, written by one task (and no parity buffer to allocate per block).
    const blockBytes = fullShard * n;
    const blockCrcs: { crc: number; len: number }[] = [];
    let block = takeBlock(blockBytes);
    let fill = 0;
    let size = 0;
    let blockIndex = 0;

    // Blocks may be in flight together, so each writes at its own fixed offset. CRCs, parity and
    // the writes run on the thread pool (native.ts, erasure.ts); the event loop only schedules.
    const flushBlock = async (buf: Buffer, len: number, b: number) => {
      const { S, shards, encoded } = encodeBlock(set, ec, buf, len);
      await encoded;
      const results = await writeBlock(outs.map((o) => o.handle), frameOffset(b, fullShard), shards);
      const crcs = await Promise.all(results.map(async (r, i): Promise<number | undefined> => {
        const o = outs[i];
        if (!(r instanceof Error)) {
          // Durable mode: start flushing every few blocks while the body still streams in, so
          // the fsync before commit has little left to do (disk and network work overlap). Not
          // awaited here, and one task per file: on separate devices they run side by side.
          if (r !== undefined && o.handle && set.durable && (b + 1) % SYNC_EVERY_BLOCKS === 0) o.syncs.push(o.handle.datasync().catch(() => undefined));
          return r;
        }
        o.drive.fail(r);
        o.ok = false;
        const h = o.handle;
        o.handle = null;
        if (h) await closeFile(h).catch(() => undefined);
        return undefined;
      }));
      blockCrcs[b] = { crc: await blockCrc(crcs, ec.data, S, len, buf), len };
      if (alive() < set.writeQuorum) throw quorumError(alive(), set.writeQuorum);
    };

    const sendBlock = async (len: number) => {
      const buf = block;
      const hashed = md5 ? md5.update(buf, len) : Promise.resolve();
      // Keep at most WRITE_PIPELINE_DEPTH blocks in flight: memory per PUT stays bounded.
      if (inflight.length >= WRITE_PIPELINE_DEPTH) await inflight.shift();
      await openAll();
      const flushed = flushBlock(buf, len, blockIndex++);
      // Reuse the block once the writes and the MD5 worker are both done with it.
      Promise.all([hashed, flushed]).then(() => giveBlock(buf), () => undefined);
      inflight.push(flushed);
      const behind = md5?.backlog();
      if (behind) await behind;
    };

    const push = async (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxSize) throw new StorageError('EntityTooLarge', `body exceeds ${maxSize} bytes`);
      let off = 0;
      while (off < chunk.length) {
        // A full block goes out once more bytes follow: the body may end with it.
        if (fill === B) {
          await sendBlock(B);
          block = takeBlock(blockBytes);
          fill = 0;
        }
        const take = Math.min(B - fill, chunk.length - off);
        chunk.copy(block, fill, off, off + take);
        fill += take;
        off += take;
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
    if (blockIndex === 0 && fill > 0) {
      const one = await writeOneBlock(set, ec, drives, dataDir, block, fill, md5);
      return { ...one, size, dataDir };
    }
    if (fill > 0) await sendBlock(fill);
    await openAll();
    // Settle every block before deciding: a rejected block must not leave others writing.
    const settled = await Promise.allSettled(inflight);
    const bad = settled.find((s) => s.status === 'rejected') as PromiseRejectedResult | undefined;
    if (bad) throw bad.reason;
    let wholeCrc = 0;
    for (const bc of blockCrcs) wholeCrc = crc32cCombine(wholeCrc, bc.crc, bc.len);
    const md5Digest = md5 ? md5.digest() : Promise.resolve(Buffer.alloc(0));

    await Promise.all(outs.map(async (o) => {
      if (!o.handle || !o.ok) return;
      try {
        await Promise.all(o.syncs);
        if (set.durable) await o.handle.sync();
        const h = o.handle;
        o.handle = null;
        // The file's bytes are on disk: its name may move while it is being closed.
        await Promise.all([closeFile(h), o.drive.commit(dataDir, dataDir)]);
      } catch (e) {
        o.drive.fail(e);
        o.ok = false;
        const h = o.handle;
        o.handle = null;
        if (h) await closeFile(h).catch(() => undefined);
      }
    }));
    const failedSlots = await keepQuorum(set, drives, outs.map((o) => o.ok), dataDir);
    return { size, md5: await md5Digest, crc32c: wholeCrc, dataDir, failedSlots };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/**
 * The whole body is one block: each drive's shard file is written, synced and committed by one
 * task (Drive.writeOneFrame). Same outcome and quorum rule as the streaming path.
 */
async function writeOneBlock(set: ErasureSet, ec: ErasureLayout, drives: Drive[], dataDir: string, buf: Buffer, len: number,
  md5: ReturnType<typeof md5Pool.open> | null): Promise<Omit<WrittenData, 'size' | 'dataDir'>> {
  const hashed = md5 ? md5.update(buf, len).then(() => md5.digest()) : Promise.resolve(Buffer.alloc(0));
  const { S, shardOf, encoded } = encodeBlock(set, ec, buf, len);
  const crcs = await Promise.all(drives.map(async (d, i): Promise<number | undefined> => {
    if (i >= ec.data) await encoded;
    if (!d.online) return undefined;
    try {
      return await d.writeOneFrame(dataDir, shardOf(i));
    } catch (e) {
      d.fail(e);
      await d.removeTmp(dataDir);
      return undefined;
    }
  }));
  await encoded;
  const failedSlots = await keepQuorum(set, drives, crcs.map((c) => c !== undefined), dataDir);
  const crc32c = await blockCrc(crcs, ec.data, S, len, buf);
  const md5Digest = await hashed;
  giveBlock(buf);
  return { md5: md5Digest, crc32c, failedSlots };
}

/**
 * A block cut into D data shards (zero-padded to equal size) and P parity shards, encoded on the
 * pool. `shards`: all of them, shard i the i-th slice of S bytes — in `buf` itself when it has
 * room for the parity after the data (writeShards' blocks do), else in a new buffer.
 */
function encodeBlock(set: ErasureSet, ec: ErasureLayout, buf: Buffer, len: number): { S: number; shards: Buffer; shardOf: (i: number) => Buffer; encoded: Promise<void> } {
  const S = set.erasure.shardSize(len);
  const shards = padTo(buf, len, S * ec.data, S * (ec.data + ec.parity));
  const shardOf = (i: number) => shards.subarray(i * S, (i + 1) * S);
  return { S, shards, shardOf, encoded: set.erasure.encode(shards.subarray(0, S * ec.data), shards.subarray(S * ec.data), S) };
}

/**
 * The write stands on the drives that committed (`ok[i]`, drive i) if they reach the write
 * quorum: resolves to the slots that missed it (to heal). Below quorum, what was committed is
 * removed and the write fails.
 */
async function keepQuorum(set: ErasureSet, drives: Drive[], ok: boolean[], dataDir: string): Promise<number[]> {
  const committed = drives.filter((_, i) => ok[i]);
  if (committed.length < set.writeQuorum) {
    await Promise.all(committed.map((d) => d.remove(dataDir).catch(() => undefined)));
    throw quorumError(committed.length, set.writeQuorum);
  }
  return ok.map((g, i) => (g ? -1 : i)).filter((i) => i >= 0);
}

/**
 * A block's CRC32C: combined from its data-shard frames' CRCs when the block has no padding, else
 * (the last block) from its bytes, both off the event loop.
 */
async function blockCrc(crcs: (number | undefined)[], D: number, S: number, len: number, buf: Buffer): Promise<number> {
  if (S * D !== len) return crc32cAsync(buf.subarray(0, len));
  let c = 0;
  for (let i = 0; i < D; i++) c = crc32cCombine(c, crcs[i] ?? (await crc32cAsync(buf.subarray(i * S, (i + 1) * S))), S);
  return c;
}

/** `len` bytes of `buf` zero-padded to `padded`, in a view of `total` bytes (of `buf` when it is big enough). */
function padTo(buf: Buffer, len: number, padded: number, total: number): Buffer {
  if (buf.length >= total) {
    buf.fill(0, len, padded);
    return buf.subarray(0, total);
  }
  const out = Buffer.allocUnsafe(total);
  buf.copy(out, 0, 0, len);
  out.fill(0, len, padded);
  return out;
}

function quorumError(have: number, need: number): StorageError {
  return new StorageError('InsufficientWriteQuorum', `${have} drives accepted the write, quorum is ${need}`);
}
