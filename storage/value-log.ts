// Each index replica's log (WiscKey's idea, plus a write-ahead log): every group commit of the
// replica is one record appended here (its ops, inline bodies in place), written with O_DSYNC when
// durable, then applied to LevelDB without a sync. LevelDB keeps a 17-byte pointer for an inline
// body instead of the bytes: its compaction rewrote every inline byte level after level on each
// replica (96 KiB written to disk per 4 KiB PUT, its one compaction thread the ceiling on small
// PUTs). After a crash, the records after the replica's last checkpoint are applied again.
//
// Invariants:
// - A record is on disk before LevelDB is written: LevelDB never names bytes the log lacks, and
//   anything LevelDB lost in a crash is in the log after the checkpoint.
// - A checkpoint is recorded only after LevelDB flushed (and synced) everything written before
//   the position it names; records from there on are replayed in order at open, and replaying
//   a record LevelDB already has is harmless (the same ops again, in the same order).
// - Every value read is checked against the CRC32C in its pointer before use; a bad or missing
//   one reads as undefined and the index tries another replica.
// - A segment is removed only when it lies before the checkpoint and no committed pointer names
//   it (its live bytes, counted from the index and kept by the index's writes, are zero).
// - Live counts saved at a clean close (`live.json`) are taken at open instead of that count only
//   if the segments are exactly those it names, at the sizes it names, and the index is at the
//   batch it names; the file is removed (synced) before anything is written, so a run that
//   crashes leaves none for the next open to trust. Otherwise the index counts them beside
//   serving (MetaIndex.countLive; `counting`), and compaction waits for that.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { crc32c } from './native';
import { crcOnce } from './bitrot';
import { fsyncDir, removeDurable, writeFileDurable } from './drive';

const write = promisify(fs.write);
const close = promisify(fs.close);

export const POINTER_BYTES = 17;
const POINTER_VERSION = 1;
/** New values go to a fresh segment once the active one is this big (smaller in tests). */
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** A closed segment whose live bytes fell to this share of its size is rewritten (its live values moved). */
export const COMPACT_LIVE_RATIO = 0.5;

export interface Pointer { segment: number; offset: number; length: number; crc: number }

export function encodePointer(p: Pointer): Buffer {
  const b = Buffer.allocUnsafe(POINTER_BYTES);
  b[0] = POINTER_VERSION;
  b.writeUInt32BE(p.segment, 1);
  b.writeUInt32BE(p.offset, 5);
  b.writeUInt32BE(p.length, 9);
  b.writeUInt32BE(p.crc >>> 0, 13);
  return b;
}

export function decodePointer(b: Buffer): Pointer | undefined {
  if (b.length !== POINTER_BYTES || b[0] !== POINTER_VERSION) return undefined;
  return { segment: b.readUInt32BE(1), offset: b.readUInt32BE(5), length: b.readUInt32BE(9), crc: b.readUInt32BE(13) };
}

interface Segment { id: number; fd: number; size: number; live: number }

export interface LogPosition { segment: number; offset: number }
/** An index op as given to the log: `inline` values are kept in the log and named by a pointer. */
export type LogOp = { type: 'put'; key: Buffer; value: Buffer; inline?: boolean } | { type: 'del'; key: Buffer };
export type StoredOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

// A record: [magic u32][body length u32][CRC32C of body u32][body]; body: [op count u32] then per
// op [kind u8][key length u16][key][value length u32][value].
const RECORD_MAGIC = 0x4b4c5631; // "KLV1"
const RECORD_HEADER = 12;
const KIND_DEL = 0;
const KIND_PUT = 1;
const KIND_VALUE = 2;
const EMPTY = Buffer.alloc(0);

function segmentFile(dir: string, id: number): string { return path.join(dir, `${id.toString(16).padStart(8, '0')}.seg`); }

/** What a clean close saves of a log: the index batch it ends at, each segment's [id, size, live bytes]. */
export interface SavedLive { batches: bigint; segments: [number, number, number][] }
const LIVE_FILE = 'live.json';

