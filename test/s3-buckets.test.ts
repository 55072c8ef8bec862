// Bucket operations through the real AWS SDK v3 against a running Kiln: list, create (naming
// rules, re-create), head, delete, location, tagging, ACLs and sub-resources Kiln does not serve.
import t from 'tap';
import {
  S3Client, ListBucketsCommand, CreateBucketCommand, HeadBucketCommand, DeleteBucketCommand, GetBucketLocationCommand,
  PutBucketTaggingCommand, GetBucketTaggingCommand, DeleteBucketTaggingCommand, PutObjectCommand, DeleteObjectCommand,
  GetBucketPolicyCommand, PutBucketPolicyCommand, GetBucketWebsiteCommand, GetBucketEncryptionCommand, GetBucketReplicationCommand,
  PutBucketVersioningCommand, GetBucketVersioningCommand, CreateMultipartUploadCommand, ListMultipartUploadsCommand,
  GetBucketAclCommand, PutBucketAclCommand, GetObjectAclCommand, PutObjectAclCommand, GetBucketNotificationConfigurationCommand,
  GetPublicAccessBlockCommand, PutBucketCorsCommand, GetBucketCorsCommand, DeleteBucketCorsCommand,
  PutBucketLifecycleConfigurationCommand, GetBucketLifecycleConfigurationCommand, DeleteBucketLifecycleCommand,
  GetObjectLockConfigurationCommand, PutObjectLockConfigurationCommand,
} from '@aws-sdk/client-s3';
import { startServer, TestServer } from './helpers/server';
import { expectS3Error, raw, assertErrorXml } from './helpers/s3';

let srv: TestServer;
let s3: S3Client;

t.before(async () => {
  srv = await startServer();
  s3 = srv.client();
});
t.teardown(() => srv.close());

t.test('ListBuckets shows every bucket, sorted, with the owner', async (t) => {
  const names = ['list-b', 'list-a', 'list-c.dotted'];
  for (const Bucket of names) await s3.send(new CreateBucketCommand({ Bucket }));
  const r = await s3.send(new ListBucketsCommand({}));
  const got = (r.Buckets ?? []).map((b) => b.Name!).filter((n) => n.startsWith('list-'));
  t.same(got, [...names].sort(), 'all created buckets, in name order');
  t.ok(r.Owner?.ID, 'owner id');
  for (const b of r.Buckets ?? []) t.ok(b.CreationDate instanceof Date && !Number.isNaN(b.CreationDate.getTime()), `${b.Name} has a creation date`);
  const page = await s3.send(new ListBucketsCommand({ MaxBuckets: 1, Prefix: 'list-' }));
  t.equal(page.Buckets?.length, 1, 'max-buckets bounds the page');
  t.equal(page.Buckets?.[0].Name, 'list-a');
  t.ok(page.ContinuationToken, 'a continuation token when more follow');
  const next = await s3.send(new ListBucketsCommand({ MaxBuckets: 10, Prefix: 'list-', ContinuationToken: page.ContinuationToken }));
  t.same(next.Buckets?.map((b) => b.Name), ['list-b', 'list-c.dotted']);
  for (const Bucket of names) await s3.send(new DeleteBucketCommand({ Bucket }));
});

t.test('CreateBucket naming rules → InvalidBucketName', async (t) => {
  const bad = [
    'ab', 'a'.repeat(64), 'bad_name', 'Upper-case', '-leading-dash', 'trailing-dash-', '.leading-dot', 'trailing-dot.',
    'double..dot', 'dash.-dot', 'dot-.dash', '192.168.5.4', 'xn--punycode', 'sthree-prefix', 'name-s3alias', 'name--ol-s3', 'spa ce',
  ];
  for (const Bucket of bad) {
    await expectS3Error(t, s3.send(new CreateBucketCommand({ Bucket })), 'InvalidBucketName', 400, `CreateBucket ${JSON.stringify(Bucket)}`);
  }
  const listed = (await s3.send(new ListBucketsCommand({}))).Buckets ?? [];
  t.same(listed.filter((b) => bad.includes(b.Name!)), [], 'no invalid bucket was created');
  const good = ['abc', 'a'.repeat(63), 'with.dots.and-dashes', '0numeric-start', 'a1-2.b3'];
  for (const Bucket of good) {
    await s3.send(new CreateBucketCommand({ Bucket }));
    t.pass(`CreateBucket ${Bucket}`);
    await s3.send(new DeleteBucketCommand({ Bucket }));
  }
});

