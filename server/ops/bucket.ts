// Bucket operations: list, create, head, delete, location, versioning state, ACL view.
import { createHash } from 'node:crypto';
import type { Ctx, Reply } from '../context';
import { header, xmlReply } from '../context';
import { S3Error } from '../errors';
import { x, xmlDoc, isoDate, parseXml, text } from '../xml';
import { readSmallBody } from '../body';
import { visibleBucket } from '../auth/identity';
import { isStorageError } from '../../storage';
import { cannedAcl, bucketAcl, aclGrants, CannedAcl } from '../auth/access';
import { versionOf } from './get';

export function ownerXml(accessKey: string) {
  return [x('ID', ownerId(accessKey)), x('DisplayName', accessKey || 'anonymous')];
}

export function ownerId(accessKey: string): string {
  return createHash('sha256').update(`kiln-owner:${accessKey}`).digest('hex');
}

export function validateBucketName(name: string): void {
  const ok = name.length >= 3 && name.length <= 63
    && /^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name)
    && !name.includes('..') && !name.includes('.-') && !name.includes('-.')
    && !/^\d+\.\d+\.\d+\.\d+$/.test(name)
    && !name.startsWith('xn--') && !name.startsWith('sthree-')
    && !name.endsWith('-s3alias') && !name.endsWith('--ol-s3');
  if (!ok) throw new S3Error('InvalidBucketName', undefined, { BucketName: name });
}

export async function listBuckets(ctx: Ctx): Promise<Reply> {
  const prefix = ctx.query['prefix'] ?? '';
  const max = Math.min(Number(ctx.query['max-buckets'] ?? 10000) || 10000, 10000);
  const after = ctx.query['continuation-token'] ? Buffer.from(ctx.query['continuation-token'], 'base64url').toString('utf8') : '';
  const all = (await ctx.store.listBuckets()).filter((b) => visibleBucket(ctx.identity, b.name, b.owner) && b.name.startsWith(prefix) && b.name > after);
  const page = all.slice(0, max);
  const more = all.length > page.length;
  return xmlReply(xmlDoc('ListAllMyBucketsResult', [
    x('Owner', ownerXml(ctx.identity.accessKey)),
    x('Buckets', page.map((b) => x('Bucket', [x('Name', b.name), x('CreationDate', isoDate(b.created)), x('BucketRegion', ctx.config.region)]))),
    more ? x('ContinuationToken', Buffer.from(page[page.length - 1].name).toString('base64url')) : undefined,
    'prefix' in ctx.query ? x('Prefix', prefix) : undefined,
  ]));
}

export async function createBucket(ctx: Ctx): Promise<Reply> {
  validateBucketName(ctx.bucket);
  const acl = cannedAcl(ctx);
  const body = await readSmallBody(ctx, 64 * 1024);
  if (body.length > 0) {
    const conf = await parseXml(body, 'CreateBucketConfiguration');
    const loc = text(conf, 'LocationConstraint');
    if (loc !== undefined && loc !== '' && loc !== ctx.config.region) {
      throw new S3Error('InvalidArgument', `The specified location-constraint is not valid for this endpoint (${ctx.config.region})`, { ArgumentName: 'LocationConstraint', ArgumentValue: loc });
    }
  }
  try {
    const lock = (header(ctx, 'x-amz-bucket-object-lock-enabled') ?? '').toLowerCase() === 'true';
    // Object Lock needs versions to protect: a lock-enabled bucket is versioned from birth.
    await ctx.store.createBucket(ctx.bucket, { owner: ctx.identity.accessKey, versioning: lock ? 'Enabled' : undefined, config: { ...(lock ? { objectLock: { enabled: true } } : {}), ...(acl && acl !== 'private' ? { acl } : {}) } });
  } catch (e) {
    if (isStorageError(e, 'BucketAlreadyExists')) {
      const b = await ctx.store.getBucket(ctx.bucket);
      if (b.owner === ctx.identity.accessKey || ctx.identity.root) {
        // AWS: us-east-1 answers 200 to the owner re-creating a bucket; every other region says 409.
        if (ctx.config.region === 'us-east-1') return { status: 200, headers: { location: `/${ctx.bucket}` } };
        throw new S3Error('BucketAlreadyOwnedByYou', undefined, { BucketName: ctx.bucket });
      }
      throw new S3Error('BucketAlreadyExists', undefined, { BucketName: ctx.bucket });
    }
    throw e;
  }
  return { status: 200, headers: { location: `/${ctx.bucket}` } };
}

