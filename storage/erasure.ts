// Reed-Solomon over GF(256), systematic: shards 0..D-1 are the data itself, so a healthy read
// never decodes. The math runs in the native @ronomon/reed-solomon addon on libuv's thread
// pool, off the event loop.
import RS = require('@ronomon/reed-solomon');

export class Erasure {
  private readonly ctx: unknown;

  constructor(readonly data: number, readonly parity: number, readonly blockSize: number) {
    if (data < 1 || parity < 0 || data > RS.MAX_K || parity > RS.MAX_M) {
      throw new Error(`unsupported erasure layout ${data}+${parity} (data 1..${RS.MAX_K}, parity 0..${RS.MAX_M})`);
    }
    this.ctx = parity > 0 ? RS.create(data, parity) : null;
  }

  get total(): number { return this.data + this.parity; }

  /** Bytes of one shard for a block of blockLen bytes: ceil(blockLen / D), rounded up to 8 (addon's rule). */
  shardSize(blockLen: number): number {
    const s = Math.ceil(blockLen / this.data);
    return (s + 7) & ~7;
  }

  /** Fill `parityBuf` (P*S bytes) from `dataBuf` (D*S bytes, zero padded). */
  encode(dataBuf: Buffer, parityBuf: Buffer, shard: number): Promise<void> {
    if (this.parity === 0) return Promise.resolve();
    let sources = 0;
    for (let i = 0; i < this.data; i++) sources |= 1 << i;
    let targets = 0;
    for (let i = this.data; i < this.total; i++) targets |= 1 << i;
    return this.run(sources, targets, dataBuf, parityBuf, shard);
  }

  /**
   * Rebuild the shards flagged in `missing` (indices 0..D+P-1) in place from the others.
   * At least D shards must be present; the caller has verified their checksums.
   */
  reconstruct(dataBuf: Buffer, parityBuf: Buffer, shard: number, missing: number[]): Promise<void> {
    if (missing.length === 0) return Promise.resolve();
    if (missing.length > this.parity) throw new Error(`cannot rebuild ${missing.length} shards with parity ${this.parity}`);
    let targets = 0;
    for (const i of missing) targets |= 1 << i;
    let sources = 0;
    for (let i = 0; i < this.total; i++) if (!(targets & (1 << i))) sources |= 1 << i;
    return this.run(sources, targets, dataBuf, parityBuf, shard);
  }

  private run(sources: number, targets: number, dataBuf: Buffer, parityBuf: Buffer, shard: number): Promise<void> {
    return new Promise((resolve, reject) => {
      RS.encode(this.ctx, sources, targets, dataBuf, 0, shard * this.data, parityBuf, 0, shard * this.parity,
        (err: Error | undefined) => (err ? reject(err) : resolve()));
    });
  }
}
