// Versioning, Object Lock, lifecycle and CORS through the real AWS SDK v3.
import t from 'tap';
import {
  CreateBucketCommand, PutBucketVersioningCommand, GetBucketVersioningCommand, PutObjectCommand, GetObjectCommand,
  DeleteObjectCommand, ListObjectVersionsCommand, ListObjectsV2Command, HeadObjectCommand, PutObjectRetentionCommand,
  GetObjectRetentionCommand, PutObjectLegalHoldCommand, GetObjectLockConfigurationCommand, PutObjectLockConfigurationCommand,
  PutBucketLifecycleConfigurationCommand, GetBucketLifecycleConfigurationCommand, DeleteBucketLifecycleCommand,
  PutBucketCorsCommand, GetBucketCorsCommand, CopyObjectCommand, DeleteBucketCommand, PutBucketAclCommand, GetBucketAclCommand,
} from '@aws-sdk/client-s3';
import { startServer } from './helpers/server';
import { runLifecycle } from '../server/ops/lifecycle';

t.test('versioning: versions, null version, delete markers, suspend', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.close());
  const s3 = srv.client();
  const Bucket = 'vers';
  await s3.send(new CreateBucketCommand({ Bucket }));
  await s3.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'v0' }));
  t.same((await s3.send(new GetBucketVersioningCommand({ Bucket }))).Status, undefined);
  await s3.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  t.equal((await s3.send(new GetBucketVersioningCommand({ Bucket }))).Status, 'Enabled');
  const v1 = await s3.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'v1' }));
  const v2 = await s3.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'v2' }));
  t.ok(v1.VersionId && v2.VersionId && v1.VersionId !== v2.VersionId);
  const read = async (VersionId?: string) => (await s3.send(new GetObjectCommand({ Bucket, Key: 'k', VersionId }))).Body!.transformToString();
  t.equal(await read(), 'v2');
  t.equal(await read(v1.VersionId), 'v1');
  t.equal(await read('null'), 'v0', 'the pre-versioning object is the null version');
  const del = await s3.send(new DeleteObjectCommand({ Bucket, Key: 'k' }));
  t.equal(del.DeleteMarker, true);
  await t.rejects(read(), { name: 'NoSuchKey' });
  const headMarker = await s3.send(new HeadObjectCommand({ Bucket, Key: 'k', VersionId: del.VersionId })).then(() => 200, (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode);
  t.equal(headMarker, 405, 'a delete marker asked for by id is 405');
  const listed = await s3.send(new ListObjectsV2Command({ Bucket }));
  t.equal(listed.KeyCount, 0, 'a delete marker hides the key from listings');
  const vers = await s3.send(new ListObjectVersionsCommand({ Bucket }));
  t.equal(vers.Versions?.length, 3);
  t.equal(vers.DeleteMarkers?.length, 1);
  t.equal(vers.DeleteMarkers?.[0].IsLatest, true);
  await s3.send(new DeleteObjectCommand({ Bucket, Key: 'k', VersionId: del.VersionId }));
  t.equal(await read(), 'v2', 'removing the marker brings the latest version back');
  const page1 = await s3.send(new ListObjectVersionsCommand({ Bucket, MaxKeys: 2 }));
  t.equal(page1.IsTruncated, true);
  const page2 = await s3.send(new ListObjectVersionsCommand({ Bucket, MaxKeys: 2, KeyMarker: page1.NextKeyMarker, VersionIdMarker: page1.NextVersionIdMarker }));
  t.same([...page1.Versions!, ...page2.Versions!].map((v) => v.VersionId), [v2.VersionId, v1.VersionId, 'null']);
  const copy = await s3.send(new CopyObjectCommand({ Bucket, Key: 'copy', CopySource: `${Bucket}/k?versionId=${v1.VersionId}` }));
  t.ok(copy.VersionId);
  t.equal(await (await s3.send(new GetObjectCommand({ Bucket, Key: 'copy' }))).Body!.transformToString(), 'v1');

  await s3.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Suspended' } }));
  const s1 = await s3.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 's1' }));
  const s2 = await s3.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 's2' }));
  t.equal(s1.VersionId, undefined, 'suspended writes report no version id');
  t.equal(s2.VersionId, undefined);
  const afterSuspend = await s3.send(new ListObjectVersionsCommand({ Bucket, Prefix: 'k' }));
  t.same(afterSuspend.Versions?.map((v) => v.VersionId), ['null', v2.VersionId, v1.VersionId], 'suspended writes replace the single null version');
  for (const v of [...(await s3.send(new ListObjectVersionsCommand({ Bucket }))).Versions!]) {
    await s3.send(new DeleteObjectCommand({ Bucket, Key: v.Key, VersionId: v.VersionId }));
  }
  await s3.send(new DeleteBucketCommand({ Bucket }));
});