export async function headBucket(ctx: Ctx): Promise<Reply> {
  await ctx.store.getBucket(ctx.bucket);
  return { status: 200, headers: { 'x-amz-bucket-region': ctx.config.region } };
}

export async function deleteBucket(ctx: Ctx): Promise<Reply> {
  // As on S3, incomplete multipart uploads do not keep a bucket alive: they are aborted.
  const probe = await ctx.store.listObjects(ctx.bucket, { maxKeys: 1 });
  if (probe.objects.length > 0) throw new S3Error('BucketNotEmpty', undefined, { BucketName: ctx.bucket });
  for (let round = 0; round < 100; round++) {
    const { uploads } = await ctx.mp.listUploads(ctx.bucket, { max: 1000 });
    if (uploads.length === 0) break;
    for (const u of uploads) await ctx.mp.abort(ctx.bucket, u.key, u.uploadId).catch(() => undefined);
  }
  await ctx.store.deleteBucket(ctx.bucket);
  return { status: 204 };
}

export async function getLocation(ctx: Ctx): Promise<Reply> {
  await ctx.store.getBucket(ctx.bucket);
  // AWS reports us-east-1 as an empty constraint; SDKs map that back to us-east-1.
  return xmlReply(xmlDoc('LocationConstraint', ctx.config.region === 'us-east-1' ? '' : ctx.config.region));
}

export async function getVersioning(ctx: Ctx): Promise<Reply> {
  const b = await ctx.store.getBucket(ctx.bucket);
  return xmlReply(xmlDoc('VersioningConfiguration', b.versioning ? x('Status', b.versioning) : []));
}

export async function putVersioning(ctx: Ctx): Promise<Reply> {
  await ctx.store.getBucket(ctx.bucket);
  const doc = await parseXml(await readSmallBody(ctx, 64 * 1024), 'VersioningConfiguration');
  const status = text(doc, 'Status');
  const mfa = text(doc, 'MfaDelete');
  if (mfa !== undefined && mfa !== 'Disabled') throw new S3Error('NotImplemented', 'MFA delete is not supported');
  if (status !== 'Enabled' && status !== 'Suspended') throw new S3Error('MalformedXML');
  const b = await ctx.store.getBucket(ctx.bucket);
  if (status === 'Suspended' && b.config.objectLock) throw new S3Error('InvalidBucketState', 'An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.');
  await ctx.store.updateBucket(ctx.bucket, (r) => { r.versioning = status; });
  return { status: 200 };
}

/** ACLs are canned (private, public-read, ...): this reports the grants the canned ACL stands for. */
export async function getAcl(ctx: Ctx): Promise<Reply> {
  const b = await ctx.store.getBucket(ctx.bucket);
  let acl = bucketAcl(b);
  let owner = b.owner ?? ctx.identity.accessKey;
  if (ctx.key) {
    const rec = await ctx.store.headObject(ctx.bucket, ctx.key, versionOf(ctx));
    acl = (rec.acl ?? 'private') as CannedAcl;
    owner = rec.owner ?? owner;
  }
  const ownerEl = ownerXml(owner);
  const xsi = (type: string) => ({ 'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance', 'xsi:type': type });
  return xmlReply(xmlDoc('AccessControlPolicy', [
    x('Owner', ownerEl),
    x('AccessControlList', [
      x('Grant', [x('Grantee', ownerEl, xsi('CanonicalUser')), x('Permission', 'FULL_CONTROL')]),
      ...aclGrants(acl).map((g) => x('Grant', [x('Grantee', x('URI', g.group!), xsi('Group')), x('Permission', g.permission)])),
    ]),
  ]));
}

/** Put{Bucket,Object}Acl with a canned ACL header; full grant documents are not supported. */
export async function putAcl(ctx: Ctx): Promise<Reply> {
  const acl = cannedAcl(ctx);
  const body = await readSmallBody(ctx, 64 * 1024);
  if (acl === undefined) {
    if (body.length > 0) throw new S3Error('NotImplemented', 'ACL grant documents are not supported; use a canned ACL (x-amz-acl)');
    throw new S3Error('MissingSecurityHeader', 'Your request was missing a required header', { MissingHeaderName: 'x-amz-acl' });
  }
  if (ctx.key) {
    await ctx.store.updateObject(ctx.bucket, ctx.key, (r) => { r.acl = acl === 'private' ? undefined : acl; }, versionOf(ctx));
  } else {
    await ctx.store.updateBucket(ctx.bucket, (b) => { if (acl === 'private') delete b.config.acl; else b.config.acl = acl; });
  }
  return { status: 200 };
}