t.test('CreateBucket twice', async (t) => {
  await s3.send(new CreateBucketCommand({ Bucket: 'twice' }));
  // AWS documents that us-east-1 answers 200 to the owner re-creating a bucket (legacy behaviour).
  const again = await s3.send(new CreateBucketCommand({ Bucket: 'twice' }));
  t.equal(again.$metadata.httpStatusCode, 200, 'us-east-1: the owner re-creating gets 200');
  await s3.send(new DeleteBucketCommand({ Bucket: 'twice' }));

  // Every other region answers BucketAlreadyOwnedByYou.
  const eu = await startServer({ overrides: { region: 'eu-west-1' } });
  t.teardown(() => eu.close());
  const c = new S3Client({ endpoint: eu.endpoint, region: 'eu-west-1', forcePathStyle: true, credentials: { accessKeyId: 'testroot', secretAccessKey: 'testroot-secret-key' } });
  t.teardown(() => c.destroy());
  await c.send(new CreateBucketCommand({ Bucket: 'twice', CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' } }));
  const err = await expectS3Error(t, c.send(new CreateBucketCommand({ Bucket: 'twice' })), 'BucketAlreadyOwnedByYou', 409, 'eu-west-1 re-create');
  t.equal((err as { BucketName?: string } | undefined)?.BucketName, 'twice', 'error names the bucket');
  t.equal((await c.send(new GetBucketLocationCommand({ Bucket: 'twice' }))).LocationConstraint, 'eu-west-1');
  await expectS3Error(t, c.send(new CreateBucketCommand({ Bucket: 'other', CreateBucketConfiguration: { LocationConstraint: 'ap-south-1' } })),
    'InvalidArgument', 400, 'a location constraint for another region');

  // Someone else's bucket: BucketAlreadyExists.
  const key = await srv.kiln.credentials.create({}, undefined, undefined, 'owner-scoped', true);
  const other = srv.client({ accessKeyId: key.accessKey, secretAccessKey: key.secretKey });
  await s3.send(new CreateBucketCommand({ Bucket: 'root-owned' }));
  await expectS3Error(t, other.send(new CreateBucketCommand({ Bucket: 'root-owned' })), 'BucketAlreadyExists', 409, 'another owner');
  await other.send(new CreateBucketCommand({ Bucket: 'key-owned' }));
  const mine = await other.send(new ListBucketsCommand({}));
  t.same(mine.Buckets?.map((b) => b.Name), ['key-owned'], 'an owner-scoped key sees the buckets it created');
  await other.send(new DeleteBucketCommand({ Bucket: 'key-owned' }));
  await s3.send(new DeleteBucketCommand({ Bucket: 'root-owned' }));
});

t.test('HeadBucket', async (t) => {
  await s3.send(new CreateBucketCommand({ Bucket: 'head-me' }));
  const h = await s3.send(new HeadBucketCommand({ Bucket: 'head-me' }));
  t.equal(h.$metadata.httpStatusCode, 200);
  t.equal(h.BucketRegion, 'us-east-1', 'x-amz-bucket-region');
  // HEAD carries no body, so the SDK can only name the status.
  await expectS3Error(t, s3.send(new HeadBucketCommand({ Bucket: 'no-such-bucket' })), 'NotFound', 404, 'HeadBucket missing');
  await s3.send(new DeleteBucketCommand({ Bucket: 'head-me' }));
});

t.test('DeleteBucket', async (t) => {
  const Bucket = 'del-me';
  await s3.send(new CreateBucketCommand({ Bucket }));
  await s3.send(new PutObjectCommand({ Bucket, Key: 'x', Body: 'x' }));
  const e = await expectS3Error(t, s3.send(new DeleteBucketCommand({ Bucket })), 'BucketNotEmpty', 409, 'non-empty');
  t.equal((e as { BucketName?: string } | undefined)?.BucketName, Bucket);
  await s3.send(new HeadBucketCommand({ Bucket }));
  t.pass('the bucket survives a refused delete');
  await s3.send(new DeleteObjectCommand({ Bucket, Key: 'x' }));
  // Incomplete multipart uploads do not keep a bucket alive (as on S3).
  await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'pending' }));
  t.equal((await s3.send(new ListMultipartUploadsCommand({ Bucket }))).Uploads?.length, 1);
  const d = await s3.send(new DeleteBucketCommand({ Bucket }));
  t.equal(d.$metadata.httpStatusCode, 204);
  await expectS3Error(t, s3.send(new HeadBucketCommand({ Bucket })), 'NotFound', 404, 'deleted bucket is gone');
  await expectS3Error(t, s3.send(new DeleteBucketCommand({ Bucket })), 'NoSuchBucket', 404, 'delete again');
  await expectS3Error(t, s3.send(new DeleteBucketCommand({ Bucket: 'never-existed' })), 'NoSuchBucket', 404, 'delete missing');
});

