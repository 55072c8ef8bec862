// Object and bucket tagging (Put/Get/Delete). Tags live in the object or bucket record.
import type { Ctx, Reply } from '../context';
import { xmlReply } from '../context';
import { S3Error } from '../errors';
import { x, xmlDoc, parseXml, text, children } from '../xml';
import { readSmallBody } from '../body';
import { requireBucketKey, validateTags } from './common';
import { versionOf } from './get';

async function readTagSet(ctx: Ctx, maxTags: number): Promise<Record<string, string>> {
  const doc = await parseXml(await readSmallBody(ctx, 64 * 1024), 'Tagging');
  const set = children(doc, 'TagSet')[0];
  if (!set) throw new S3Error('MalformedXML');
  const tags: Record<string, string> = {};
  for (const t of children(set, 'Tag')) {
    const k = text(t, 'Key');
    const v = text(t, 'Value') ?? '';
    if (k === undefined) throw new S3Error('MalformedXML');
    if (k in tags) throw new S3Error('InvalidTag', 'Cannot provide multiple Tags with the same key');
    tags[k] = v;
  }
  if (Object.keys(tags).length > maxTags) throw new S3Error('InvalidTag', `Object tags cannot be greater than ${maxTags}`);
  if (maxTags === 10) validateTags(tags);
  return tags;
}

function tagXml(tags: Record<string, string> | undefined): string {
  return xmlDoc('Tagging', x('TagSet', Object.entries(tags ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => x('Tag', [x('Key', k), x('Value', v)]))));
}

export async function putObjectTagging(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  await ctx.store.headObject(ctx.bucket, ctx.key, versionOf(ctx));
  const tags = await readTagSet(ctx, 10);
  const rec = await ctx.store.updateObject(ctx.bucket, ctx.key, (r) => { r.tags = tags; }, versionOf(ctx));
  return { status: 200, headers: rec.versioned ? { 'x-amz-version-id': rec.versionId } : {} };
}

export async function getObjectTagging(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  const rec = await ctx.store.headObject(ctx.bucket, ctx.key, versionOf(ctx));
  return xmlReply(tagXml(rec.tags), 200, rec.versioned ? { 'x-amz-version-id': rec.versionId } : {});
}

export async function deleteObjectTagging(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  const rec = await ctx.store.updateObject(ctx.bucket, ctx.key, (r) => { r.tags = undefined; }, versionOf(ctx));
  return { status: 204, headers: rec.versioned ? { 'x-amz-version-id': rec.versionId } : {} };
}

export async function putBucketTagging(ctx: Ctx): Promise<Reply> {
  await ctx.store.getBucket(ctx.bucket);
  const tags = await readTagSet(ctx, 50);
  await ctx.store.updateBucket(ctx.bucket, (b) => { b.config.tags = tags; });
  return { status: 204 };
}

export async function getBucketTagging(ctx: Ctx): Promise<Reply> {
  const b = await ctx.store.getBucket(ctx.bucket);
  const tags = b.config.tags as Record<string, string> | undefined;
  if (!tags) throw new S3Error('NoSuchTagSet', undefined, { BucketName: ctx.bucket });
  return xmlReply(tagXml(tags));
}

export async function deleteBucketTagging(ctx: Ctx): Promise<Reply> {
  await ctx.store.updateBucket(ctx.bucket, (b) => { delete b.config.tags; });
  return { status: 204 };
}
