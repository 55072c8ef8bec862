// Erasure blocks live in SharedArrayBuffers so the MD5 worker (md5-pool.ts) reads a PUT's blocks
// in place, and are recycled: a fresh 1 MiB buffer per block costs a page fault per 4 KiB page,
// and on a GET stream one allocation per block also made V8 collect garbage about every 64 MiB
// of external memory (a fifth of a 64 MiB GET's event loop). A block returns to the pool only
// once every user (thread-pool reads and writes, MD5 worker, the socket) is done with it.
const KEEP = 64;
const free = new Map<number, Buffer[]>();
// Blocks handed out and not back yet: giving one back twice would lend it to two users at once.
const lent = new WeakSet<ArrayBufferLike>();

let reused = 0;

export function takeBlock(size: number): Buffer {
  const kept = free.get(size)?.pop();
  if (kept) reused++;
  const block = kept ?? Buffer.from(new SharedArrayBuffer(size));
  lent.add(block.buffer);
  return block;
}

/** How many blocks were handed out again (tests: recycling did happen). */
export function reuseCount(): number { return reused; }

/**
 * Give back the block `view` lies in (the block itself or any slice of it). Anything else — a
 * buffer not from the pool, a block given back already — is ignored, so a caller may hand back
 * whatever it was given without knowing where it came from.
 */
export function giveBlock(view: Buffer): void {
  const ab = view.buffer;
  if (!lent.delete(ab)) return;
  let list = free.get(ab.byteLength);
  if (!list) free.set(ab.byteLength, (list = []));
  if (list.length < KEEP) list.push(view.byteOffset === 0 && view.length === ab.byteLength ? view : Buffer.from(ab));
}
