// Directory buckets (S3 Express One Zone semantics): a bucket named `base--zone--x-s3`. Random
// ETags (no MD5 on the write path), CRC32C by default, append and rename, '/'-only listing,
// consecutive part numbers, and the operations S3 Express lacks refused as it refuses them.
import type { Ctx, Reply } from '../context';
import { header } from '../context';
import { S3Error } from '../errors';
import { checkConditions, requireBucketKey, validateKey } from './common';
import type { ObjectRecord } from '../../storage';

export function isDirectoryBucket(name: string): boolean {
  return name.endsWith('--x-s3');
}

/** Operations AWS documents as unsupported on directory buckets. */
const UNSUPPORTED = new Set([
  'GetBucketAcl', 'PutBucketAcl', 'GetObjectAcl', 'PutObjectAcl', 'PutBucketTagging', 'GetBucketTagging', 'DeleteBucketTagging',
  'PutObjectTagging', 'GetObjectTagging', 'DeleteObjectTagging', 'PutBucketVersioning', 'GetBucketVersioning',
  'PutObjectLockConfiguration', 'GetObjectLockConfiguration', 'PutObjectRetention', 'GetObjectRetention',
  'PutObjectLegalHold', 'GetObjectLegalHold', 'PutBucketCors', 'GetBucketCors', 'DeleteBucketCors', 'GetBucketLocation',
  'ListObjects', 'ListObjectVersions', 'PostObject',
]);

export function refuseOnDirectoryBucket(ctx: Ctx, op: string): void {
  if (ctx.bucket && isDirectoryBucket(ctx.bucket)) {
    if (UNSUPPORTED.has(op)) throw new S3Error('NotImplemented', `${op} is not supported by directory buckets`);
  } else if (op === 'RenameObject') {
    throw new S3Error('NotImplemented', 'RenameObject is only supported by directory buckets');
  }
}

/** ListObjectsV2 rules of directory buckets: '/' is the only delimiter, prefixes end with '/'. */
export function checkDirectoryListing(ctx: Ctx): void {
  if (!isDirectoryBucket(ctx.bucket)) return;
  const d = ctx.query['delimiter'];
  if (d !== undefined && d !== '' && d !== '/') throw new S3Error('InvalidArgument', 'For directory buckets, / is the only supported delimiter', { ArgumentName: 'delimiter' });
  const p = ctx.query['prefix'];
  if (p && d === '/' && !p.endsWith('/')) throw new S3Error('InvalidArgument', 'For directory buckets, prefixes must end in the delimiter', { ArgumentName: 'prefix' });
  if (ctx.query['start-after']) throw new S3Error('InvalidArgument', 'StartAfter is not supported by directory buckets', { ArgumentName: 'start-after' });
}

/** Directory buckets: part numbers of a completed upload run 1, 2, 3 ... with no gaps. */
export function checkConsecutiveParts(ctx: Ctx, numbers: number[]): void {
  if (!isDirectoryBucket(ctx.bucket)) return;
  numbers.forEach((n, i) => {
    if (n !== i + 1) throw new S3Error('InvalidPart', 'For directory buckets, part numbers must be consecutive and start at 1');
  });
}

function renameSourceKey(ctx: Ctx): string {
  const raw = header(ctx, 'x-amz-rename-source');
  if (!raw) throw new S3Error('InvalidRequest', 'x-amz-rename-source is required');
  let v: string;
  try { v = decodeURIComponent(raw); } catch { throw new S3Error('InvalidArgument', 'x-amz-rename-source is not valid URL encoding'); }
  // Either a key within the bucket or /bucket/key.
  const prefix = `/${ctx.bucket}/`;
  if (v.startsWith(prefix)) return v.slice(prefix.length);
  if (v.startsWith(`${ctx.bucket}/`)) return v.slice(ctx.bucket.length + 1);
  return v.replace(/^\//, '');
}

export async function renameObject(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  validateKey(ctx.key);
  const from = renameSourceKey(ctx);
  if (from.endsWith('/') || ctx.key.endsWith('/')) throw new S3Error('InvalidRequest', 'RenameObject does not support keys ending in /');
  await ctx.store.renameObject(ctx.bucket, from, ctx.key, (src: ObjectRecord, dst: ObjectRecord | undefined) => {
    checkConditions(ctx, src, 'x-amz-rename-source-');
    const ifNoneMatch = header(ctx, 'if-none-match');
    const ifMatch = header(ctx, 'if-match');
    if (ifNoneMatch !== undefined && dst && (ifNoneMatch === '*' || ifNoneMatch.replace(/"/g, '') === dst.etag)) throw new S3Error('PreconditionFailed');
    if (ifMatch !== undefined && (!dst || (ifMatch !== '*' && ifMatch.replace(/"/g, '') !== dst.etag))) throw new S3Error(dst ? 'PreconditionFailed' : 'NoSuchKey');
    if (dst) checkConditions(ctx, dst, '');
  });
  return { status: 200 };
}