t.test('GetBucketLocation', async (t) => {
  await s3.send(new CreateBucketCommand({ Bucket: 'where' }));
  const r = await s3.send(new GetBucketLocationCommand({ Bucket: 'where' }));
  t.equal(r.$metadata.httpStatusCode, 200);
  // us-east-1 is reported as an empty LocationConstraint, as AWS does.
  t.notOk(r.LocationConstraint, 'us-east-1 → empty constraint');
  await expectS3Error(t, s3.send(new GetBucketLocationCommand({ Bucket: 'nowhere' })), 'NoSuchBucket', 404, 'missing bucket');
  await s3.send(new DeleteBucketCommand({ Bucket: 'where' }));
});

t.test('bucket tagging', async (t) => {
  const Bucket = 'tagged';
  await s3.send(new CreateBucketCommand({ Bucket }));
  await expectS3Error(t, s3.send(new GetBucketTaggingCommand({ Bucket })), 'NoSuchTagSet', 404, 'no tags yet');
  const TagSet = [{ Key: 'team', Value: 'ml' }, { Key: 'cost-center', Value: '42' }, { Key: 'empty', Value: '' }];
  await s3.send(new PutBucketTaggingCommand({ Bucket, Tagging: { TagSet } }));
  const got = await s3.send(new GetBucketTaggingCommand({ Bucket }));
  t.same([...got.TagSet!].sort((a, b) => a.Key!.localeCompare(b.Key!)), [...TagSet].sort((a, b) => a.Key!.localeCompare(b.Key!)));
  await s3.send(new PutBucketTaggingCommand({ Bucket, Tagging: { TagSet: [{ Key: 'only', Value: 'one' }] } }));
  t.same((await s3.send(new GetBucketTaggingCommand({ Bucket }))).TagSet, [{ Key: 'only', Value: 'one' }], 'put replaces the whole set');
  await expectS3Error(t, s3.send(new PutBucketTaggingCommand({ Bucket, Tagging: { TagSet: [{ Key: 'a', Value: '1' }, { Key: 'a', Value: '2' }] } })),
    'InvalidTag', 400, 'duplicate keys');
  const del = await s3.send(new DeleteBucketTaggingCommand({ Bucket }));
  t.equal(del.$metadata.httpStatusCode, 204);
  await expectS3Error(t, s3.send(new GetBucketTaggingCommand({ Bucket })), 'NoSuchTagSet', 404, 'after delete');
  await expectS3Error(t, s3.send(new GetBucketTaggingCommand({ Bucket: 'no-such-tagged' })), 'NoSuchBucket', 404, 'missing bucket');
  await expectS3Error(t, s3.send(new PutBucketTaggingCommand({ Bucket: 'no-such-tagged', Tagging: { TagSet } })), 'NoSuchBucket', 404, 'put on missing bucket');
  await expectS3Error(t, s3.send(new DeleteBucketTaggingCommand({ Bucket: 'no-such-tagged' })), 'NoSuchBucket', 404, 'delete on missing bucket');
  await s3.send(new DeleteBucketCommand({ Bucket }));
});

