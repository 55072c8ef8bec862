// Multipart uploads. Each part is stored as its own data dir (or inline), exactly like a PUT
// body; completing an upload only writes metadata: the object record lists the chosen parts'
// data dirs in order. No byte is copied. Parts left out of the completion, aborted uploads and
// expired uploads are freed.
import { createHash } from 'node:crypto';
import { ObjectStore, Body, PutOptions, newId, randomToken, stripQuotes } from './object-store';
import { StorageError } from './errors';
import { IndexOp } from './meta-index';
import { crc, crcBase64 } from './bitrot';
import {
  UploadRecord, PartRecord, ObjectRecord, ErasureLayout, key, keyPrefix, prefixEnd, decodeJson, encodeJson,
  NS_UPLOAD, NS_PART, NS_INLINE,
} from './records';
import { MAX_PARTS } from './constants';

export const MIN_PART_SIZE = 5 * 1024 * 1024;

export interface StoredPart extends PartRecord { ec: ErasureLayout }
export interface CompletePart { number: number; etag: string }
export interface UploadInit extends Pick<PutOptions, 'contentType' | 'headers' | 'meta' | 'tags'> {
  checksumAlgorithm?: string;
  checksumType?: 'FULL_OBJECT' | 'COMPOSITE';
  lock?: UploadRecord['lock'];
}

const partKey = (uploadId: string, n: number) => key(NS_PART, uploadId, String(n).padStart(5, '0'));

export class Multipart {
  constructor(private readonly store: ObjectStore, private readonly minPartSize = MIN_PART_SIZE) {}

  private get index() { return this.store.index; }

  async create(bucket: string, objectKey: string, init: UploadInit = {}): Promise<UploadRecord> {
    await this.store.getBucket(bucket);
    const uploadId = randomToken(24);
    const rec: UploadRecord = {
      bucket, key: objectKey, uploadId, initiated: Date.now(), contentType: init.contentType,
      headers: init.headers ?? {}, meta: init.meta ?? {}, tags: init.tags,
      checksumAlgorithm: init.checksumAlgorithm, checksumType: init.checksumType, lock: init.lock,
      ec: this.store.set.layoutFor(bucket, objectKey),
    };
    await this.index.batch([{ type: 'put', key: key(NS_UPLOAD, bucket, objectKey, uploadId), value: encodeJson(rec) }]);
    return rec;
  }

  async get(bucket: string, objectKey: string, uploadId: string): Promise<UploadRecord> {
    const v = await this.index.get(key(NS_UPLOAD, bucket, objectKey, uploadId));
    if (!v) {
      await this.store.getBucket(bucket);
      throw new StorageError('NoSuchUpload');
    }
    return decodeJson<UploadRecord>(v);
  }

  async uploadPart(bucket: string, objectKey: string, uploadId: string, number: number, body: Body, opts: PutOptions = {}): Promise<StoredPart> {
    if (!Number.isInteger(number) || number < 1 || number > MAX_PARTS) throw new StorageError('InvalidArgument', `part number must be 1..${MAX_PARTS}`);
    const up = await this.get(bucket, objectKey, uploadId);
    return this.store.writing(async () => {
      const written = await this.store.writeBody(up.ec, body, opts, number);
      const { inlineBytes, ...part } = written;
      const stored: StoredPart = { ...part, ec: up.ec };
      const pk = partKey(uploadId, number);
      const old = await this.store.locks.run(`upload\0${uploadId}`, async () => {
        // The upload may have been aborted or completed while the body streamed in.
        const still = await this.index.get(key(NS_UPLOAD, bucket, objectKey, uploadId));
        if (!still) {
          if (!part.inline) await this.store.removeData(part.dataDir);
          throw new StorageError('NoSuchUpload');
        }
        const prev = await this.index.get(pk);
        const ops: IndexOp[] = [{ type: 'put', key: pk, value: encodeJson(stored) }];
        if (inlineBytes) ops.push({ type: 'put', key: key(NS_INLINE, part.dataDir), value: inlineBytes });
        const was = prev ? decodeJson<StoredPart>(prev) : undefined;
        if (was?.inline) ops.push({ type: 'del', key: key(NS_INLINE, was.dataDir) });
        await this.index.batch(ops);
        return was;
      });
      if (old && !old.inline) await this.store.removeData(old.dataDir);
      return stored;
    });
  }

