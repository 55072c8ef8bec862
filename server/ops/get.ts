// GetObject and HeadObject: ranges, part numbers, preconditions, response-* overrides.
import type { Ctx, Reply } from '../context';
import { header } from '../context';
import { S3Error } from '../errors';
import type { ObjectRecord } from '../../storage';
import { checkConditions, checksumHeaders, objectHeaders, requireBucketKey } from './common';

const OVERRIDES: Record<string, string> = {
  'response-content-type': 'content-type',
  'response-content-language': 'content-language',
  'response-expires': 'expires',
  'response-cache-control': 'cache-control',
  'response-content-disposition': 'content-disposition',
  'response-content-encoding': 'content-encoding',
};

/** The versionId query parameter; an empty one is a client error, as on S3. */
export function versionOf(ctx: Ctx): string | undefined {
  const v = ctx.query['versionId'];
  if (v === '') throw new S3Error('InvalidArgument', 'Version id cannot be the empty string', { ArgumentName: 'versionId', ArgumentValue: '' });
  return v;
}

interface Plan { start: number; end: number; status: number; headers: Record<string, string | number> }

/** Parse a single-range `Range` header. Returns undefined for a header S3 ignores (serves whole object). */
export function parseRange(v: string | undefined, size: number): { start: number; end: number } | undefined {
  if (!v) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(v.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) throw rangeError(size);
    return { start: Math.max(size - n, 0), end: size };
  }
  const start = Number(m[1]);
  if (start >= size) throw rangeError(size);
  const last = m[2] === '' ? size - 1 : Number(m[2]);
  if (last < start) return undefined;
  return { start, end: Math.min(last, size - 1) + 1 };
}

function rangeError(size: number): S3Error {
  return new S3Error('InvalidRange', undefined, { RangeRequested: '', ActualObjectSize: String(size) }, { 'content-range': `bytes */${size}` });
}

function plan(ctx: Ctx, rec: ObjectRecord): Plan {
  checkConditions(ctx, rec);
  const headers = objectHeaders(rec);
  const partNumber = ctx.query['partNumber'];
  if (partNumber !== undefined) {
    const n = Number(partNumber);
    if (!Number.isInteger(n) || n < 1 || n > 10000) throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', { ArgumentName: 'partNumber', ArgumentValue: partNumber });
    if (header(ctx, 'range')) throw new S3Error('InvalidRequest', 'Cannot specify both Range header and partNumber query parameter');
    if (!rec.multipart) {
      if (n !== 1) throw new S3Error('InvalidPart', 'The requested part number is not satisfiable');
      return { start: 0, end: rec.size, status: 200, headers: { ...headers, 'content-length': rec.size } };
    }
    if (n > rec.parts.length) throw new S3Error('InvalidPart', 'The requested part number is not satisfiable');
    const start = rec.parts.slice(0, n - 1).reduce((s, p) => s + p.size, 0);
    const end = start + rec.parts[n - 1].size;
    // A part comes with its own checksum (what the client sent for it), as on S3.
    const partSums: Record<string, string> = {};
    for (const [alg, v] of Object.entries(rec.parts[n - 1].checksums ?? {})) partSums[`x-amz-checksum-${alg.toLowerCase()}`] = v;
    if (Object.keys(partSums).length && rec.checksumType) partSums['x-amz-checksum-type'] = rec.checksumType;
    return {
      start, end, status: 206,
      headers: { ...headers, ...partSums, 'content-length': end - start, 'content-range': `bytes ${start}-${end - 1}/${rec.size}`, 'x-amz-mp-parts-count': rec.parts.length },
    };
  }
  const range = parseRange(header(ctx, 'range'), rec.size);
  if (range) {
    return {
      ...range, status: 206,
      headers: { ...headers, 'content-length': range.end - range.start, 'content-range': `bytes ${range.start}-${range.end - 1}/${rec.size}` },
    };
  }
  return { start: 0, end: rec.size, status: 200, headers: { ...headers, 'content-length': rec.size, ...checksumHeaders(ctx, rec) } };
}

const OVERRIDE_LIST = Object.entries(OVERRIDES);

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

function applyOverrides(ctx: Ctx, headers: Record<string, string | number>): void {
  if (!hasKeys(ctx.query)) return; // most GETs carry no query at all
  for (const [q, h] of OVERRIDE_LIST) {
    const v = ctx.query[q];
    if (v === undefined) continue;
    if (ctx.identity.anonymous) throw new S3Error('InvalidRequest', 'Request specific response headers cannot be used for anonymous GET requests.');
    headers[h] = v;
  }
}

export async function getObject(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  let p!: Plan;
  const got = await ctx.store.getObject(ctx.bucket, ctx.key, (rec) => {
    p = plan(ctx, rec);
    applyOverrides(ctx, p.headers);
    return { start: p.start, end: p.end };
  }, versionOf(ctx));
  return { status: p.status, headers: p.headers, body: got.bytes ?? got.blocks ?? got.stream, bytesOut: p.end - p.start, sent: got.bytes ? got.release : undefined };
}

export async function headObject(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  const rec = await ctx.store.headObject(ctx.bucket, ctx.key, versionOf(ctx));
  const { status, headers } = plan(ctx, rec);
  applyOverrides(ctx, headers);
  return { status, headers };
}