t.test('versioning state and canned ACLs', async (t) => {
  const Bucket = 'acl-vers';
  await s3.send(new CreateBucketCommand({ Bucket }));
  t.equal((await s3.send(new GetBucketVersioningCommand({ Bucket }))).Status, undefined, 'never versioned');
  await s3.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  t.equal((await s3.send(new GetBucketVersioningCommand({ Bucket }))).Status, 'Enabled');
  await s3.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Suspended' } }));
  t.equal((await s3.send(new GetBucketVersioningCommand({ Bucket }))).Status, 'Suspended');
  await expectS3Error(t, s3.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Off' as 'Enabled' } })),
    'MalformedXML', 400, 'an unknown versioning status');
  await s3.send(new DeleteBucketCommand({ Bucket }));
  await s3.send(new CreateBucketCommand({ Bucket }));

  const acl = await s3.send(new GetBucketAclCommand({ Bucket }));
  t.same(acl.Grants?.map((g) => g.Permission), ['FULL_CONTROL'], 'private: the owner only');
  await s3.send(new PutBucketAclCommand({ Bucket, ACL: 'public-read' }));
  const pub = await s3.send(new GetBucketAclCommand({ Bucket }));
  t.ok(pub.Grants?.some((g) => g.Grantee?.URI === 'http://acs.amazonaws.com/groups/global/AllUsers' && g.Permission === 'READ'), 'public-read grant');
  await expectS3Error(t, s3.send(new PutBucketAclCommand({ Bucket, AccessControlPolicy: { Owner: acl.Owner, Grants: acl.Grants } })),
    'NotImplemented', 501, 'grant documents');
  await s3.send(new PutObjectCommand({ Bucket, Key: 'o', Body: 'o' }));
  await s3.send(new PutObjectAclCommand({ Bucket, Key: 'o', ACL: 'authenticated-read' }));
  const oacl = await s3.send(new GetObjectAclCommand({ Bucket, Key: 'o' }));
  t.ok(oacl.Grants?.some((g) => g.Grantee?.URI === 'http://acs.amazonaws.com/groups/global/AuthenticatedUsers'), 'object authenticated-read grant');
  await expectS3Error(t, s3.send(new GetObjectAclCommand({ Bucket, Key: 'missing' })), 'NoSuchKey', 404, 'ACL of a missing key');
  await s3.send(new DeleteObjectCommand({ Bucket, Key: 'o' }));
  await s3.send(new DeleteBucketCommand({ Bucket }));
});

t.test('CORS, lifecycle and object-lock configuration: set, get, delete, absent', async (t) => {
  const Bucket = 'configs';
  await s3.send(new CreateBucketCommand({ Bucket }));
  await expectS3Error(t, s3.send(new GetBucketCorsCommand({ Bucket })), 'NoSuchCORSConfiguration', 404, 'no CORS yet');
  const CORSRules = [{ AllowedOrigins: ['https://app.example'], AllowedMethods: ['GET', 'PUT'], AllowedHeaders: ['*'], MaxAgeSeconds: 600 }];
  await s3.send(new PutBucketCorsCommand({ Bucket, CORSConfiguration: { CORSRules } }));
  const cors = await s3.send(new GetBucketCorsCommand({ Bucket }));
  t.same(cors.CORSRules?.map((r) => [r.AllowedOrigins, r.AllowedMethods, r.MaxAgeSeconds]), [[['https://app.example'], ['GET', 'PUT'], 600]]);
  t.equal((await s3.send(new DeleteBucketCorsCommand({ Bucket }))).$metadata.httpStatusCode, 204);
  await expectS3Error(t, s3.send(new GetBucketCorsCommand({ Bucket })), 'NoSuchCORSConfiguration', 404, 'CORS after delete');

  await expectS3Error(t, s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket })), 'NoSuchLifecycleConfiguration', 404, 'no lifecycle yet');
  await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket, LifecycleConfiguration: { Rules: [{ ID: 'tmp', Status: 'Enabled', Filter: { Prefix: 'tmp/' }, Expiration: { Days: 1 } }] } }));
  const lc = await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket }));
  t.same(lc.Rules?.map((r) => [r.ID, r.Status, r.Expiration?.Days]), [['tmp', 'Enabled', 1]]);
  await s3.send(new DeleteBucketLifecycleCommand({ Bucket }));
  await expectS3Error(t, s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket })), 'NoSuchLifecycleConfiguration', 404, 'lifecycle after delete');

  await expectS3Error(t, s3.send(new GetObjectLockConfigurationCommand({ Bucket })), 'ObjectLockConfigurationNotFoundError', 404, 'no object lock');
  await s3.send(new CreateBucketCommand({ Bucket: 'configs-locked', ObjectLockEnabledForBucket: true }));
  await s3.send(new PutObjectLockConfigurationCommand({ Bucket: 'configs-locked', ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 1 } } } }));
  const lock = await s3.send(new GetObjectLockConfigurationCommand({ Bucket: 'configs-locked' }));
  t.equal(lock.ObjectLockConfiguration?.ObjectLockEnabled, 'Enabled');
  t.equal(lock.ObjectLockConfiguration?.Rule?.DefaultRetention?.Days, 1);
  await expectS3Error(t, s3.send(new PutBucketVersioningCommand({ Bucket: 'configs-locked', VersioningConfiguration: { Status: 'Suspended' } })),
    'InvalidBucketState', 409, 'versioning of a lock bucket cannot be suspended');
  for (const [what, call] of [
    ['GetBucketCors', () => s3.send(new GetBucketCorsCommand({ Bucket: 'no-such-configs' }))],
    ['DeleteBucketCors', () => s3.send(new DeleteBucketCorsCommand({ Bucket: 'no-such-configs' }))],
    ['GetBucketLifecycleConfiguration', () => s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: 'no-such-configs' }))],
    ['DeleteBucketLifecycle', () => s3.send(new DeleteBucketLifecycleCommand({ Bucket: 'no-such-configs' }))],
    ['GetObjectLockConfiguration', () => s3.send(new GetObjectLockConfigurationCommand({ Bucket: 'no-such-configs' }))],
    ['GetBucketVersioning', () => s3.send(new GetBucketVersioningCommand({ Bucket: 'no-such-configs' }))],
    ['GetBucketAcl', () => s3.send(new GetBucketAclCommand({ Bucket: 'no-such-configs' }))],
  ] as const) {
    await expectS3Error(t, call(), 'NoSuchBucket', 404, `${what} on a missing bucket`);
  }
  await s3.send(new DeleteBucketCommand({ Bucket }));
});

