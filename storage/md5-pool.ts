// MD5 (the S3 ETag) is the slowest hash on the PUT path (~460-800 MB/s per core) and is strictly
// sequential per object. Computing it on the event loop would serialise every PUT behind one
// core; instead each large body streams its blocks to one of a few worker threads, which hash
// while the main thread encodes and writes. Each batch is acknowledged, and a writer waits when
// more than MAX_OUTSTANDING bytes are unhashed, so memory per PUT stays bounded (invariant 5).
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';

const BATCH = 1024 * 1024;
const MAX_OUTSTANDING = 8 * 1024 * 1024;

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'update') {
    let h = hashes.get(m.id);
    if (!h) { h = createHash('md5'); hashes.set(m.id, h); }
    h.update(new Uint8Array(m.buf, 0, m.len));
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
  private next = 0;
  private seq = 0;
  readonly open_ = new Map<number, OffloadedMd5>();

  private worker(): Worker {
    if (this.workers.length === 0) {
      const n = Math.max(1, Math.min(4, availableParallelism() - 1));
      for (let i = 0; i < n; i++) {
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
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private outstanding = 0;
  private wakeups: (() => void)[] = [];
  private finish?: (d: Buffer) => void;

  constructor(private readonly w: Worker, readonly id: number, private readonly pool: Md5Pool) {}

  update(b: Buffer): void {
    this.pending.push(b);
    this.pendingLen += b.length;
    if (this.pendingLen >= BATCH) this.flush();
  }

  /** Resolves once the worker has caught up enough; the writer awaits it between chunks. */
  backlog(): Promise<void> | undefined {
    if (this.outstanding <= MAX_OUTSTANDING) return undefined;
    return new Promise((resolve) => this.wakeups.push(resolve));
  }

  acked(n: number): void {
    this.outstanding -= n;
    if (this.outstanding <= MAX_OUTSTANDING) for (const f of this.wakeups.splice(0)) f();
  }

  done(d: Buffer): void { this.finish?.(d); }

  private flush(): void {
    if (this.pendingLen === 0) return;
    // One copy into a fresh buffer that is transferred (not cloned) to the worker.
    const ab = new ArrayBuffer(this.pendingLen);
    const view = Buffer.from(ab);
    let off = 0;
    for (const p of this.pending) { p.copy(view, off); off += p.length; }
    this.outstanding += this.pendingLen;
    this.w.ref();
    this.w.postMessage({ op: 'update', id: this.id, buf: ab, len: this.pendingLen }, [ab]);
    this.pending = [];
    this.pendingLen = 0;
  }

  digest(): Promise<Buffer> {
    this.flush();
    return new Promise((resolve) => {
      this.finish = resolve;
      this.w.ref();
      this.w.postMessage({ op: 'digest', id: this.id });
    });
  }

  drop(): void {
    this.pending = [];
    this.pool.open_.delete(this.id);
    for (const f of this.wakeups.splice(0)) f();
    this.w.postMessage({ op: 'drop', id: this.id });
    this.pool.idleCheck();
  }
}

export const md5Pool = new Md5Pool();