/** The value a pointer names in the value log at `dir`, read without opening the log (tools, tests). */
export function readPointer(dir: string, pointer: Buffer): Buffer | undefined {
  const p = decodePointer(pointer);
  if (!p) return undefined;
  let fd: number;
  try { fd = fs.openSync(segmentFile(dir, p.segment), 'r'); } catch { return undefined; }
  try {
    return readChecked(fd, p);
  } finally {
    fs.closeSync(fd);
  }
}

/** The bytes `p` names in the open segment `fd`, if whole and matching the pointer's CRC. */
function readChecked(fd: number, p: Pointer): Buffer | undefined {
  const buf = Buffer.allocUnsafe(p.length);
  try {
    if (fs.readSync(fd, buf, 0, p.length, p.offset) !== p.length) return undefined;
  } catch {
    return undefined;
  }
  return crcOnce(buf) === p.crc ? buf : undefined;
}

export class ValueLog {
  private readonly segments = new Map<number, Segment>();
  private active!: Segment;
  /** Segments whose values are being moved (see MetaIndex's compaction): never chosen twice. */
  readonly compacting = new Set<number>();
  /**
   * The live counts are being taken from the index beside writes: a release may come before
   * the count's retain of the same pointer, so counts may dip below zero meanwhile.
   */
  counting = false;

  private constructor(readonly dir: string, private readonly durable: boolean, private readonly segmentBytes: number) {}

  static async open(dir: string, durable: boolean, segmentBytes = DEFAULT_SEGMENT_BYTES): Promise<ValueLog> {
    await fs.promises.mkdir(dir, { recursive: true });
    const log = new ValueLog(dir, durable, segmentBytes);
    const ids = (await fs.promises.readdir(dir)).filter((n) => /^[0-9a-f]{8}\.seg$/.test(n)).map((n) => parseInt(n, 16)).sort((a, b) => a - b);
    for (const id of ids) {
      const fd = fs.openSync(log.file(id), 'r+');
      log.segments.set(id, { id, fd, size: fs.fstatSync(fd).size, live: 0 });
    }
    return log;
  }

  /**
   * Start appending, in a new segment: the last one may end in a record a crash cut, and
   * records must follow each other without a gap (the replay stops at the first bad one).
   */
  async start(): Promise<void> {
    const ids = [...this.segments.keys()];
    const last = ids.length ? this.segments.get(Math.max(...ids))! : undefined;
    // An empty last segment (the previous run wrote nothing) cannot end in a cut record: it is
    // reused, so restarts without writes do not pile up empty segments (each an open file).
    if (last && last.size === 0) {
      this.segments.delete(last.id);
      await close(last.fd).catch(() => undefined);
      await this.rotate(last.id);
      return;
    }
    await this.rotate(last ? last.id + 1 : 1);
  }

  /** Remove every segment (the replica is being rebuilt from another). */
  async reset(): Promise<void> {
    for (const s of this.segments.values()) { await close(s.fd).catch(() => undefined); await fs.promises.rm(this.file(s.id), { force: true }); }
    this.segments.clear();
    this.compacting.clear();
    await this.rotate(1);
  }

  private file(id: number): string { return segmentFile(this.dir, id); }

  private async rotate(id: number): Promise<void> {
    // Durable: O_DSYNC makes each record's write return once it is on disk, one thread-pool
    // task per group commit instead of a write and an fdatasync (each task costs the event loop).
    const { O_RDWR, O_CREAT, O_TRUNC, O_DSYNC } = fs.constants;
    const fd = fs.openSync(this.file(id), O_RDWR | O_CREAT | O_TRUNC | (this.durable ? O_DSYNC : 0));
    // The new name must survive a crash before any pointer into it is committed.
    if (this.durable) await fsyncDir(this.dir);
    this.active = { id, fd, size: 0, live: 0 };
    this.segments.set(id, this.active);
  }

  /** Where the next record goes: every record before it has been written. */
  position(): LogPosition { return { segment: this.active.id, offset: this.active.size }; }