t.test('sub-resources Kiln does not serve → 501 NotImplemented in S3 XML', async (t) => {
  const Bucket = 'unimpl';
  await s3.send(new CreateBucketCommand({ Bucket }));
  await expectS3Error(t, s3.send(new GetBucketPolicyCommand({ Bucket })), 'NotImplemented', 501, 'GetBucketPolicy');
  await expectS3Error(t, s3.send(new PutBucketPolicyCommand({ Bucket, Policy: '{"Version":"2012-10-17","Statement":[]}' })), 'NotImplemented', 501, 'PutBucketPolicy');
  await expectS3Error(t, s3.send(new GetBucketWebsiteCommand({ Bucket })), 'NotImplemented', 501, 'GetBucketWebsite');
  await expectS3Error(t, s3.send(new GetBucketEncryptionCommand({ Bucket })), 'NotImplemented', 501, 'GetBucketEncryption');
  await expectS3Error(t, s3.send(new GetBucketReplicationCommand({ Bucket })), 'NotImplemented', 501, 'GetBucketReplication');
  await expectS3Error(t, s3.send(new GetBucketNotificationConfigurationCommand({ Bucket })), 'NotImplemented', 501, 'GetBucketNotificationConfiguration');
  await expectS3Error(t, s3.send(new GetPublicAccessBlockCommand({ Bucket })), 'NotImplemented', 501, 'GetPublicAccessBlock');
  await expectS3Error(t, s3.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Enabled', MFADelete: 'Enabled' } })),
    'NotImplemented', 501, 'PutBucketVersioning with MFA delete');

  for (const [method, path] of [['GET', `/${Bucket}?policy`], ['PUT', `/${Bucket}?website`], ['DELETE', `/${Bucket}?encryption`], ['GET', `/${Bucket}/k?torrent`], ['POST', `/${Bucket}/k?restore`], ['POST', `/${Bucket}`]]) {
    const r = await raw(srv, { method, path, body: method === 'GET' || method === 'DELETE' ? undefined : '' });
    assertErrorXml(t, r, 'NotImplemented', 501, `${method} ${path}`);
    t.notMatch(r.text, /statusCode|"error"/, 'not a fastify JSON page');
  }
  await s3.send(new DeleteBucketCommand({ Bucket }));
});
