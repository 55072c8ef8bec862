// DeleteObject and DeleteObjects (up to 1000 keys, quiet mode).
import { createHash } from 'node:crypto';
import type { Ctx, Reply } from '../context';
import { header, xmlReply } from '../context';
import { S3Error } from '../errors';
import { x, xmlDoc, parseXml, text, children } from '../xml';
import { readSmallBody } from '../body';
import { requireBucketKey } from './common';
import { versionOf } from './get';
import { lockGuard } from './object-lock';
import { toS3Error } from '../errors';
import type { DeleteResult, ObjectRecord } from '../../storage';

function deleteHeaders(r: DeleteResult): Record<string, string> {
  const h: Record<string, string> = {};
  if (r.deleteMarker) h['x-amz-delete-marker'] = 'true';
  if (r.versionId !== undefined && (r.deleteMarker || r.versionId !== 'null' || r.deleted?.versioned)) h['x-amz-version-id'] = r.versionId;
  return h;
}

/**
 * Conditional delete (If-Match, x-amz-if-match-last-modified-time, x-amz-if-match-size): judged
 * against the version being deleted, under the key lock. A key that does not exist at all is
 * not an error, as on S3.
 */
function deleteCondition(ifMatch?: string, lastModified?: string, size?: string): ((r: ObjectRecord) => void) | undefined {
  if (ifMatch === undefined && lastModified === undefined && size === undefined) return undefined;
  return (r) => {
    if (ifMatch !== undefined && ifMatch.trim() !== '*' && ifMatch.trim().replace(/^"|"$/g, '') !== r.etag) throw new S3Error('PreconditionFailed');
    if (lastModified !== undefined && Math.floor(Date.parse(lastModified) / 1000) !== Math.floor(r.mtime / 1000)) throw new S3Error('PreconditionFailed');
    if (size !== undefined && Number(size) !== r.size) throw new S3Error('PreconditionFailed');
  };
}

export async function deleteObject(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  const versionId = versionOf(ctx);
  const check = deleteCondition(header(ctx, 'if-match'), header(ctx, 'x-amz-if-match-last-modified-time'), header(ctx, 'x-amz-if-match-size'));
  const r = await ctx.store.deleteObject(ctx.bucket, ctx.key, { versionId, canDelete: lockGuard(ctx), check });
  return { status: 204, headers: deleteHeaders(r) };
}

const MAX_DELETE_KEYS = 1000;

export async function deleteObjects(ctx: Ctx): Promise<Reply> {
  await ctx.store.getBucket(ctx.bucket);
  const body = await readSmallBody(ctx, 2 * 1024 * 1024);
  // S3 requires an integrity header on this call; current SDKs send a checksum instead of MD5.
  const hasIntegrity = header(ctx, 'content-md5') !== undefined || Object.keys(ctx.headers).some((h) => h.startsWith('x-amz-checksum-')) || !!header(ctx, 'x-amz-trailer');
  if (!hasIntegrity) throw new S3Error('InvalidRequest', 'Missing required header for this request: Content-MD5');
  if (header(ctx, 'content-md5') !== undefined && createHash('md5').update(body).digest('base64') !== header(ctx, 'content-md5')) throw new S3Error('BadDigest');
  const doc = await parseXml(body, 'Delete');
  const objects = children(doc, 'Object');
  if (objects.length === 0) throw new S3Error('MalformedXML');
  if (objects.length > MAX_DELETE_KEYS) throw new S3Error('MalformedXML', `at most ${MAX_DELETE_KEYS} keys per request`);
  const quiet = (text(doc, 'Quiet') ?? '').toLowerCase() === 'true';
  const deleted: ReturnType<typeof x>[] = [];
  const errors: ReturnType<typeof x>[] = [];
  for (const o of objects) {
    const key = text(o, 'Key');
    const versionId = text(o, 'VersionId');
    if (key === undefined) throw new S3Error('MalformedXML');
    try {
      const check = deleteCondition(text(o, 'ETag'), text(o, 'LastModifiedTime'), text(o, 'Size'));
      const r = await ctx.store.deleteObject(ctx.bucket, key, { versionId, canDelete: lockGuard(ctx), check });
      if (!quiet) {
        deleted.push(x('Deleted', [
          x('Key', key), versionId !== undefined ? x('VersionId', versionId) : undefined,
          r.deleteMarker ? x('DeleteMarker', true) : undefined,
          r.deleteMarker && r.versionId !== undefined ? x('DeleteMarkerVersionId', r.versionId) : undefined,
        ]));
      }
    } catch (e) {
      const code = e instanceof S3Error ? e.code : toS3Error(e).code;
      errors.push(x('Error', [x('Key', key), versionId !== undefined ? x('VersionId', versionId) : undefined, x('Code', code), x('Message', (e as Error).message)]));
    }
  }
  return xmlReply(xmlDoc('DeleteResult', [...deleted, ...errors]));
}
