// Erasure blocks of a PUT live in SharedArrayBuffers so the MD5 worker (md5-pool.ts) reads them
// in place, and are recycled: a fresh 1 MiB buffer per block costs a page fault per 4 KiB page.
// A block returns to the pool only once every user (thread-pool writes, MD5 worker) is done.
const KEEP = 64;
const free = new Map<number, Buffer[]>();

export function takeBlock(size: number): Buffer {
  return free.get(size)?.pop() ?? Buffer.from(new SharedArrayBuffer(size));
}

export function giveBlock(block: Buffer): void {
  let list = free.get(block.length);
  if (!list) free.set(block.length, (list = []));
  if (list.length < KEEP) list.push(block);
}
