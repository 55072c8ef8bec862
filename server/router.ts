// THE routing table. One row per S3 operation: (method, level, sub-resource, copy-source) →
// operation name, required permission and handler. The first matching row wins, so rows with
// a sub-resource come before the plain ones. A request that matches no row, or names a
// sub-resource Kiln does not serve, gets 501 NotImplemented in S3 error XML.
import type { Handler } from './context';
import * as bucket from './ops/bucket';
import * as get from './ops/get';
import * as put from './ops/put';
import * as copy from './ops/copy';
import * as del from './ops/delete';
import * as list from './ops/list';
import * as multipart from './ops/multipart';
import * as tagging from './ops/tagging';
import * as attributes from './ops/attributes';
import * as postObject from './ops/post-object';
import * as lock from './ops/object-lock';
import * as lifecycle from './ops/lifecycle';
import * as cors from './ops/cors';
import * as express from './ops/express';
import * as session from './auth/session';

export type Level = 'service' | 'bucket' | 'object';
export type Permission = 'read' | 'write' | 'owner';

export interface Route {
  method: string;
  level: Level;
  /** Query parameter that selects the sub-resource (e.g. 'uploads'); absent = plain. */
  sub?: string;
  /** Requires (true) or forbids (false) the x-amz-copy-source header. */
  copy?: boolean;
  /** Requires a multipart/form-data body (browser POST upload). */
  form?: boolean;
  op: string;
  perm: Permission;
  handler: Handler;
}

const R = (method: string, level: Level, op: string, perm: Permission, handler: Handler, extra: Partial<Route> = {}): Route =>
  ({ method, level, op, perm, handler, ...extra });

