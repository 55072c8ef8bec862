// MD5 (the S3 ETag) is the slowest hash on the PUT path (~460 MB/s per core) and is strictly
// sequential per object. Computing it on the event loop would serialise every PUT behind one
// core; instead each large body streams its blocks to one of a few worker threads, which hash
// while the main thread encodes and writes.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'update') {
    let h = hashes.get(m.id);
    if (!h) { h = createHash('md5'); hashes.set(m.id, h); }
    h.update(new Uint8Array(m.buf, m.off, m.len));
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
  private next = 0;
  private seq = 0;
  private waiting = new Map<number, (d: Buffer) => void>();

  private worker(): Worker {
    if (this.workers.length === 0) {
      const n = Math.max(1, Math.min(4, availableParallelism() - 1));
      for (let i = 0; i < n; i++) {
        const w = new Worker(WORKER_SOURCE, { eval: true });
        w.on('message', (m: { id: number; digest: ArrayBuffer }) => {
          const cb = this.waiting.get(m.id);
          this.waiting.delete(m.id);
          // Idle workers must not keep the process alive; busy ones must (see digest()).
          if (this.waiting.size === 0) for (const x of this.workers) x.unref();
          cb?.(Buffer.from(m.digest));
        });
        w.unref();
        this.workers.push(w);
      }
    }
    return this.workers[this.next++ % this.workers.length];
  }

  /** A streaming MD5 computed off the event loop. */
  open(): OffloadedMd5 {
    return new OffloadedMd5(this.worker(), ++this.seq, this.waiting);
  }
}

export class OffloadedMd5 {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private static readonly BATCH = 1024 * 1024;

  constructor(private readonly w: Worker, private readonly id: number, private readonly waiting: Map<number, (d: Buffer) => void>) {}

  update(b: Buffer): void {
    this.pending.push(b);
    this.pendingLen += b.length;
    if (this.pendingLen >= OffloadedMd5.BATCH) this.flush();
  }

  private flush(): void {
    if (this.pendingLen === 0) return;
    // One copy into a fresh buffer that is transferred (not cloned) to the worker.
    const ab = new ArrayBuffer(this.pendingLen);
    const view = Buffer.from(ab);
    let off = 0;
    for (const p of this.pending) { p.copy(view, off); off += p.length; }
    this.w.postMessage({ op: 'update', id: this.id, buf: ab, off: 0, len: this.pendingLen }, [ab]);
    this.pending = [];
    this.pendingLen = 0;
  }

  digest(): Promise<Buffer> {
    this.flush();
    return new Promise((resolve) => {
      this.waiting.set(this.id, resolve);
      this.w.ref();
      this.w.postMessage({ op: 'digest', id: this.id });
    });
  }

  drop(): void {
    this.pending = [];
    this.w.postMessage({ op: 'drop', id: this.id });
  }
}

export const md5Pool = new Md5Pool();
