// MD5 (the S3 ETag) is the slowest hash on the PUT path (~460-800 MB/s per core) and is strictly
// sequential per object. Computing it on the event loop would serialise every PUT behind one
// core; instead each large body's blocks go to one of a few worker threads, which hash while the
// main thread receives and the thread pool encodes and writes. Blocks live in SharedArrayBuffers
// (block-pool.ts), so nothing is copied to the worker: each block is acknowledged once hashed and
// only then reused, and a writer waits when more than MAX_OUTSTANDING bytes are unhashed, so
// memory per PUT stays bounded (invariant 5).
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';

const MAX_OUTSTANDING = 8 * 1024 * 1024;

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'update') {
    let h = hashes.get(m.id);
    if (!h) { h = createHash('md5'); hashes.set(m.id, h); }
    h.update(new Uint8Array(m.buf, m.off, m.len));
    parentPort.postMessage({ id: m.id, acked: m.len });
  } else if (m.op === 'digest') {
    const h = hashes.get(m.id) || createHash('md5');
    hashes.delete(m.id);
    const d = h.digest();
    parentPort.postMessage({ id: m.id, digest: d.buffer.slice(d.byteOffset, d.byteOffset + d.length) });
  } else if (m.op === 'drop') {
    hashes.delete(m.id);
  }
});
`;

class Md5Pool {
  private workers: Worker[] = [];
  private threads = Math.max(1, Math.min(8, availableParallelism()));
  private next = 0;
  private seq = 0;
  readonly open_ = new Map<number, OffloadedMd5>();

  private worker(): Worker {
    if (this.workers.length === 0) {
      for (let i = 0; i < this.threads; i++) {
        const w = new Worker(WORKER_SOURCE, { eval: true });
        w.on('message', (m: { id: number; digest?: ArrayBuffer; acked?: number }) => {
          const h = this.open_.get(m.id);
          if (m.acked !== undefined) { h?.acked(m.acked); return; }
          this.open_.delete(m.id);
          this.idleCheck();
          h?.done(Buffer.from(m.digest!));
        });
        w.unref();
        this.workers.push(w);
      }
    }
    return this.workers[this.next++ % this.workers.length];
  }

  /**
   * How many hashing threads this process starts (before its first large body). With
   * `--workers N` each process takes its share of the cores, not all of them.
   */
  setThreads(n: number): void {
    if (this.workers.length === 0) this.threads = Math.max(1, Math.min(8, n));
  }

  /** Idle workers must not keep the process alive; busy ones must (flush/digest ref them). */
  idleCheck(): void {
    if (this.open_.size === 0) for (const x of this.workers) x.unref();
  }

  /** A streaming MD5 computed off the event loop. */
  open(): OffloadedMd5 {
    const h = new OffloadedMd5(this.worker(), ++this.seq, this);
    this.open_.set(h.id, h);
    return h;
  }
}

export class OffloadedMd5 {
  private outstanding = 0;
  private acks: (() => void)[] = [];
  private wakeups: (() => void)[] = [];
  private finish?: (d: Buffer) => void;

  constructor(private readonly w: Worker, readonly id: number, private readonly pool: Md5Pool) {}

  /**
   * Hash `len` bytes of a block living in a SharedArrayBuffer, in order with earlier blocks.
   * Resolves once the worker is done with the bytes (the block may then be reused).
   */
  update(block: Buffer, len: number): Promise<void> {
    if (!(block.buffer instanceof SharedArrayBuffer)) throw new TypeError('MD5 blocks must live in a SharedArrayBuffer');
    this.outstanding += len;
    this.w.ref();
    this.w.postMessage({ op: 'update', id: this.id, buf: block.buffer, off: block.byteOffset, len });
    return new Promise((resolve) => this.acks.push(resolve));
  }

  /** Resolves once the worker has caught up enough; the writer awaits it between blocks. */
  backlog(): Promise<void> | undefined {
    if (this.outstanding <= MAX_OUTSTANDING) return undefined;
    return new Promise((resolve) => this.wakeups.push(resolve));
  }

  acked(n: number): void {
    this.outstanding -= n;
    this.acks.shift()?.();
    if (this.outstanding <= MAX_OUTSTANDING) for (const f of this.wakeups.splice(0)) f();
  }

  done(d: Buffer): void { this.finish?.(d); }

  digest(): Promise<Buffer> {
    return new Promise((resolve) => {
      this.finish = resolve;
      this.w.ref();
      this.w.postMessage({ op: 'digest', id: this.id });
    });
  }

  drop(): void {
    this.pool.open_.delete(this.id);
    for (const f of this.wakeups.splice(0)) f();
    this.w.postMessage({ op: 'drop', id: this.id });
    this.pool.idleCheck();
  }
}

export const md5Pool = new Md5Pool();
