// The access decision, in one place. Kiln has three kinds of principal: root (everything), an
// access key (its listed buckets with read or read-write rights, plus — for owner-scoped keys —
// the buckets it created), and anonymous. Canned ACLs on a bucket or object widen that:
// public-read / public-read-write to anyone, authenticated-read to any valid key.
import type { Ctx } from '../context';
import type { Route } from '../router';
import { S3Error } from '../errors';
import type { BucketRecord, ObjectRecord } from '../../storage';
import { allowed } from './identity';
import { authorizeCreateSession } from './session';

export const CANNED_ACLS = ['private', 'public-read', 'public-read-write', 'authenticated-read', 'bucket-owner-read', 'bucket-owner-full-control'] as const;
export type CannedAcl = typeof CANNED_ACLS[number];

/** The x-amz-acl header, validated; full grant headers (x-amz-grant-*) are not supported. */
export function cannedAcl(ctx: Ctx): CannedAcl | undefined {
  const v = ctx.headers['x-amz-acl'];
  const acl = Array.isArray(v) ? v[0] : v;
  for (const h of ['x-amz-grant-read', 'x-amz-grant-write', 'x-amz-grant-full-control', 'x-amz-grant-read-acp', 'x-amz-grant-write-acp']) {
    if (ctx.headers[h] !== undefined) throw new S3Error('NotImplemented', 'ACL grants other than canned ACLs are not supported');
  }
  if (acl === undefined) return undefined;
  if (!(CANNED_ACLS as readonly string[]).includes(acl)) throw new S3Error('InvalidArgument', undefined, { ArgumentName: 'x-amz-acl', ArgumentValue: acl });
  return acl as CannedAcl;
}

export function bucketAcl(b: BucketRecord): CannedAcl { return (b.config.acl as CannedAcl | undefined) ?? 'private'; }

const READ_OPS = new Set(['ListObjects', 'ListObjectsV2', 'ListObjectVersions', 'HeadBucket', 'GetBucketLocation', 'ListMultipartUploads']);
const OBJECT_READ_OPS = new Set(['GetObject', 'HeadObject', 'GetObjectAttributes', 'GetObjectTagging']);
const BUCKET_WRITE_OPS = new Set(['PutObject', 'DeleteObject', 'DeleteObjects', 'CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload', 'AbortMultipartUpload', 'CopyObject', 'UploadPartCopy', 'ListParts']);

/** Owner-scoped keys own the buckets they create, with full rights. */
function owns(ctx: Ctx, b: BucketRecord | undefined): boolean {
  return !!b && !ctx.identity.anonymous && b.owner === ctx.identity.accessKey;
}

/** Throws AccessDenied unless the caller may run `row` on ctx.bucket / ctx.key. */
export async function authorize(ctx: Ctx, row: Route): Promise<void> {
  const who = ctx.identity;
  if (who.root) return;
  if (!ctx.bucket) {
    if (who.anonymous) throw new S3Error('AccessDenied');
    return; // ListBuckets: filtered to what the key may see
  }
  if (row.op === 'CreateSession') return authorizeCreateSession(ctx, row);
  if (row.op === 'CreateBucket') {
    if (who.anonymous) throw new S3Error('AccessDenied');
    if (who.ownBuckets || allowed(who, 'write', ctx.bucket)) return;
    throw new S3Error('AccessDenied');
  }
  if (!who.anonymous && allowed(who, row.perm, ctx.bucket)) return;
  const b = await ctx.store.getBucket(ctx.bucket).catch(() => undefined);
  // S3 answers NoSuchBucket to anyone: bucket names are global and not secret.
  if (!b) throw new S3Error('NoSuchBucket', undefined, { BucketName: ctx.bucket });
  if (owns(ctx, b)) return;
  const acl = bucketAcl(b);
  const grantsRead = acl === 'public-read' || acl === 'public-read-write' || (acl === 'authenticated-read' && !who.anonymous);
  if (READ_OPS.has(row.op) && grantsRead) return;
  if (BUCKET_WRITE_OPS.has(row.op) && acl === 'public-read-write') return;
  if (OBJECT_READ_OPS.has(row.op) && ctx.key) {
    const rec = await ctx.store.headObject(ctx.bucket, ctx.key).catch(() => undefined);
    const oacl = (rec?.acl ?? 'private') as CannedAcl;
    if (oacl === 'public-read' || oacl === 'public-read-write' || (oacl === 'authenticated-read' && !who.anonymous)) return;
    if (!rec && grantsRead) return; // who may list the bucket may learn the key is missing
  }
  throw new S3Error('AccessDenied');
}

/** May the caller read this object (the source of a copy)? */
export function mayRead(ctx: Ctx, b: BucketRecord, rec: ObjectRecord): boolean {
  const who = ctx.identity;
  if (who.root || (!who.anonymous && allowed(who, 'read', b.name)) || owns(ctx, b)) return true;
  const oacl = rec.acl ?? 'private';
  return oacl === 'public-read' || oacl === 'public-read-write' || (oacl === 'authenticated-read' && !who.anonymous);
}

/** The grants a canned ACL stands for, for Get*Acl. */
export function aclGrants(acl: CannedAcl): { group?: string; permission: string }[] {
  switch (acl) {
    case 'public-read': return [{ group: 'http://acs.amazonaws.com/groups/global/AllUsers', permission: 'READ' }];
    case 'public-read-write': return [
      { group: 'http://acs.amazonaws.com/groups/global/AllUsers', permission: 'READ' },
      { group: 'http://acs.amazonaws.com/groups/global/AllUsers', permission: 'WRITE' },
    ];
    case 'authenticated-read': return [{ group: 'http://acs.amazonaws.com/groups/global/AuthenticatedUsers', permission: 'READ' }];
    default: return [];
  }
}

export type { ObjectRecord };
