// The wire format between HTTP worker processes and the index owner (see index-owner.ts):
// length-prefixed binary frames on one Unix-domain socket per worker, many requests in flight.
//   frame = u32 length of the rest | u8 op | u32 id | fields
//   field = u32 length | bytes     (length 0xFFFFFFFF: absent, e.g. a key with no value)
// id 0 means "no reply wanted". Keys and values travel as raw bytes: no JSON on the hot ops.
import type { Socket } from 'node:net';

export const enum Op {
  // worker → owner
  Get = 1, GetMany = 2, Batch = 3, IterOpen = 4, IterNext = 5, IterSeek = 6, IterClose = 7,
  Lock = 8, Unlock = 9, Heal = 10, Free = 11, Call = 12, EpochAnswer = 13, MetricsAnswer = 14, Ack = 15, GetRecord = 16, Commit = 17, Hello = 18,
  Forget = 19,
  // owner → worker
  Invalidate = 20, EpochQuery = 21, State = 22, MetricsQuery = 23, DropKeys = 24,
  // replies, either way
  Ok = 100, Err = 101,
}

const ABSENT = 0xffffffff;

export function frame(op: Op, id: number, fields: (Buffer | undefined)[]): Buffer[] {
  let len = 5;
  for (const f of fields) len += 4 + (f ? f.length : 0);
  const head = Buffer.allocUnsafe(9 + fields.length * 4);
  head.writeUInt32LE(len, 0);
  head[4] = op;
  head.writeUInt32LE(id, 5);
  // Field headers are interleaved with their bytes: collect [hdr, bytes, hdr, bytes, ...].
  const out: Buffer[] = [head.subarray(0, 9)];
  let off = 9;
  for (const f of fields) {
    const h = head.subarray(off, off + 4);
    h.writeUInt32LE(f ? f.length : ABSENT, 0);
    off += 4;
    out.push(h);
    if (f && f.length) out.push(f);
  }
  return out;
}

export function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(n, 0);
  return b;
}

export function json(v: unknown): Buffer { return Buffer.from(JSON.stringify(v), 'utf8'); }

export function parseJson<T>(b: Buffer | undefined): T { return JSON.parse(b ? b.toString('utf8') : 'null') as T; }

export interface Frame { op: Op; id: number; fields: (Buffer | undefined)[] }

/** Splits the byte stream of a socket into frames. Fields are copies: they outlive the chunk. */
export class FrameReader {
  private pending: Buffer[] = [];
  private have = 0;

  constructor(private readonly onFrame: (f: Frame) => void) {}

  push(chunk: Buffer): void {
    this.pending.push(chunk);
    this.have += chunk.length;
    while (this.have >= 4) {
      const first = this.pending[0].length >= 4 ? this.pending[0] : this.take(4, false);
      const len = first.readUInt32LE(0);
      if (this.have < 4 + len) return;
      const body = this.take(4 + len, true).subarray(4);
      this.onFrame(decode(body));
    }
  }

  /** The next n bytes as one buffer; consumed only if `consume`. */
  private take(n: number, consume: boolean): Buffer {
    const whole = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    this.pending = [whole];
    if (!consume) return whole;
    const out = Buffer.from(whole.subarray(0, n));
    const rest = whole.subarray(n);
    this.pending = rest.length ? [rest] : [];
    this.have -= n;
    return out;
  }
}

function decode(body: Buffer): Frame {
  const op = body[0] as Op;
  const id = body.readUInt32LE(1);
  const fields: (Buffer | undefined)[] = [];
  let off = 5;
  while (off < body.length) {
    const n = body.readUInt32LE(off);
    off += 4;
    if (n === ABSENT) { fields.push(undefined); continue; }
    fields.push(body.subarray(off, off + n));
    off += n;
  }
  return { op, id, fields };
}

/**
 * Frames written in one turn of the event loop leave in one writev: under load a worker's
 * requests and the owner's replies batch into few syscalls.
 */
export class FrameWriter {
  private queued: Buffer[] = [];
  private scheduled = false;

  constructor(private readonly socket: Socket) {}

  send(op: Op, id: number, fields: (Buffer | undefined)[]): void {
    for (const b of frame(op, id, fields)) this.queued.push(b);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  private flush = (): void => {
    this.scheduled = false;
    const bufs = this.queued;
    this.queued = [];
    if (bufs.length === 0 || this.socket.destroyed) return;
    // Corked writes leave as one writev, without copying the values into one buffer.
    this.socket.cork();
    for (const b of bufs) this.socket.write(b);
    this.socket.uncork();
  };
}

/**
 * A Unix-domain socket name private to this primary process: in Linux's abstract namespace
 * (no file to clean up), written '@name' so it can travel in an environment variable.
 */
export function socketName(tmp: string): string {
  const id = `kiln-index-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  return process.platform === 'linux' ? `@${id}` : `${tmp}/${id}.sock`;
}

/** The path net.listen / net.connect take for a socketName(). */
export function socketPath(name: string): string { return name.startsWith('@') ? `\0${name.slice(1)}` : name; }