  async listParts(uploadId: string, after = 0, max = 1000): Promise<{ parts: StoredPart[]; truncated: boolean }> {
    const p = keyPrefix(NS_PART, uploadId);
    const parts: StoredPart[] = [];
    let truncated = false;
    for await (const [, v] of this.index.entries({ gt: partKey(uploadId, after), lt: prefixEnd(p) })) {
      if (parts.length >= max) { truncated = true; break; }
      parts.push(decodeJson<StoredPart>(v));
    }
    return { parts, truncated };
  }

  private async allParts(uploadId: string): Promise<StoredPart[]> {
    const out: StoredPart[] = [];
    const p = keyPrefix(NS_PART, uploadId);
    for await (const [, v] of this.index.entries({ gte: p, lt: prefixEnd(p) })) out.push(decodeJson<StoredPart>(v));
    return out;
  }

  async complete(bucket: string, objectKey: string, uploadId: string, wanted: CompletePart[],
    cond: Pick<PutOptions, 'ifMatch' | 'ifNoneMatch'> = {}, checksums?: Record<string, string>): Promise<ObjectRecord> {
    return this.store.locks.run(`upload\0${uploadId}`, () => this.completeLocked(bucket, objectKey, uploadId, wanted, cond, checksums));
  }

  private async completeLocked(bucket: string, objectKey: string, uploadId: string, wanted: CompletePart[],
    cond: Pick<PutOptions, 'ifMatch' | 'ifNoneMatch'>, checksums?: Record<string, string>): Promise<ObjectRecord> {
    const up = await this.get(bucket, objectKey, uploadId);
    if (wanted.length === 0) throw new StorageError('InvalidArgument', 'You must specify at least one part');
    const have = new Map((await this.allParts(uploadId)).map((p) => [p.number, p]));
    const chosen: StoredPart[] = [];
    let prevN = 0;
    for (const w of wanted) {
      if (w.number <= prevN) throw new StorageError('InvalidPartOrder');
      prevN = w.number;
      const p = have.get(w.number);
      if (!p || p.etag !== stripQuotes(w.etag)) throw new StorageError('InvalidPart', `part ${w.number} not found or ETag mismatch`);
      chosen.push(p);
    }
    chosen.forEach((p, i) => {
      if (i < chosen.length - 1 && p.size < this.minPartSize) throw new StorageError('EntityTooSmall', `part ${p.number} is ${p.size} bytes, minimum ${this.minPartSize}`);
    });
    const md5 = createHash('md5');
    for (const p of chosen) md5.update(Buffer.from(p.etag, 'hex'));
    const size = chosen.reduce((s, p) => s + p.size, 0);
    // Composite CRC32C: CRC32C over the parts' CRC32C values, suffixed with the part count.
    const crcs = Buffer.alloc(4 * chosen.length);
    chosen.forEach((p, i) => crcs.writeUInt32BE(p.crc32c >>> 0, i * 4));
    const rec: ObjectRecord = {
      bucket, key: objectKey, size, etag: `${md5.digest('hex')}-${chosen.length}`, mtime: Date.now(), versionId: 'null',
      contentType: up.contentType, headers: up.headers, meta: up.meta, tags: up.tags,
      checksums: { CRC32C: `${crcBase64(crc(crcs))}-${chosen.length}`, ...(checksums ?? {}) }, checksumType: up.checksumType ?? 'COMPOSITE',
      ec: up.ec, parts: chosen.map(({ ec: _ec, ...p }) => p), multipart: true, ...(up.lock ?? {}), uploadId,
    };
    const used = new Set(chosen.map((p) => p.number));
    const unused = [...have.values()].filter((p) => !used.has(p.number));
    const ops: IndexOp[] = [{ type: 'del', key: key(NS_UPLOAD, bucket, objectKey, uploadId) }];
    for (const p of have.values()) ops.push({ type: 'del', key: partKey(uploadId, p.number) });
    for (const p of unused) if (p.inline) ops.push({ type: 'del', key: key(NS_INLINE, p.dataDir) });
    await this.store.commitObject(rec, cond, ops, unused.filter((p) => !p.inline).map((p) => p.dataDir));
    return rec;
  }

