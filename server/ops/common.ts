// Pieces shared by several operations: request metadata in, object headers out, conditions.
import type { Ctx } from '../context';
import { header } from '../context';
import { S3Error } from '../errors';
import type { ObjectRecord } from '../../storage';
import { httpDate } from '../xml';
import { headerText } from '../auth/sigv4';

/**
 * A stored header value as it goes on the wire. Characters up to U+00FF are sent as single
 * latin1 bytes (what HTTP clients decode headers as); anything wider is RFC 2047 encoded, as S3
 * does for non-ASCII metadata.
 */
export function wireText(v: string): string {
  if (!/[^\x00-\xff]/.test(v)) return v;
  return `=?UTF-8?B?${Buffer.from(v, 'utf8').toString('base64')}?=`;
}

export const STANDARD_HEADERS = ['content-encoding', 'content-disposition', 'content-language', 'cache-control', 'expires'];
export const MAX_USER_META = 2048;

export interface ObjectMeta {
  contentType?: string;
  headers: Record<string, string>;
  meta: Record<string, string>;
}

/** Standard headers and x-amz-meta-* from a request; user metadata over 2 KiB is refused. */
export function metaFromRequest(ctx: Ctx): ObjectMeta {
  const headers: Record<string, string> = {};
  for (const h of STANDARD_HEADERS) {
    const v = header(ctx, h);
    if (v !== undefined) headers[h] = headerText(v);
  }
  // aws-chunked is transfer framing, not a property of the stored object; the rest is kept as sent.
  if (headers['content-encoding']) {
    const enc = headers['content-encoding'].replace(/(^|,)\s*aws-chunked\s*(?=,|$)/gi, '$1').replace(/^\s*,\s*|\s*,\s*$/g, '').trim();
    if (enc) headers['content-encoding'] = enc; else delete headers['content-encoding'];
  }
  const meta: Record<string, string> = {};
  let size = 0;
  for (const [k, v] of Object.entries(ctx.headers)) {
    if (!k.startsWith('x-amz-meta-')) continue;
    const name = k.slice('x-amz-meta-'.length);
    const value = headerText(Array.isArray(v) ? v.join(',') : (v ?? ''));
    size += name.length + value.length;
    meta[name] = value;
  }
  if (size > MAX_USER_META) throw new S3Error('MetadataTooLarge');
  const ct = header(ctx, 'content-type');
  return { contentType: ct === undefined ? undefined : headerText(ct), headers, meta };
}

// The store shares one frozen record per stored version between readers (its read cache), so
// the headers derived from it are built once per version too.
const headersOf = new WeakMap<ObjectRecord, Readonly<Record<string, string | number>>>();

/** Response headers describing a stored object (GET, HEAD); frozen: callers copy before adding their own. */
export function objectHeaders(rec: ObjectRecord): Readonly<Record<string, string | number>> {
  let h = headersOf.get(rec);
  if (!h) {
    h = Object.freeze(buildObjectHeaders(rec));
    if (Object.isFrozen(rec)) headersOf.set(rec, h);
  }
  return h;
}

function buildObjectHeaders(rec: ObjectRecord): Record<string, string | number> {
  const h: Record<string, string | number> = {
    'last-modified': httpDate(rec.mtime),
    etag: `"${rec.etag}"`,
    'content-type': wireText(rec.contentType ?? 'binary/octet-stream'),
    'accept-ranges': 'bytes',
  };
  for (const [k, v] of Object.entries(rec.headers)) h[k] = wireText(v);
  for (const [k, v] of Object.entries(rec.meta)) h[`x-amz-meta-${k}`] = wireText(v);
  if (rec.tags && Object.keys(rec.tags).length) h['x-amz-tagging-count'] = Object.keys(rec.tags).length;
  if (rec.versioned) h['x-amz-version-id'] = rec.versionId;
  if (rec.retention) {
    h['x-amz-object-lock-mode'] = rec.retention.mode;
    h['x-amz-object-lock-retain-until-date'] = new Date(rec.retention.until).toISOString();
  }
  if (rec.legalHold !== undefined) h['x-amz-object-lock-legal-hold'] = rec.legalHold ? 'ON' : 'OFF';
  return h;
}

/**
 * The checksums named to clients (headers, listings, attributes): Kiln always keeps CRC32C, and
 * reports it only when it is what the client chose or nothing else exists.
 */
export function reportedChecksums(sums: Record<string, string> | undefined): [string, string][] {
  const all = Object.entries(sums ?? {});
  return all.length > 1 ? all.filter(([alg]) => alg !== 'CRC32C') : all;
}

