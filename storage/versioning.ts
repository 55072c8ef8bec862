// Object versions. The current version of a key lives at NS_OBJECT (so GET and listing stay one
// lookup and one scan); in a bucket that has had versioning turned on, every version — the
// current one included, and delete markers — also lives at NS_VERSION, ordered newest first.
// An object written before versioning was enabled has only its NS_OBJECT record and is the
// "null" version; it gets a version record the first time a newer version supersedes it.
import { randomBytes } from 'node:crypto';
import type { Index } from './meta-index';
import { ObjectRecord, key, keyPrefix, prefixEnd, decodeJson, NS_OBJECT, NS_VERSION } from './records';

const CLOCK_SPAN = 9_000_000_000_000_000; // > any µs timestamp for the next few centuries

/** Monotonic microsecond clock: two versions of a key never share a sort position. */
export class VersionClock {
  private last = 0;
  /** `after`: the version being superseded, whose clock may come from another worker process. */
  next(after = 0): number {
    this.last = Math.max(Date.now() * 1000, this.last + 1, after + 1);
    return this.last;
  }
  /** A new version id that carries its clock value, so a lookup by id is one index get. */
  newId(vseq: number): string {
    return `${vseq.toString(36).padStart(12, '0')}${randomBytes(10).toString('base64url')}`;
  }
}

export function vseqOf(versionId: string): number | undefined {
  if (versionId.length < 13) return undefined;
  const n = parseInt(versionId.slice(0, 12), 36);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

export function versionKey(bucket: string, objectKey: string, vseq: number): Buffer {
  return key(NS_VERSION, bucket, objectKey, String(CLOCK_SPAN - vseq).padStart(16, '0'));
}

export function versionsPrefix(bucket: string, objectKey: string): Buffer {
  return keyPrefix(NS_VERSION, bucket, objectKey);
}

/** All version records of a key, newest first (bounded by what the key holds). */
export async function versionsOf(index: Index, bucket: string, objectKey: string): Promise<ObjectRecord[]> {
  const p = versionsPrefix(bucket, objectKey);
  const out: ObjectRecord[] = [];
  for await (const [, v] of index.entries({ gte: p, lt: prefixEnd(p) })) out.push(decodeJson<ObjectRecord>(v));
  return out;
}

/** Find one version by id ('null' included), looking at the current record first. */
export async function findVersion(index: Index, current: ObjectRecord | undefined, versionId: string): Promise<ObjectRecord | undefined> {
  if (current && current.versionId === versionId) return current;
  if (!current) return undefined;
  if (versionId === 'null') return (await versionsOf(index, current.bucket, current.key)).find((r) => r.versionId === 'null');
  const vseq = vseqOf(versionId);
  if (vseq === undefined) return undefined;
  const v = await index.get(versionKey(current.bucket, current.key, vseq));
  const rec = v ? decodeJson<ObjectRecord>(v) : undefined;
  return rec && rec.versionId === versionId ? rec : undefined;
}

export interface VersionListOptions { prefix?: string; delimiter?: string; keyMarker?: string; versionIdMarker?: string; maxKeys: number }
export interface VersionEntry { record: ObjectRecord; isLatest: boolean }
export interface VersionListResult {
  versions: VersionEntry[];
  commonPrefixes: string[];
  isTruncated: boolean;
  nextKeyMarker?: string;
  nextVersionIdMarker?: string;
}

/** ListObjectVersions: keys in order, each key's versions newest first, markers S3-style. */
export async function listVersions(index: Index, bucket: string, opts: VersionListOptions): Promise<VersionListResult> {
  const prefix = opts.prefix ?? '';
  const delim = opts.delimiter ?? '';
  const base = keyPrefix(NS_OBJECT, bucket);
  const lower = Buffer.concat([base, Buffer.from(prefix, 'utf8')]);
  const upper = prefixEnd(lower);
  const out: VersionListResult = { versions: [], commonPrefixes: [], isTruncated: false };
  if (opts.maxKeys <= 0) return out;
  let range: { gt?: Buffer; gte?: Buffer; lt: Buffer } = { gte: lower, lt: upper };
  if (opts.keyMarker) {
    const mk = Buffer.concat([base, Buffer.from(opts.keyMarker, 'utf8')]);
    if (Buffer.compare(mk, lower) >= 0) range = opts.versionIdMarker ? { gte: mk, lt: upper } : { gt: mk, lt: upper };
  }
  let count = 0;
  let lastCp = '';
  const full = () => count >= opts.maxKeys;
  for await (const [k, v] of index.entries(range)) {
    const name = k.toString('utf8', base.length);
    if (delim) {
      const i = name.indexOf(delim, prefix.length);
      if (i >= 0) {
        const cp = name.slice(0, i + delim.length);
        if (cp === lastCp || (opts.keyMarker && cp <= opts.keyMarker && opts.keyMarker.startsWith(cp))) continue;
        if (full()) { out.isTruncated = true; break; }
        out.commonPrefixes.push(cp);
        lastCp = cp;
        out.nextKeyMarker = cp;
        out.nextVersionIdMarker = undefined;
        count++;
        continue;
      }
    }
    const current = decodeJson<ObjectRecord>(v);
    let versions = current.versioned ? await versionsOf(index, bucket, name) : [current];
    if (versions.length === 0) versions = [current];
    if (opts.keyMarker === name && opts.versionIdMarker) {
      const at = versions.findIndex((r) => r.versionId === opts.versionIdMarker);
      versions = at >= 0 ? versions.slice(at + 1) : versions;
    }
    for (const r of versions) {
      if (full()) { out.isTruncated = true; break; }
      out.versions.push({ record: r, isLatest: r.versionId === current.versionId });
      out.nextKeyMarker = name;
      out.nextVersionIdMarker = r.versionId;
      count++;
    }
    if (out.isTruncated) break;
  }
  if (!out.isTruncated) { out.nextKeyMarker = undefined; out.nextVersionIdMarker = undefined; }
  return out;
}
