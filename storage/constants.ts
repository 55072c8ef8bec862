// Named limits of the storage engine. Everything that bounds memory or work lives here.

export const MiB = 1024 * 1024;

/** Erasure block: the body is cut into blocks of this size, each encoded on its own. */
export const DEFAULT_BLOCK_SIZE = 1 * MiB;

/**
 * Objects up to this size live inline in the index: one PUT costs one index batch, no shard
 * files, and a GET is served from the index (and its read cache). The price is LevelDB's
 * compaction, which rewrites every inline byte on each of the replicas (one per drive) again
 * and again. Sustained PUTs (bench/inline-threshold.ts, 20 s per cell, 2+2, durable, 8 in
 * flight, this 2-core box): inline / shard files, PUT/s and bytes written to disk per byte PUT:
 * 4 KiB 3,595 / 474 (17x / 13x), 32 KiB 821 / 332 (15x / 3.6x), 64 KiB 395 / 306 (18x / 2.9x),
 * 128 KiB 224 / 304 (17x / 2.4x); GETs ran 1.5-2.5x faster inline at every size. Over HTTP
 * (ab.js, 8 connections) inline objects PUT and GET ~2.8-3.5x faster than shard files, but held
 * for a minute the index stalls its writers (LevelDB's level 0 waiting for its one compaction
 * thread): p99 40 ms at 32 KiB, 316 ms at 64 KiB, 1.5 s at 128 KiB (the threshold before; short
 * runs had hidden it: compaction was still owed). `kiln server --inline-threshold` moves it
 * (bench/README.md has the tables). Measured before inline bodies moved to each replica's log
 * (value-log.ts), which takes them out of that compaction: to be measured again.
 */
export const DEFAULT_INLINE_THRESHOLD = 32 * 1024;

/** Bound on --inline-threshold: an index value stays well under LevelDB's block and file sizes. */
export const MAX_INLINE_THRESHOLD = 1024 * 1024;

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
