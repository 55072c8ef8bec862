// The drives of one deployment, their erasure layout and the quorum rules (invariant 2):
// reads need any D healthy shards; writes need D (+1 when D == P) drives to commit.
import { Drive } from './drive';
import { Erasure } from './erasure';
import { ErasureLayout } from './records';
import { crc } from './bitrot';

export class ErasureSet {
  readonly erasure: Erasure;

  constructor(readonly drives: Drive[], data: number, parity: number, readonly blockSize: number, readonly durable: boolean) {
    if (data + parity !== drives.length) throw new Error(`layout ${data}+${parity} needs ${data + parity} drives, have ${drives.length}`);
    this.erasure = new Erasure(data, parity, blockSize);
  }

  get data(): number { return this.erasure.data; }
  get parity(): number { return this.erasure.parity; }
  get writeQuorum(): number { return this.data + (this.data === this.parity ? 1 : 0); }
  get readQuorum(): number { return this.data; }
  get onlineCount(): number { return this.drives.filter((d) => d.online).length; }
  get canWrite(): boolean { return this.onlineCount >= this.writeQuorum; }

  /** Shard placement rotates with the object's name so load spreads over all drives. */
  layoutFor(bucket: string, objectKey: string): ErasureLayout {
    const dist = crc(Buffer.from(`${bucket}/${objectKey}`, 'utf8')) % this.drives.length;
    return { data: this.data, parity: this.parity, blockSize: this.blockSize, dist };
  }

  /** The drive holding shard `i` of an object laid out with `ec`. */
  driveFor(ec: ErasureLayout, i: number): Drive {
    return this.drives[(ec.dist + i) % this.drives.length];
  }
}