  /**
   * Append one record holding `ops` (one write; on disk when it returns, if durable) and resolve to the ops
   * as LevelDB stores them: inline values replaced by pointers into the record. A record stays
   * in one segment (a new one is started when it would overflow the active one). Callers
   * serialise their writes (one writer per replica).
   */
  async write(ops: LogOp[]): Promise<StoredOp[]> {
    // One buffer per record, one CRC over it: per-op buffers and CRC calls (four replicas, a few
    // ops per PUT) cost a small PUT ~75 us of event loop.
    let len = 4;
    for (const op of ops) len += 7 + op.key.length + (op.type === 'del' ? 0 : op.value.length);
    const rec = Buffer.allocUnsafe(RECORD_HEADER + len);
    rec.writeUInt32BE(ops.length, RECORD_HEADER);
    let at = RECORD_HEADER + 4;
    const out: StoredOp[] = new Array(ops.length);
    const values: { index: number; at: number; value: Buffer }[] = [];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      const value = op.type === 'del' ? EMPTY : op.value;
      rec[at] = op.type === 'del' ? KIND_DEL : op.inline ? KIND_VALUE : KIND_PUT;
      rec.writeUInt16BE(op.key.length, at + 1);
      op.key.copy(rec, at + 3);
      at += 3 + op.key.length;
      rec.writeUInt32BE(value.length, at);
      at += 4;
      value.copy(rec, at);
      if (op.type === 'put' && op.inline) values.push({ index: i, at, value });
      out[i] = op.type === 'del' ? op : { type: 'put', key: op.key, value };
      at += value.length;
    }
    rec.writeUInt32BE(RECORD_MAGIC, 0);
    rec.writeUInt32BE(len, 4);
    rec.writeUInt32BE(crc32c(rec.subarray(RECORD_HEADER)), 8);
    if (this.active.size > 0 && this.active.size + rec.length > this.segmentBytes) await this.rotate(this.active.id + 1);
    const s = this.active;
    const start = s.size;
    for (const v of values) {
      out[v.index] = { type: 'put', key: ops[v.index].key, value: encodePointer({ segment: s.id, offset: start + v.at, length: v.value.length, crc: crcOnce(v.value) }) };
      s.live += v.value.length;
    }
    s.size += rec.length;
    for (let done = 0; done < rec.length;) done += (await write(s.fd, rec, done, rec.length - done, start + done)).bytesWritten;
    return out;
  }

  /**
   * Replay the records from `from` to the end of the log, in order, through `apply` (ops as
   * LevelDB stores them). Each segment's records end at the first one that is torn or fails its
   * CRC: a crash cut it, and nothing after it was acknowledged.
   */
  async replay(from: LogPosition, apply: (ops: StoredOp[]) => Promise<void>): Promise<number> {
    let n = 0;
    for (const id of [...this.segments.keys()].sort((a, b) => a - b)) {
      if (id < from.segment) continue;
      const buf = fs.readFileSync(this.file(id));
      let at = id === from.segment ? from.offset : 0;
      while (at + RECORD_HEADER + 4 <= buf.length && buf.readUInt32BE(at) === RECORD_MAGIC) {
        const len = buf.readUInt32BE(at + 4);
        const body = at + RECORD_HEADER;
        if (body + len > buf.length || crc32c(buf.subarray(body, body + len)) !== buf.readUInt32BE(at + 8)) break;
        const ops: StoredOp[] = [];
        let p = body + 4;
        for (let i = buf.readUInt32BE(body); i > 0; i--) {
          const kind = buf[p];
          const key = Buffer.from(buf.subarray(p + 3, p + 3 + buf.readUInt16BE(p + 1)));
          p += 3 + key.length;
          const vlen = buf.readUInt32BE(p);
          p += 4;
          const value = buf.subarray(p, p + vlen);
          if (kind === KIND_DEL) ops.push({ type: 'del', key });
          else if (kind === KIND_PUT) ops.push({ type: 'put', key, value: Buffer.from(value) });
          else ops.push({ type: 'put', key, value: encodePointer({ segment: id, offset: p, length: vlen, crc: crc32c(value) }) });
          p += vlen;
        }
        await apply(ops);
        n++;
        at = body + len;
      }
    }
    return n;
  }

  /** The value a pointer names, checked against its CRC; undefined if missing, short or corrupt. */
  read(pointer: Buffer): Buffer | undefined {
    const p = decodePointer(pointer);
    const s = p && this.segments.get(p.segment);
    if (!p || !s || p.offset + p.length > s.size) return undefined;
    return readChecked(s.fd, p);
  }

  /** Whether a committed pointer names bytes this log has (used at open to find a damaged replica). */
  has(pointer: Buffer): boolean {
    const p = decodePointer(pointer);
    const s = p && this.segments.get(p.segment);
    return !!p && !!s && p.offset + p.length <= s.size;
  }

  /** A committed pointer exists (counted at open, or after a rebuild). */
  retain(pointer: Buffer): void {
    const p = decodePointer(pointer);
    const s = p && this.segments.get(p.segment);
    if (s) s.live += p!.length;
  }

  /** A committed pointer was deleted or moved: its bytes are garbage. */
  release(pointer: Buffer): void {
    const p = decodePointer(pointer);
    const s = p && this.segments.get(p.segment);
    if (s) s.live = this.counting ? s.live - p!.length : Math.max(0, s.live - p!.length);
  }

  /**
   * Closed segments worth compacting: no live bytes left, or live below COMPACT_LIVE_RATIO. Only
   * segments before `replayFrom` (the index's checkpoint): later ones hold records a restart replays.
   */
  victims(replayFrom: number): { empty: number[]; sparse: number[] } {
    const empty: number[] = [];
    const sparse: number[] = [];
    for (const s of this.segments.values()) {
      if (s === this.active || s.id >= replayFrom || this.compacting.has(s.id)) continue;
      if (s.live === 0) empty.push(s.id);
      else if (s.live < s.size * COMPACT_LIVE_RATIO) sparse.push(s.id);
    }
    return { empty, sparse };
  }

  live(id: number): number { return this.segments.get(id)?.live ?? 0; }

  get segmentCount(): number { return this.segments.size; }

  segmentOf(pointer: Buffer): number | undefined { return decodePointer(pointer)?.segment; }

  /** Delete a segment no committed pointer names any more. */
  async remove(id: number): Promise<void> {
    const s = this.segments.get(id);
    if (!s || s === this.active) return;
    this.segments.delete(id);
    this.compacting.delete(id);
    await close(s.fd).catch(() => undefined);
    await fs.promises.rm(this.file(id), { force: true });
  }

  /** Save every segment's size and live bytes, as at `batches` index batches (a clean close, after the last write). */
  async saveLive(batches: bigint): Promise<void> {
    const text = JSON.stringify({ batches: batches.toString(), segments: [...this.segments.values()].map((s) => [s.id, s.size, s.live]) });
    await writeFileDurable(path.join(this.dir, LIVE_FILE), text);
  }

  /** The counts a clean close saved, if any (unreadable: none); removed either way, durably. */
  async takeSavedLive(): Promise<SavedLive | undefined> {
    const file = path.join(this.dir, LIVE_FILE);
    let saved: SavedLive | undefined;
    try {
      const raw = JSON.parse(await fs.promises.readFile(file, 'utf8')) as { batches: string; segments: [number, number, number][] };
      saved = { batches: BigInt(raw.batches), segments: raw.segments };
    } catch { /* none, or not ours to trust */ }
    await removeDurable(file);
    return saved;
  }

  /**
   * Take saved live counts instead of counting them from the index (call before start()):
   * only if the segments on disk are exactly the saved ones at the saved sizes. False: nothing
   * taken, the caller counts.
   */
  adoptLive(saved: [number, number, number][]): boolean {
    if (saved.length !== this.segments.size) return false;
    for (const [id, size, live] of saved) {
      const s = this.segments.get(id);
      if (!s || s.size !== size || !Number.isSafeInteger(live) || live < 0 || live > size) return false;
    }
    for (const [id, , live] of saved) this.segments.get(id)!.live = live;
    return true;
  }

  /** Bytes on disk and bytes still referenced (admin status, tests). */
  usage(): { segments: number; bytes: number; live: number } {
    let bytes = 0, live = 0;
    for (const s of this.segments.values()) { bytes += s.size; live += s.live; }
    return { segments: this.segments.size, bytes, live };
  }

  async close(): Promise<void> {
    for (const s of this.segments.values()) await close(s.fd).catch(() => undefined);
    this.segments.clear();
  }
}
