// PutObject: stream the decoded payload into storage/, verify, commit, answer with the ETag.
import type { Ctx, Reply } from '../context';
import { header } from '../context';
import { S3Error } from '../errors';
import { objectBody } from '../body';
import { metaFromRequest, parseTagging, reportedChecksums, requireBucketKey, validateKey } from './common';
import type { ObjectRecord } from '../../storage';
import { lockForNewVersion } from './object-lock';
import { cannedAcl } from '../auth/access';
import { isDirectoryBucket } from './express';

export function checksumReplyHeaders(rec: Pick<ObjectRecord, 'checksums' | 'checksumType'>, explicitOnly = true): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [alg, v] of explicitOnly ? reportedChecksums(rec.checksums) : Object.entries(rec.checksums ?? {})) out[`x-amz-checksum-${alg.toLowerCase()}`] = v;
  if (rec.checksumType && Object.keys(out).length) out['x-amz-checksum-type'] = rec.checksumType;
  return out;
}

export function rejectUnsupportedWriteHeaders(ctx: Ctx): void {
  cannedAcl(ctx);
  for (const h of ['x-amz-server-side-encryption', 'x-amz-server-side-encryption-customer-algorithm']) {
    if (header(ctx, h) !== undefined) throw new S3Error('NotImplemented', `${h} is not supported yet`);
  }
  const sc = header(ctx, 'x-amz-storage-class');
  if (sc !== undefined && !['STANDARD', 'EXPRESS_ONEZONE', 'REDUCED_REDUNDANCY'].includes(sc)) throw new S3Error('InvalidStorageClass');
}

export async function putObject(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  validateKey(ctx.key);
  rejectUnsupportedWriteHeaders(ctx);
  const m = metaFromRequest(ctx);
  const tags = parseTagging(header(ctx, 'x-amz-tagging'));
  await ctx.store.getBucket(ctx.bucket); // NoSuchBucket before reading a body
  const lock = await lockForNewVersion(ctx);
  const plan = objectBody(ctx, ctx.config.maxObjectSize);
  const directory = isDirectoryBucket(ctx.bucket);
  const offsetHeader = header(ctx, 'x-amz-write-offset-bytes');
  if (offsetHeader !== undefined) {
    if (!directory) throw new S3Error('NotImplemented', 'Append (x-amz-write-offset-bytes) is only supported by directory buckets');
    if (!/^\d+$/.test(offsetHeader)) throw new S3Error('InvalidArgument', 'Invalid write offset', { ArgumentName: 'x-amz-write-offset-bytes' });
    const rec = await ctx.store.appendObject(ctx.bucket, ctx.key, Number(offsetHeader), plan.body, {
      contentType: m.contentType, headers: m.headers, meta: m.meta, maxSize: ctx.config.maxObjectSize, beforeCommit: plan.beforeCommit, etag: 'random',
    });
    return { status: 200, headers: { etag: `"${rec.etag}"`, 'x-amz-object-size': rec.size, ...checksumReplyHeaders(rec) } };
  }
  const rec = await ctx.store.putObject(ctx.bucket, ctx.key, plan.body, {
    etag: directory ? 'random' : 'md5',
    contentType: m.contentType, headers: m.headers, meta: m.meta, tags,
    maxSize: ctx.config.maxObjectSize,
    ifNoneMatch: header(ctx, 'if-none-match'),
    ifMatch: header(ctx, 'if-match'),
    beforeCommit: plan.beforeCommit,
    lock, acl: cannedAcl(ctx), owner: ctx.identity.accessKey,
  });
  return {
    status: 200,
    headers: { etag: `"${rec.etag}"`, ...checksumReplyHeaders(rec), ...(rec.versioned && rec.versionId !== 'null' ? { 'x-amz-version-id': rec.versionId } : {}) },
  };
}
