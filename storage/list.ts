// Listing is a range scan over the ordered index. With a delimiter, a common prefix is
// reported once and the scan seeks past every key under it, so a prefix holding a million
// keys costs one seek, not a million reads.
import type { Index } from './meta-index';
import { keyPrefix, NS_OBJECT, prefixEnd, listedFields, ObjectRecord } from './records';

export interface ListOptions {
  prefix?: string;
  delimiter?: string;
  /** Exclusive lower bound (marker, start-after or decoded continuation token). */
  after?: string;
  maxKeys: number;
}

/** What a listing entry says of an object (the record itself is not kept: see listObjects). */
export type ListedObject = Pick<ObjectRecord, 'key' | 'size' | 'etag' | 'mtime' | 'checksums' | 'checksumType'>;

export interface ListResult {
  objects: ListedObject[];
  commonPrefixes: string[];
  isTruncated: boolean;
  /** The last key or common prefix returned; the next page starts after it. */
  last?: string;
}

/** Index entries read per round trip: a page of 1000 keys is two or three, each read while the one before is decoded. */
const CHUNK = 512;

/** Hard bound on index entries examined per list call, so one request cannot scan unboundedly. */
const MAX_SCAN = 100000;

export async function listObjects(index: Index, bucket: string, opts: ListOptions): Promise<ListResult> {
  const prefix = opts.prefix ?? '';
  const delim = opts.delimiter ?? '';
  const base = keyPrefix(NS_OBJECT, bucket);
  const lower = Buffer.concat([base, Buffer.from(prefix, 'utf8')]);
  const upper = prefixEnd(lower);
  const result: ListResult = { objects: [], commonPrefixes: [], isTruncated: false };
  if (opts.maxKeys <= 0) return result;

  let start: Buffer = lower;
  let inclusive = true;
  if (opts.after !== undefined) {
    let after = opts.after;
    // A marker that is itself a common prefix means "after everything under it".
    if (delim && after.startsWith(prefix)) {
      const i = after.indexOf(delim, prefix.length);
      if (i >= 0) after = after.slice(0, i + delim.length);
    }
    const afterKey = Buffer.concat([base, Buffer.from(after, 'utf8')]);
    const skipUnder = delim !== '' && after.endsWith(delim) && after.length > prefix.length;
    const candidate = skipUnder ? prefixEnd(afterKey) : afterKey;
    if (Buffer.compare(candidate, start) >= 0) { start = candidate; inclusive = skipUnder; }
  }

  // Records as text: creating a Buffer per value, then a string from it, was a tenth of a page.
  const it = index.iterator(inclusive ? { gte: start, lt: upper, valuesAsText: true } : { gt: start, lt: upper, valuesAsText: true });
  let count = 0;
  let scanned = 0;
  // Entries come in batches (one thread-pool round trip each, not one per key). The next batch
  // is read while this one is decoded (the loop otherwise sat idle a fifth of a page); a seek
  // past a common prefix waits for it and drops it with the rest of this batch.
  let batch: [Buffer, Buffer | string][] = [];
  let at = 0;
  let ahead: Promise<[Buffer, Buffer | string][]> | undefined;
  const fetch = () => it.nextv(Math.min(CHUNK, opts.maxKeys - count + 1)) as Promise<[Buffer, Buffer | string][]>;
  const dropAhead = async () => { if (ahead) { await ahead.catch(() => undefined); ahead = undefined; } };
  try {
    for (;;) {
      if (at === batch.length) {
        batch = await (ahead ?? fetch());
        ahead = undefined;
        at = 0;
        if (batch.length === 0) break;
        if (count + batch.length <= opts.maxKeys) ahead = fetch();
      }
      const [k, v] = batch[at++];
      const name = k.toString('utf8', base.length);
      if (++scanned > MAX_SCAN && count > 0) { result.isTruncated = true; break; }
      if (delim) {
        const i = name.indexOf(delim, prefix.length);
        if (i >= 0) {
          const cp = name.slice(0, i + delim.length);
          if (count >= opts.maxKeys) { result.isTruncated = true; break; }
          result.commonPrefixes.push(cp);
          result.last = cp;
          count++;
          await dropAhead();
          it.seek(prefixEnd(Buffer.concat([base, Buffer.from(cp, 'utf8')])));
          batch = [];
          at = 0;
          continue;
        }
      }
      if (count >= opts.maxKeys) { result.isTruncated = true; break; }
      const rec = listedFields(typeof v === 'string' ? v : v.toString('utf8'));
      if (rec.deleteMarker) continue; // the key's current version is a delete marker: not listed
      // Only what a listing shows is kept: a page of whole records (parts, layout, metadata)
      // outlived the young generation and made the decoding's garbage collection cost double.
      result.objects.push({ key: name, size: rec.size, etag: rec.etag, mtime: rec.mtime, checksums: rec.checksums, checksumType: rec.checksumType });
      result.last = name;
      count++;
    }
  } finally {
    await dropAhead();
    await it.close();
  }
  return result;
}