  async abort(bucket: string, objectKey: string, uploadId: string): Promise<void> {
    return this.store.writing(() => this.store.locks.run(`upload\0${uploadId}`, () => this.abortLocked(bucket, objectKey, uploadId)));
  }

  private async abortLocked(bucket: string, objectKey: string, uploadId: string): Promise<void> {
    await this.get(bucket, objectKey, uploadId);
    const parts = await this.allParts(uploadId);
    const ops: IndexOp[] = [{ type: 'del', key: key(NS_UPLOAD, bucket, objectKey, uploadId) }];
    for (const p of parts) {
      ops.push({ type: 'del', key: partKey(uploadId, p.number) });
      if (p.inline) ops.push({ type: 'del', key: key(NS_INLINE, p.dataDir) });
    }
    await this.index.batch(ops);
    for (const p of parts) if (!p.inline) await this.store.removeData(p.dataDir);
  }

  async listUploads(bucket: string, opts: { prefix?: string; delimiter?: string; keyMarker?: string; uploadIdMarker?: string; max: number }):
    Promise<{ uploads: UploadRecord[]; commonPrefixes: string[]; truncated: boolean }> {
    await this.store.getBucket(bucket);
    const base = keyPrefix(NS_UPLOAD, bucket);
    const lower = Buffer.concat([base, Buffer.from(opts.prefix ?? '', 'utf8')]);
    let start: Buffer = lower;
    let gt = false;
    if (opts.keyMarker) {
      const mk = opts.uploadIdMarker
        ? key(NS_UPLOAD, bucket, opts.keyMarker, opts.uploadIdMarker)
        : prefixEnd(keyPrefix(NS_UPLOAD, bucket, opts.keyMarker));
      if (Buffer.compare(mk, start) > 0) { start = mk; gt = !!opts.uploadIdMarker; }
    }
    const uploads: UploadRecord[] = [];
    const prefixes: string[] = [];
    let truncated = false;
    for await (const [, v] of this.index.entries(gt ? { gt: start, lt: prefixEnd(lower) } : { gte: start, lt: prefixEnd(lower) })) {
      const u = decodeJson<UploadRecord>(v);
      if (opts.delimiter) {
        const i = u.key.indexOf(opts.delimiter, (opts.prefix ?? '').length);
        if (i >= 0) {
          const cp = u.key.slice(0, i + opts.delimiter.length);
          if (prefixes[prefixes.length - 1] === cp) continue;
          if (uploads.length + prefixes.length >= opts.max) { truncated = true; break; }
          prefixes.push(cp);
          continue;
        }
      }
      if (uploads.length + prefixes.length >= opts.max) { truncated = true; break; }
      uploads.push(u);
    }
    return { uploads, commonPrefixes: prefixes, truncated };
  }

  /** Abort uploads initiated before `olderThan` (ms epoch). Returns how many were aborted. */
  async expire(olderThan: number): Promise<number> {
    const stale: UploadRecord[] = [];
    for await (const [, v] of this.index.entries({ gte: Buffer.from([NS_UPLOAD]), lt: Buffer.from([NS_UPLOAD + 1]) })) {
      const u = decodeJson<UploadRecord>(v);
      if (u.initiated < olderThan) stale.push(u);
    }
    for (const u of stale) await this.abort(u.bucket, u.key, u.uploadId).catch(() => undefined);
    return stale.length;
  }
}


export { newId };