/** Checksum headers, sent when the client asks with x-amz-checksum-mode: ENABLED. */
export function checksumHeaders(ctx: Ctx, rec: ObjectRecord): Record<string, string> {
  if ((header(ctx, 'x-amz-checksum-mode') ?? '').toUpperCase() !== 'ENABLED') return {};
  const out: Record<string, string> = {};
  for (const [alg, v] of reportedChecksums(rec.checksums)) out[`x-amz-checksum-${alg.toLowerCase()}`] = v;
  if (rec.checksumType) out['x-amz-checksum-type'] = rec.checksumType;
  return out;
}

function parseHttpDate(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

function etagMatches(list: string, etag: string): boolean {
  return list.split(',').some((e) => {
    const t = e.trim();
    return t === '*' || t.replace(/^W\//, '').replace(/^"|"$/g, '') === etag;
  });
}

/**
 * GET/HEAD preconditions (RFC 7232 order, as S3 applies them). `prefix` selects the
 * x-amz-copy-source-if-* variants for copies, which fail with 412 instead of 304.
 */
export function checkConditions(ctx: Ctx, rec: ObjectRecord, prefix = ''): void {
  const h = (n: string) => header(ctx, `${prefix}${n}`);
  const ifMatch = h('if-match');
  const ifNoneMatch = h('if-none-match');
  const ifModifiedSince = parseHttpDate(h('if-modified-since'));
  const ifUnmodifiedSince = parseHttpDate(h('if-unmodified-since'));
  const mtime = Math.floor(rec.mtime / 1000) * 1000;
  const notModified = prefix ? 'PreconditionFailed' : 'NotModified';
  if (ifMatch !== undefined) {
    if (!etagMatches(ifMatch, rec.etag)) throw new S3Error('PreconditionFailed', undefined, { Condition: `${prefix}If-Match` });
  } else if (ifUnmodifiedSince !== undefined && mtime > ifUnmodifiedSince) {
    throw new S3Error('PreconditionFailed', undefined, { Condition: `${prefix}If-Unmodified-Since` });
  }
  if (ifNoneMatch !== undefined) {
    if (etagMatches(ifNoneMatch, rec.etag)) {
      if (prefix || ctx.method === 'GET' || ctx.method === 'HEAD') throw notModifiedError(notModified, rec);
      throw new S3Error('PreconditionFailed');
    }
  } else if (ifModifiedSince !== undefined && mtime <= ifModifiedSince) {
    throw notModifiedError(notModified, rec);
  }
}

function notModifiedError(code: 'NotModified' | 'PreconditionFailed', rec: ObjectRecord): S3Error {
  return new S3Error(code, undefined, {}, code === 'NotModified' ? { etag: `"${rec.etag}"`, 'last-modified': httpDate(rec.mtime) } : {});
}

const KEY_FORBIDDEN = /[\x00]/;

/** Object key rules (invariant 6): 1..1024 bytes of UTF-8, no NUL, no '.'/'..' path segments that escape. */
export function validateKey(key: string): void {
  if (Buffer.byteLength(key, 'utf8') > 1024) throw new S3Error('KeyTooLongError');
  if (KEY_FORBIDDEN.test(key)) throw new S3Error('InvalidArgument', 'Object key contains an invalid character');
  if (key.includes('\uFFFD')) throw new S3Error('InvalidArgument', 'Object key is not valid UTF-8');
}

export function parseTagging(v: string | undefined): Record<string, string> | undefined {
  if (v === undefined) return undefined;
  const tags: Record<string, string> = {};
  for (const [k, val] of new URLSearchParams(v)) {
    if (k in tags) throw new S3Error('InvalidTag', 'Cannot provide multiple Tags with the same key');
    tags[k] = val;
  }
  validateTags(tags);
  return tags;
}

export function validateTags(tags: Record<string, string>): void {
  const keys = Object.keys(tags);
  if (keys.length > 10) throw new S3Error('InvalidTag', 'Object tags cannot be greater than 10');
  for (const k of keys) {
    if (k.length === 0 || k.length > 128) throw new S3Error('InvalidTag', 'The TagKey you have provided is invalid');
    if (tags[k].length > 256) throw new S3Error('InvalidTag', 'The TagValue you have provided is too long');
  }
}

export function requireBucketKey(ctx: Ctx): void {
  if (!ctx.key) throw new S3Error('InvalidRequest', 'A key is required');
}
