import t from 'tap';
import { CreateBucketCommand, PutObjectCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { startServer } from './helpers/server';

t.test('SDK v3 with default checksums: put, get, list', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.close());
  const s3 = srv.client();
  await s3.send(new CreateBucketCommand({ Bucket: 'smoke' }));
  const body = Buffer.from('hello kiln '.repeat(1000));
  const put = await s3.send(new PutObjectCommand({ Bucket: 'smoke', Key: 'a/b c.txt', Body: body, ContentType: 'text/plain' }));
  t.ok(put.ETag);
  const got = await s3.send(new GetObjectCommand({ Bucket: 'smoke', Key: 'a/b c.txt', ChecksumMode: 'ENABLED' }));
  t.equal(Buffer.from(await got.Body!.transformToByteArray()).toString(), body.toString());
  t.equal(got.ContentType, 'text/plain');
  const l = await s3.send(new ListObjectsV2Command({ Bucket: 'smoke', Delimiter: '/' }));
  t.same(l.CommonPrefixes?.map((p) => p.Prefix), ['a/']);
});
