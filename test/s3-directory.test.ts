// Directory-bucket behaviour through the JS SDK v3 (which uses CreateSession by itself):
// append, rename, '/'-only listing, consecutive parts, random ETags, unsupported operations.
import t from 'tap';
import {
  CreateBucketCommand, PutObjectCommand, GetObjectCommand, HeadObjectCommand, RenameObjectCommand, ListObjectsV2Command,
  CreateMultipartUploadCommand, UploadPartCommand, CompleteMultipartUploadCommand, PutObjectTaggingCommand, S3Client,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { startServer, ROOT_USER, ROOT_PASSWORD } from './helpers/server';

const Bucket = 'train--use1-az4--x-s3';

t.test('directory bucket semantics', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.close());
  const s3 = new S3Client({ endpoint: srv.endpoint, region: 'us-east-1', credentials: { accessKeyId: ROOT_USER, secretAccessKey: ROOT_PASSWORD } });
  t.teardown(() => s3.destroy());
  await s3.send(new CreateBucketCommand({ Bucket, CreateBucketConfiguration: { Location: { Type: 'AvailabilityZone', Name: 'use1-az4' }, Bucket: { Type: 'Directory', DataRedundancy: 'SingleAvailabilityZone' } } }));

  const a = Buffer.alloc(200_000, 'a');
  const b = Buffer.alloc(300_000, 'b');
  const p1 = await s3.send(new PutObjectCommand({ Bucket, Key: 'logs/run.log', Body: a }));
  t.not(p1.ETag?.replace(/"/g, ''), createHash('md5').update(a).digest('hex'), 'ETags are not MD5 in directory buckets');
  const p2 = await s3.send(new PutObjectCommand({ Bucket, Key: 'logs/run.log', Body: b, WriteOffsetBytes: a.length }));
  t.equal(p2.Size, a.length + b.length, 'append reports the new size');
  const got = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket, Key: 'logs/run.log' }))).Body!.transformToByteArray());
  t.ok(got.equals(Buffer.concat([a, b])), 'appended bytes follow the original ones');
  await t.rejects(s3.send(new PutObjectCommand({ Bucket, Key: 'logs/run.log', Body: b, WriteOffsetBytes: 5 })), { name: 'InvalidWriteOffset' });
  const head = await s3.send(new HeadObjectCommand({ Bucket, Key: 'logs/run.log', ChecksumMode: 'ENABLED' }));
  const crc = (await import('fast-crc32c')).calculate(Buffer.concat([a, b])) >>> 0;
  const want = Buffer.alloc(4);
  want.writeUInt32BE(crc);
  t.equal(head.ChecksumCRC32C, want.toString('base64'), 'full-object CRC32C covers the appended bytes');

  await s3.send(new RenameObjectCommand({ Bucket, Key: 'logs/final.log', RenameSource: `${Bucket}/logs/run.log` }));
  await t.rejects(s3.send(new HeadObjectCommand({ Bucket, Key: 'logs/run.log' })));
  const moved = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket, Key: 'logs/final.log' }))).Body!.transformToByteArray());
  t.ok(moved.equals(Buffer.concat([a, b])), 'rename keeps the bytes');
  await s3.send(new PutObjectCommand({ Bucket, Key: 'logs/other.log', Body: 'x' }));
  await t.rejects(s3.send(new RenameObjectCommand({ Bucket, Key: 'logs/final.log', RenameSource: `${Bucket}/logs/other.log`, DestinationIfNoneMatch: '*' })),
    { name: 'PreconditionFailed' }, 'If-None-Match: * refuses to overwrite');

  const list = await s3.send(new ListObjectsV2Command({ Bucket, Delimiter: '/' }));
  t.same(list.CommonPrefixes?.map((p) => p.Prefix), ['logs/']);
  await t.rejects(s3.send(new ListObjectsV2Command({ Bucket, Delimiter: '-' })), { name: 'InvalidArgument' });
  await t.rejects(s3.send(new ListObjectsV2Command({ Bucket, Prefix: 'logs', Delimiter: '/' })), { name: 'InvalidArgument' });

  const up = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'ckpt' }));
  const part = await s3.send(new UploadPartCommand({ Bucket, Key: 'ckpt', UploadId: up.UploadId, PartNumber: 2, Body: 'x' }));
  await t.rejects(s3.send(new CompleteMultipartUploadCommand({ Bucket, Key: 'ckpt', UploadId: up.UploadId, MultipartUpload: { Parts: [{ PartNumber: 2, ETag: part.ETag }] } })),
    { name: 'InvalidPart' }, 'part numbers must start at 1 and be consecutive');

  const unsupported = await s3.send(new PutObjectTaggingCommand({ Bucket, Key: 'logs/other.log', Tagging: { TagSet: [] } })).then(() => 200, (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode);
  t.equal(unsupported, 501, 'tagging is refused on directory buckets');
});