export const ROUTES: Route[] = [
  R('GET', 'service', 'ListBuckets', 'read', bucket.listBuckets),

  R('PUT', 'bucket', 'PutBucketTagging', 'owner', tagging.putBucketTagging, { sub: 'tagging' }),
  R('PUT', 'bucket', 'PutBucketVersioning', 'owner', bucket.putVersioning, { sub: 'versioning' }),
  R('PUT', 'bucket', 'PutObjectLockConfiguration', 'owner', lock.putLockConfiguration, { sub: 'object-lock' }),
  R('PUT', 'bucket', 'PutBucketLifecycleConfiguration', 'owner', lifecycle.putLifecycle, { sub: 'lifecycle' }),
  R('PUT', 'bucket', 'PutBucketCors', 'owner', cors.putCors, { sub: 'cors' }),
  R('PUT', 'bucket', 'CreateBucket', 'owner', bucket.createBucket),
  R('GET', 'bucket', 'GetBucketLifecycleConfiguration', 'read', lifecycle.getLifecycle, { sub: 'lifecycle' }),
  R('GET', 'bucket', 'GetBucketCors', 'read', cors.getCors, { sub: 'cors' }),
  R('DELETE', 'bucket', 'DeleteBucketLifecycle', 'owner', lifecycle.deleteLifecycle, { sub: 'lifecycle' }),
  R('DELETE', 'bucket', 'DeleteBucketCors', 'owner', cors.deleteCors, { sub: 'cors' }),
  R('GET', 'bucket', 'GetObjectLockConfiguration', 'read', lock.getLockConfiguration, { sub: 'object-lock' }),
  R('GET', 'bucket', 'GetBucketLocation', 'read', bucket.getLocation, { sub: 'location' }),
  R('GET', 'bucket', 'GetBucketVersioning', 'read', bucket.getVersioning, { sub: 'versioning' }),
  R('GET', 'bucket', 'GetBucketTagging', 'read', tagging.getBucketTagging, { sub: 'tagging' }),
  R('GET', 'bucket', 'GetBucketAcl', 'read', bucket.getAcl, { sub: 'acl' }),
  R('PUT', 'bucket', 'PutBucketAcl', 'owner', bucket.putAcl, { sub: 'acl' }),
  // perm is decided by the requested session mode (auth/session.ts authorizeCreateSession).
  R('GET', 'bucket', 'CreateSession', 'write', session.createSession, { sub: 'session' }),
  R('GET', 'bucket', 'ListMultipartUploads', 'read', multipart.listUploads, { sub: 'uploads' }),
  R('GET', 'bucket', 'ListObjectVersions', 'read', list.listObjectVersions, { sub: 'versions' }),
  R('GET', 'bucket', 'ListObjectsV2', 'read', list.listObjectsV2, { sub: 'list-type' }),
  R('GET', 'bucket', 'ListObjects', 'read', list.listObjectsV1),
  R('HEAD', 'bucket', 'HeadBucket', 'read', bucket.headBucket),
  R('DELETE', 'bucket', 'DeleteBucketTagging', 'owner', tagging.deleteBucketTagging, { sub: 'tagging' }),
  R('DELETE', 'bucket', 'DeleteBucket', 'owner', bucket.deleteBucket),
  R('POST', 'bucket', 'DeleteObjects', 'write', del.deleteObjects, { sub: 'delete' }),
  R('POST', 'bucket', 'PostObject', 'write', postObject.postObject, { form: true }),

  R('PUT', 'object', 'UploadPartCopy', 'write', multipart.uploadPartCopy, { sub: 'uploadId', copy: true }),
  R('PUT', 'object', 'UploadPart', 'write', multipart.uploadPart, { sub: 'uploadId' }),
  R('PUT', 'object', 'PutObjectTagging', 'write', tagging.putObjectTagging, { sub: 'tagging' }),
  R('PUT', 'object', 'PutObjectRetention', 'write', lock.putRetention, { sub: 'retention' }),
  R('PUT', 'object', 'PutObjectLegalHold', 'write', lock.putLegalHold, { sub: 'legal-hold' }),
  R('PUT', 'object', 'RenameObject', 'write', express.renameObject, { sub: 'renameObject' }),
  R('PUT', 'object', 'CopyObject', 'write', copy.copyObject, { copy: true }),
  R('PUT', 'object', 'PutObject', 'write', put.putObject),
  R('GET', 'object', 'ListParts', 'read', multipart.listParts, { sub: 'uploadId' }),
  R('GET', 'object', 'GetObjectTagging', 'read', tagging.getObjectTagging, { sub: 'tagging' }),
  R('GET', 'object', 'GetObjectRetention', 'read', lock.getRetention, { sub: 'retention' }),
  R('GET', 'object', 'GetObjectLegalHold', 'read', lock.getLegalHold, { sub: 'legal-hold' }),
  R('GET', 'object', 'GetObjectAttributes', 'read', attributes.getObjectAttributes, { sub: 'attributes' }),
  R('GET', 'object', 'GetObjectAcl', 'read', bucket.getAcl, { sub: 'acl' }),
  R('PUT', 'object', 'PutObjectAcl', 'write', bucket.putAcl, { sub: 'acl' }),
  R('GET', 'object', 'GetObject', 'read', get.getObject),
  R('HEAD', 'object', 'HeadObject', 'read', get.headObject),
  R('DELETE', 'object', 'AbortMultipartUpload', 'write', multipart.abortUpload, { sub: 'uploadId' }),
  R('DELETE', 'object', 'DeleteObjectTagging', 'write', tagging.deleteObjectTagging, { sub: 'tagging' }),
  R('DELETE', 'object', 'DeleteObject', 'write', del.deleteObject),
  R('POST', 'object', 'CreateMultipartUpload', 'write', multipart.createUpload, { sub: 'uploads' }),
  R('POST', 'object', 'CompleteMultipartUpload', 'write', multipart.completeUpload, { sub: 'uploadId' }),
];

/**
 * Query keys that name an S3 sub-resource. A request carrying one that no row above serves
 * (e.g. ?policy, ?website, ?select) is NotImplemented rather than silently treated as plain.
 */
export const SUB_RESOURCES = new Set([
  'accelerate', 'acl', 'analytics', 'attributes', 'cors', 'delete', 'encryption', 'intelligent-tiering', 'inventory',
  'legal-hold', 'lifecycle', 'location', 'logging', 'metrics', 'notification', 'object-lock', 'ownershipControls',
  'policy', 'policyStatus', 'publicAccessBlock', 'replication', 'requestPayment', 'restore', 'retention', 'select',
  'session', 'tagging', 'torrent', 'uploadId', 'uploads', 'versioning', 'versions', 'website', 'renameObject',
]);

export interface RouteInput { method: string; level: Level; query: Record<string, string>; hasCopySource: boolean; isForm: boolean }

export function route(r: RouteInput): Route | { op: 'NotImplemented'; sub: string } {
  const method = r.method;
  const subs = Object.keys(r.query).filter((q) => SUB_RESOURCES.has(q));
  for (const row of ROUTES) {
    if (row.method !== method || row.level !== r.level) continue;
    // A plain row never serves a request that names a sub-resource (PUT ?acl is not CreateBucket).
    if (row.sub === undefined ? subs.length > 0 : !(row.sub in r.query)) continue;
    if (row.copy !== undefined && row.copy !== r.hasCopySource) continue;
    if (row.form && !r.isForm) continue;
    return row;
  }
  return { op: 'NotImplemented', sub: subs[0] ?? '' };
}
