// Named limits of the storage engine. Everything that bounds memory or work lives here.

export const MiB = 1024 * 1024;

/** Erasure block: the body is cut into blocks of this size, each encoded on its own. */
export const DEFAULT_BLOCK_SIZE = 1 * MiB;

/**
 * Objects up to this size live inline in the index: one PUT costs one index batch, no shard
 * files. Measured with bench/inline-threshold.ts (2+2, durable, 8 in flight, this 2-core box):
 * inline PUTs run 1.4-4x the shard-file rate from 4 KiB to 256 KiB and GETs are on par or better
 * up to 128 KiB (4 KiB: 2,444 vs 618 PUT/s, 17,199 vs 7,182 GET/s; 128 KiB: 466 vs 243 PUT/s,
 * 8,433 vs 5,446 GET/s). Beyond 128 KiB the index replicas (one per drive) cost more space than
 * erasure coding, so that is where the threshold stays.
 */
export const DEFAULT_INLINE_THRESHOLD = 128 * 1024;

/** Size of the bitrot checksum (CRC32C, little-endian) that precedes every shard block on disk. */
export const BITROT_HEADER = 4;

export const MAX_DRIVES = 16;
export const MAX_KEY_BYTES = 1024;
export const MAX_PARTS = 10000;

/** How many encoded blocks a writer keeps in flight to the drives (bounds memory per PUT). */
export const WRITE_PIPELINE_DEPTH = 2;
/** How many blocks a reader prefetches ahead of the client (bounds memory per GET). */
export const READ_PREFETCH_BLOCKS = 4;

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