t.test('object lock: retention and legal hold', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.close());
  const s3 = srv.client();
  const Bucket = 'locked';
  await s3.send(new CreateBucketCommand({ Bucket, ObjectLockEnabledForBucket: true }));
  t.equal((await s3.send(new GetBucketVersioningCommand({ Bucket }))).Status, 'Enabled');
  await s3.send(new PutObjectLockConfigurationCommand({ Bucket, ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 1 } } } }));
  t.equal((await s3.send(new GetObjectLockConfigurationCommand({ Bucket }))).ObjectLockConfiguration?.Rule?.DefaultRetention?.Mode, 'GOVERNANCE');
  const put = await s3.send(new PutObjectCommand({ Bucket, Key: 'ckpt', Body: 'weights' }));
  const head = await s3.send(new HeadObjectCommand({ Bucket, Key: 'ckpt' }));
  t.equal(head.ObjectLockMode, 'GOVERNANCE');
  await t.rejects(s3.send(new DeleteObjectCommand({ Bucket, Key: 'ckpt', VersionId: put.VersionId })), { name: 'AccessDenied' });
  await s3.send(new DeleteObjectCommand({ Bucket, Key: 'ckpt', VersionId: put.VersionId, BypassGovernanceRetention: true }));
  const c = await s3.send(new PutObjectCommand({ Bucket, Key: 'audit', Body: 'log', ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: new Date(Date.now() + 3600_000) }));
  await t.rejects(s3.send(new DeleteObjectCommand({ Bucket, Key: 'audit', VersionId: c.VersionId, BypassGovernanceRetention: true })), { name: 'AccessDenied' });
  const r = await s3.send(new GetObjectRetentionCommand({ Bucket, Key: 'audit' }));
  t.equal(r.Retention?.Mode, 'COMPLIANCE');
  await t.rejects(s3.send(new PutObjectRetentionCommand({ Bucket, Key: 'audit', Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(Date.now() + 60_000) } })), { name: 'AccessDenied' });
  const h = await s3.send(new PutObjectCommand({ Bucket, Key: 'held', Body: 'x', ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: new Date(Date.now() + 1000) }));
  await s3.send(new PutObjectLegalHoldCommand({ Bucket, Key: 'held', LegalHold: { Status: 'ON' } }));
  await t.rejects(s3.send(new DeleteObjectCommand({ Bucket, Key: 'held', VersionId: h.VersionId, BypassGovernanceRetention: true })), { name: 'AccessDenied' });
  await s3.send(new PutObjectLegalHoldCommand({ Bucket, Key: 'held', LegalHold: { Status: 'OFF' } }));
  await s3.send(new DeleteObjectCommand({ Bucket, Key: 'held', VersionId: h.VersionId, BypassGovernanceRetention: true }));
  await t.rejects(s3.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Suspended' } })), { name: 'InvalidBucketState' });
});

