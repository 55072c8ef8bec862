// Every shard block on disk is framed as [CRC32C of the block, 4 bytes LE][block bytes].
// A reader checks the frame before a byte of the block is used (invariant 3); the frames are
// read, checked and written by native.ts (readFrame, readBlock, writeFrame).
import { crc32c } from './native';
import { BITROT_HEADER } from './constants';

export function crc(buf: Buffer, initial = 0): number {
  return crc32c(buf, initial);
}

// CRC32C of Buffers that are never written again (inline bodies given to or read from the index
// logs), computed once per Buffer: four replicas log the same body, and a body the log checked
// on read is not checked again against its part record.
const known = new WeakMap<Buffer, number>();
export function crcOnce(buf: Buffer): number {
  let c = known.get(buf);
  if (c === undefined) known.set(buf, (c = crc32c(buf)));
  return c;
}

/** `c` is the CRC32C of `buf`, computed on the way in: crcOnce need not compute it. */
export function knownCrc(buf: Buffer, c: number): void { known.set(buf, c >>> 0); }

/** Offset of block `index` inside a shard file whose full blocks have shard size `fullShard`. */
export function frameOffset(index: number, fullShard: number): number {
  return index * (BITROT_HEADER + fullShard);
}

/** Size of a shard file holding `size` object bytes. */
export function shardFileSize(size: number, blockSize: number, shardOf: (len: number) => number): number {
  const full = Math.floor(size / blockSize);
  const rest = size % blockSize;
  return full * (BITROT_HEADER + shardOf(blockSize)) + (rest ? BITROT_HEADER + shardOf(rest) : 0);
}

/** Base64 of a CRC32C value in the big-endian byte order S3 uses in x-amz-checksum-crc32c. */
export function crcBase64(v: number): string {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v >>> 0, 0);
  return b.toString('base64');
}
