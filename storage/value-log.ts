// The bodies of inline objects, kept out of LevelDB: one append-only value log per index replica
// (WiscKey's idea). LevelDB's compaction rewrote every inline byte level after level on each of the
// replicas (96 KiB written to disk per 4 KiB PUT, its one compaction thread the ceiling on small
// PUTs); the index now holds a 17-byte pointer and the bytes are written once per replica.
//
// Invariants:
// - A pointer is committed to LevelDB only after the bytes it names are written (and, durable,
//   fdatasynced): an index entry never names bytes that are not on disk.
// - Every read is checked against the CRC32C in the pointer before use; a bad or missing value
//   reads as undefined and the index tries another replica.
// - A segment is removed only once no committed pointer names it (its live bytes, counted from
//   the index at open and kept up to date by the index's writes, are zero) and the index writes
//   that moved or deleted its last values are synced.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { crc32c } from './native';
import { fsyncDir } from './drive';

const writev = promisify(fs.writev);
const fdatasync = promisify(fs.fdatasync);
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

function segmentFile(dir: string, id: number): string { return path.join(dir, `${id.toString(16).padStart(8, '0')}.seg`); }

/** The value a pointer names in the value log at `dir`, read without opening the log (tools, tests). */
export function readPointer(dir: string, pointer: Buffer): Buffer | undefined {
  const p = decodePointer(pointer);
  if (!p) return undefined;
  let fd: number;
  try { fd = fs.openSync(segmentFile(dir, p.segment), 'r'); } catch { return undefined; }
  try {
    const buf = Buffer.alloc(p.length);
    return fs.readSync(fd, buf, 0, p.length, p.offset) === p.length && crc32c(buf) === p.crc ? buf : undefined;
  } finally {
    fs.closeSync(fd);
  }
}

export class ValueLog {
  private readonly segments = new Map<number, Segment>();
  private active!: Segment;
  /** Segments whose values are being moved (see MetaIndex's compaction): never chosen twice. */
  readonly compacting = new Set<number>();

  private constructor(readonly dir: string, private readonly durable: boolean, private readonly segmentBytes: number) {}

  static async open(dir: string, durable: boolean, segmentBytes = DEFAULT_SEGMENT_BYTES): Promise<ValueLog> {
    await fs.promises.mkdir(dir, { recursive: true });
    const log = new ValueLog(dir, durable, segmentBytes);
    const ids = (await fs.promises.readdir(dir)).filter((n) => /^[0-9a-f]{8}\.seg$/.test(n)).map((n) => parseInt(n, 16)).sort((a, b) => a - b);
    for (const id of ids) {
      const fd = fs.openSync(log.file(id), 'r+');
      log.segments.set(id, { id, fd, size: fs.fstatSync(fd).size, live: 0 });
    }
    // Appends always go to a new segment after a restart: the old active one may end in bytes a
    // crash left unreferenced, which compaction reclaims like any garbage.
    await log.rotate(ids.length ? ids[ids.length - 1] + 1 : 1);
    return log;
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
    const fd = fs.openSync(this.file(id), 'w+');
    // The new name must survive a crash before any pointer into it is committed.
    if (this.durable) await fsyncDir(this.dir);
    this.active = { id, fd, size: 0, live: 0 };
    this.segments.set(id, this.active);
  }

  /**
   * Append values (one writev per segment touched) and, durable, fdatasync them; resolves to
   * their pointers. Callers serialise their appends (one writer per replica).
   */
  async append(values: Buffer[]): Promise<Buffer[]> {
    const out: Buffer[] = [];
    let run: Buffer[] = [];
    let runStart = this.active.size;
    const touched = new Set<Segment>();
    for (const v of values) {
      if (this.active.size > 0 && this.active.size + v.length > this.segmentBytes) {
        await this.flush(this.active, run, runStart, touched);
        await this.rotate(this.active.id + 1);
        run = [];
        runStart = 0;
      }
      out.push(encodePointer({ segment: this.active.id, offset: this.active.size, length: v.length, crc: crc32c(v) }));
      this.active.size += v.length;
      this.active.live += v.length;
      run.push(v);
    }
    await this.flush(this.active, run, runStart, touched);
    if (this.durable) for (const s of touched) await fdatasync(s.fd);
    return out;
  }

  private async flush(s: Segment, run: Buffer[], at: number, touched: Set<Segment>): Promise<void> {
    if (run.length === 0) return;
    touched.add(s);
    await writev(s.fd, run, at);
  }

  /** The value a pointer names, checked against its CRC; undefined if missing, short or corrupt. */
  read(pointer: Buffer): Buffer | undefined {
    const p = decodePointer(pointer);
    const s = p && this.segments.get(p.segment);
    if (!p || !s || p.offset + p.length > s.size) return undefined;
    const buf = Buffer.allocUnsafe(p.length);
    try {
      if (fs.readSync(s.fd, buf, 0, p.length, p.offset) !== p.length) return undefined;
    } catch {
      return undefined;
    }
    return crc32c(buf) === p.crc ? buf : undefined;
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
    if (s) s.live = Math.max(0, s.live - p!.length);
  }

  /** Closed segments worth compacting: no live bytes left, or live below COMPACT_LIVE_RATIO. */
  victims(): { empty: number[]; sparse: number[] } {
    const empty: number[] = [];
    const sparse: number[] = [];
    for (const s of this.segments.values()) {
      if (s === this.active || this.compacting.has(s.id)) continue;
      if (s.live === 0) empty.push(s.id);
      else if (s.live < s.size * COMPACT_LIVE_RATIO) sparse.push(s.id);
    }
    return { empty, sparse };
  }

  live(id: number): number { return this.segments.get(id)?.live ?? 0; }

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