t.test('lifecycle: validation and expiration', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.close());
  const s3 = srv.client();
  const Bucket = 'lcyc';
  await s3.send(new CreateBucketCommand({ Bucket }));
  await t.rejects(s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket })), { name: 'NoSuchLifecycleConfiguration' });
  await t.rejects(s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket, LifecycleConfiguration: { Rules: [{ ID: 'a', Status: 'Enabled', Filter: { Prefix: 'x/' }, Expiration: { Days: 0 } }] } })), { name: 'InvalidArgument' });
  await t.rejects(s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket, LifecycleConfiguration: { Rules: [
    { ID: 'a', Status: 'Enabled', Filter: { Prefix: 'x/' }, Expiration: { Days: 1 } }, { ID: 'a', Status: 'Enabled', Filter: { Prefix: 'y/' }, Expiration: { Days: 1 } }] } })), { name: 'InvalidArgument' });
  await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket, LifecycleConfiguration: { Rules: [{ ID: 'tmp', Status: 'Enabled', Filter: { Prefix: 'tmp/' }, Expiration: { Days: 1 } }] } }));
  const got = await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket }));
  t.equal(got.Rules?.[0].ID, 'tmp');
  await s3.send(new PutObjectCommand({ Bucket, Key: 'tmp/a', Body: 'a' }));
  await s3.send(new PutObjectCommand({ Bucket, Key: 'keep/b', Body: 'b' }));
  // Run the worker as if two days had passed.
  const removed = await runLifecycle(srv.kiln.store, srv.kiln.store as never, 86_400_000, Date.now() + 2 * 86_400_000).catch(() => -1);
  t.ok(removed >= 1);
  const left = await s3.send(new ListObjectsV2Command({ Bucket }));
  t.same(left.Contents?.map((c) => c.Key), ['keep/b']);
  await s3.send(new DeleteBucketLifecycleCommand({ Bucket }));
  await t.rejects(s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket })), { name: 'NoSuchLifecycleConfiguration' });
});

t.test('CORS: rules, preflight, response headers; canned ACLs', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.close());
  const s3 = srv.client();
  const Bucket = 'web';
  await s3.send(new CreateBucketCommand({ Bucket }));
  await s3.send(new PutBucketCorsCommand({ Bucket, CORSConfiguration: { CORSRules: [{ AllowedOrigins: ['https://*.example.com'], AllowedMethods: ['GET', 'PUT'], AllowedHeaders: ['*'], MaxAgeSeconds: 600 }] } }));
  t.equal((await s3.send(new GetBucketCorsCommand({ Bucket }))).CORSRules?.[0].MaxAgeSeconds, 600);
  const ok = await fetch(`${srv.endpoint}/${Bucket}/x`, { method: 'OPTIONS', headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'content-type' } });
  t.equal(ok.status, 200);
  t.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example.com');
  const bad = await fetch(`${srv.endpoint}/${Bucket}/x`, { method: 'OPTIONS', headers: { Origin: 'https://evil.test', 'Access-Control-Request-Method': 'GET' } });
  t.equal(bad.status, 403);
  await s3.send(new PutObjectCommand({ Bucket, Key: 'pub', Body: 'hello', ACL: 'public-read' }));
  await s3.send(new PutObjectCommand({ Bucket, Key: 'priv', Body: 'secret' }));
  const anonPub = await fetch(`${srv.endpoint}/${Bucket}/pub`, { headers: { Origin: 'https://app.example.com' } });
  t.equal(anonPub.status, 200, 'public-read object readable anonymously');
  t.equal(await anonPub.text(), 'hello');
  t.equal(anonPub.headers.get('access-control-allow-origin'), 'https://app.example.com');
  t.equal((await fetch(`${srv.endpoint}/${Bucket}/priv`)).status, 403, 'private object is not');
  t.equal((await fetch(`${srv.endpoint}/${Bucket}`)).status, 403, 'private bucket listing is not');
  await s3.send(new PutBucketAclCommand({ Bucket, ACL: 'public-read' }));
  t.equal((await fetch(`${srv.endpoint}/${Bucket}`)).status, 200, 'public-read bucket lists anonymously');
  const acl = await s3.send(new GetBucketAclCommand({ Bucket }));
  t.ok(acl.Grants?.some((g) => g.Grantee?.URI?.endsWith('AllUsers') && g.Permission === 'READ'));
  t.equal((await fetch(`${srv.endpoint}/${Bucket}/anon`, { method: 'PUT', body: 'x' })).status, 403, 'public-read does not allow anonymous writes');
});
