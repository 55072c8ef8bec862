// Named limits of the storage engine. Everything that bounds memory or work lives here.

export const MiB = 1024 * 1024;

/** Erasure block: the body is cut into blocks of this size, each encoded on its own. */
export const DEFAULT_BLOCK_SIZE = 1 * MiB;

/**
 * Objects up to this size live inline in the index: one PUT costs one index batch, no shard
 * files. Measured (bench/inline-threshold.ts, 2+2, durable): at 4 KiB inline PUTs run ~2x the
 * shard-file rate; from 32 KiB up, inline values make LevelDB compact so much that GETs fall to a
 * tenth of the shard-file rate. MinIO's 128 KiB suits its per-object metadata files, not an LSM.
 */
export const DEFAULT_INLINE_THRESHOLD = 16 * 1024;

/** Size of the bitrot checksum (CRC32C, little-endian) that precedes every shard block on disk. */
export const BITROT_HEADER = 4;

export const MAX_DRIVES = 16;
export const MAX_KEY_BYTES = 1024;
export const MAX_PARTS = 10000;

/** How many encoded blocks a writer keeps in flight to the drives (bounds memory per PUT). */
export const WRITE_PIPELINE_DEPTH = 2;
/** How many blocks a reader prefetches ahead of the client (bounds memory per GET). */
export const READ_PREFETCH_BLOCKS = 2;

/** Upper bound on the heal queue; beyond it new entries are dropped and found again by a scrub. */
export const HEAL_QUEUE_MAX = 100000;

/** Keep incomplete multipart uploads this long before the expiry sweep aborts them. */
export const DEFAULT_UPLOAD_EXPIRY_MS = 7 * 24 * 3600 * 1000;

export function defaultParity(drives: number): number {
  if (drives <= 1) return 0;
  if (drives <= 3) return 1;
  if (drives <= 5) return 2;
  if (drives <= 7) return 3;
  return 4;
}
