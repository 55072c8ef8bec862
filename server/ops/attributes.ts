// GetObjectAttributes: ETag, checksum, parts, storage class and size, as asked.
import type { Ctx, Reply } from '../context';
import { header, xmlReply } from '../context';
import { S3Error } from '../errors';
import { x, xmlDoc, httpDate } from '../xml';
import { reportedChecksums, requireBucketKey } from './common';

const KNOWN = new Set(['ETag', 'Checksum', 'ObjectParts', 'StorageClass', 'ObjectSize']);

export async function getObjectAttributes(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  const wanted = (header(ctx, 'x-amz-object-attributes') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (wanted.length === 0 || wanted.some((w) => !KNOWN.has(w))) throw new S3Error('InvalidArgument', 'Invalid attribute name specified.', { ArgumentName: 'x-amz-object-attributes' });
  const rec = await ctx.store.headObject(ctx.bucket, ctx.key, ctx.query['versionId']);
  const want = new Set(wanted);
  const sums = reportedChecksums(rec.checksums);
  const maxParts = Math.min(Number(ctx.query['max-parts'] ?? header(ctx, 'x-amz-max-parts') ?? 1000) || 1000, 1000);
  const marker = Number(header(ctx, 'x-amz-part-number-marker') ?? 0) || 0;
  const parts = rec.multipart ? rec.parts.filter((p) => p.number > marker).slice(0, maxParts) : [];
  return xmlReply(xmlDoc('GetObjectAttributesResponse', [
    want.has('ETag') ? x('ETag', rec.etag) : undefined,
    want.has('Checksum') && sums.length ? x('Checksum', [...sums.map(([a, s]) => x(`Checksum${a}`, s)), rec.checksumType ? x('ChecksumType', rec.checksumType) : undefined]) : undefined,
    want.has('ObjectParts') && rec.multipart ? x('ObjectParts', [
      x('PartsCount', rec.parts.length), x('PartNumberMarker', marker),
      x('NextPartNumberMarker', parts.length ? parts[parts.length - 1].number : marker), x('MaxParts', maxParts),
      x('IsTruncated', parts.length > 0 && parts[parts.length - 1].number !== rec.parts[rec.parts.length - 1].number),
      parts.map((p) => x('Part', [x('PartNumber', p.number), x('Size', p.size), ...Object.entries(p.checksums ?? {}).map(([a, s]) => x(`Checksum${a}`, s))])),
    ]) : undefined,
    want.has('StorageClass') ? x('StorageClass', 'STANDARD') : undefined,
    want.has('ObjectSize') ? x('ObjectSize', rec.size) : undefined,
  ]), 200, { 'last-modified': httpDate(rec.mtime), ...(rec.versioned ? { 'x-amz-version-id': rec.versionId } : {}) });
}
