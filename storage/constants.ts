// Named limits of the storage engine. Everything that bounds memory or work lives here.

export const MiB = 1024 * 1024;

/** Erasure block: the body is cut into blocks of this size, each encoded on its own. */
export const DEFAULT_BLOCK_SIZE = 1 * MiB;

/**
 * Objects up to this size live inline: their bytes go with the index batch into every replica's
 * log (value-log.ts), replicated on every drive, instead of erasure-coded shard files. One PUT
 * costs one group commit, no files; a GET is one read from the log (or the read cache). The price
 * is space and disk writes: N copies instead of (D+P)/D. Sustained PUTs for 20 s per cell
 * (bench/inline-threshold.ts, 2+2, durable, 8 in flight, this 2-core box), inline / shard files,
 * PUT/s, GET/s and bytes written to disk per byte PUT: 32 KiB 1,499 / 344, 17,251 / 7,299,
 * 4.7x / 3.6x; 64 KiB 994 / 368, 13,289 / 5,789, 4.4x / 2.8x; 128 KiB 531 / 263, 9,720 /
 * 5,024, 4.3x / 2.4x; 256 KiB 316 / 251, 6,128 / 5,631. Over HTTP for a minute (ab.js, 8
 * connections) 128 KiB inline PUTs ran 393/s, p99 42 ms, against 240/s, p99 59 ms in shard files,
 * and GETs 3,389 vs 1,679/s. Before the log, LevelDB's compaction rewrote inline bodies 13-20
 * times and stalled writers (p99 1.5 s at 128 KiB), which had pushed this down to 32 KiB. 128 KiB
 * is also MinIO's inline limit. `kiln server --inline-threshold` moves it (bench/README.md).
 */
export const DEFAULT_INLINE_THRESHOLD = 128 * 1024;

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
