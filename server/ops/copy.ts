// CopyObject (and the source half of UploadPartCopy): read the source through storage/ and
// write it as a new object. The copy is re-encoded because shard placement follows the key.
import type { Ctx, Reply } from '../context';
import { header, xmlReply } from '../context';
import { S3Error } from '../errors';
import { x, xmlDoc, isoDate } from '../xml';
import { checkConditions, metaFromRequest, parseTagging, requireBucketKey, validateKey } from './common';
import { checksumReplyHeaders, rejectUnsupportedWriteHeaders } from './put';
import type { GetResult, ObjectRecord } from '../../storage';
import { lockForNewVersion } from './object-lock';
import { cannedAcl, mayRead } from '../auth/access';

export interface CopySource { bucket: string; key: string; versionId?: string }

export function parseCopySource(ctx: Ctx): CopySource {
  const raw = header(ctx, 'x-amz-copy-source') ?? '';
  const q = raw.indexOf('?');
  const pathPart = q >= 0 ? raw.slice(0, q) : raw;
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathPart);
  } catch {
    throw new S3Error('InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey', { ArgumentName: 'x-amz-copy-source' });
  }
  const p = decoded.replace(/^\//, '');
  const slash = p.indexOf('/');
  if (slash <= 0 || slash === p.length - 1) {
    throw new S3Error('InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey', { ArgumentName: 'x-amz-copy-source' });
  }
  const versionId = q >= 0 ? new URLSearchParams(raw.slice(q + 1)).get('versionId') ?? undefined : undefined;
  return { bucket: p.slice(0, slash), key: p.slice(slash + 1), versionId };
}

/** Open the copy source, checking read rights and x-amz-copy-source-if-* conditions. */
export async function openSource(ctx: Ctx, range?: (rec: ObjectRecord) => { start: number; end: number }): Promise<GetResult> {
  const src = parseCopySource(ctx);
  const bucketRec = await ctx.store.getBucket(src.bucket);
  return ctx.store.getObject(src.bucket, src.key, (rec) => {
    if (!mayRead(ctx, bucketRec, rec)) throw new S3Error('AccessDenied');
    checkConditions(ctx, rec, 'x-amz-copy-source-');
    return range ? range(rec) : undefined;
  }, src.versionId);
}

export async function copyObject(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  validateKey(ctx.key);
  rejectUnsupportedWriteHeaders(ctx);
  await ctx.store.getBucket(ctx.bucket);
  const directive = (header(ctx, 'x-amz-metadata-directive') ?? 'COPY').toUpperCase();
  const tagDirective = (header(ctx, 'x-amz-tagging-directive') ?? 'COPY').toUpperCase();
  if (!['COPY', 'REPLACE'].includes(directive)) throw new S3Error('InvalidArgument', 'Unknown metadata directive.', { ArgumentName: 'x-amz-metadata-directive' });
  if (!['COPY', 'REPLACE'].includes(tagDirective)) throw new S3Error('InvalidArgument', 'Unknown tagging directive.', { ArgumentName: 'x-amz-tagging-directive' });
  const src = parseCopySource(ctx);
  if (src.bucket === ctx.bucket && src.key === ctx.key && src.versionId === undefined && directive === 'COPY' && !header(ctx, 'x-amz-storage-class')) {
    throw new S3Error('InvalidRequest', 'This copy request is illegal because it is trying to copy an object to itself without changing the object\'s metadata, storage class, website redirect location or encryption attributes.');
  }
  const lock = await lockForNewVersion(ctx);
  const got = await openSource(ctx);
  if (got.record.size > ctx.config.maxObjectSize) { got.stream.destroy(); throw new S3Error('InvalidRequest', 'The specified copy source is larger than the maximum allowable size for a copy source: 5368709120'); }
  const s = got.record;
  const m = directive === 'REPLACE' ? metaFromRequest(ctx) : { contentType: s.contentType, headers: s.headers, meta: s.meta };
  const tags = tagDirective === 'REPLACE' ? parseTagging(header(ctx, 'x-amz-tagging') ?? '') : s.tags;
  let rec: ObjectRecord;
  try {
    rec = await ctx.store.putObject(ctx.bucket, ctx.key, got.stream, {
      contentType: m.contentType, headers: m.headers, meta: m.meta, tags,
      // Whole-object checksums other than CRC32C carry over unchanged: the bytes are identical.
      checksums: s.multipart ? {} : Object.fromEntries(Object.entries(s.checksums).filter(([a]) => a !== 'CRC32C')),
      ifNoneMatch: header(ctx, 'if-none-match'), ifMatch: header(ctx, 'if-match'),
      lock, acl: cannedAcl(ctx), owner: ctx.identity.accessKey,
    });
  } finally {
    got.stream.destroy();
  }
  return xmlReply(xmlDoc('CopyObjectResult', [
    x('LastModified', isoDate(rec.mtime)), x('ETag', `"${rec.etag}"`),
    ...Object.entries(checksumReplyHeaders(rec)).filter(([h]) => h !== 'x-amz-checksum-type').map(([h, v]) => x(`Checksum${h.slice('x-amz-checksum-'.length).toUpperCase()}`, v)),
  ]), 200, { ...(s.versioned ? { 'x-amz-copy-source-version-id': s.versionId } : {}), ...(rec.versioned ? { 'x-amz-version-id': rec.versionId } : {}) });
}
