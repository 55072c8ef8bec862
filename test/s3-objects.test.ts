// Object operations through the real AWS SDK v3 (default flexible checksums on) against a
// running Kiln: round trips, headers and metadata, key rules, ranges, part numbers,
// preconditions, copies, tagging, attributes, checksums and presigned URLs.
import t from 'tap';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import aws4 from 'aws4';
import {
  S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, HeadObjectCommand, DeleteObjectCommand, DeleteObjectsCommand,
  CopyObjectCommand, PutObjectTaggingCommand, GetObjectTaggingCommand, DeleteObjectTaggingCommand, GetObjectAttributesCommand,
  ListObjectsV2Command, CreateMultipartUploadCommand, UploadPartCommand, CompleteMultipartUploadCommand, ChecksumAlgorithm,
  PutObjectLegalHoldCommand, GetObjectLegalHoldCommand, PutObjectRetentionCommand, GetObjectRetentionCommand,
} from '@aws-sdk/client-s3';
import { startServer, TestServer, ROOT_USER, ROOT_PASSWORD } from './helpers/server';
import { expectS3Error, raw, seeded, sha256 } from './helpers/s3';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const fastCrc32c: { calculate(b: Buffer): number } = require('fast-crc32c');

const MiB = 1024 * 1024;
const Bucket = 'objects';
let srv: TestServer;
let s3: S3Client;

t.before(async () => {
  srv = await startServer();
  s3 = srv.client();
  await s3.send(new CreateBucketCommand({ Bucket }));
});
t.teardown(() => srv.close());

async function getBytes(Key: string, extra: Record<string, unknown> = {}, bucket = Bucket): Promise<{ body: Buffer; out: Awaited<ReturnType<S3Client['send']>> & Record<string, any> }> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key, ...extra }));
  return { body: Buffer.from(await out.Body!.transformToByteArray()), out: out as any };
}

const md5hex = (b: Buffer) => createHash('md5').update(b).digest('hex');
const b64u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b.toString('base64'); };

/** A two-part multipart object: 5 MiB + 1234 bytes. */
async function multipartObject(Key: string, opts: { ChecksumAlgorithm?: ChecksumAlgorithm } = {}): Promise<{ data: Buffer; parts: Buffer[]; etag: string }> {
  const parts = [seeded(5 * MiB, 101), seeded(1234, 102)];
  const up = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key, ...opts }));
  const done: { PartNumber: number; ETag: string; ChecksumCRC32?: string }[] = [];
  for (const [i, Body] of parts.entries()) {
    const p = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId: up.UploadId, PartNumber: i + 1, Body, ...opts }));
    done.push({ PartNumber: i + 1, ETag: p.ETag!, ...(p.ChecksumCRC32 ? { ChecksumCRC32: p.ChecksumCRC32 } : {}) });
  }
  const c = await s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId: up.UploadId, MultipartUpload: { Parts: done } }));
  return { data: Buffer.concat(parts), parts, etag: c.ETag! };
}

t.test('PutObject / GetObject round trips are byte-exact', async (t) => {
  const sizes = [0, 1, 100 * 1024, MiB + 3, 9 * MiB];
  for (const [i, n] of sizes.entries()) {
    const data = seeded(n, 1000 + i);
    const Key = `round/${n}`;
    const put = await s3.send(new PutObjectCommand({ Bucket, Key, Body: data }));
    t.equal(put.ETag, `"${md5hex(data)}"`, `${n} B: ETag is the MD5`);
    const { body, out } = await getBytes(Key);
    t.equal(out.ContentLength, n, `${n} B: Content-Length`);
    t.equal(body.length, n, `${n} B: length`);
    t.equal(sha256(body), sha256(data), `${n} B: sha256 matches`);
    t.equal(out.ETag, put.ETag, `${n} B: GET ETag`);
  }
  // The same sizes streamed (the SDK sends aws-chunked with a checksum trailer for streams).
  for (const [i, n] of [0, 1, MiB + 3].entries()) {
    const data = seeded(n, 2000 + i);
    const Key = `stream/${n}`;
    const chunks: Buffer[] = [];
    for (let o = 0; o < n; o += 65536) chunks.push(data.subarray(o, o + 65536));
    await s3.send(new PutObjectCommand({ Bucket, Key, Body: Readable.from(chunks), ContentLength: n }));
    const { body } = await getBytes(Key);
    t.equal(sha256(body), sha256(data), `streamed ${n} B: sha256 matches`);
  }
});

t.test('standard headers and user metadata are stored and returned', async (t) => {
  const Key = 'headers/obj';
  const Expires = new Date('2030-01-02T03:04:05Z');
  const meta = { color: 'blue', 'multi-word-name': 'two words', empty: '', number: '42' };
  await s3.send(new PutObjectCommand({
    Bucket, Key, Body: 'payload', ContentType: 'text/x-kiln; charset=utf-8', ContentEncoding: 'identity', ContentDisposition: 'attachment; filename="a b.txt"',
    ContentLanguage: 'de-CH', CacheControl: 'max-age=3600, private', Expires, Metadata: meta,
  }));
  const check = (o: any, what: string) => {
    t.equal(o.ContentType, 'text/x-kiln; charset=utf-8', `${what}: Content-Type`);
    t.equal(o.ContentEncoding, 'identity', `${what}: Content-Encoding`);
    t.equal(o.ContentDisposition, 'attachment; filename="a b.txt"', `${what}: Content-Disposition`);
    t.equal(o.ContentLanguage, 'de-CH', `${what}: Content-Language`);
    t.equal(o.CacheControl, 'max-age=3600, private', `${what}: Cache-Control`);
    t.equal(new Date(o.ExpiresString ?? o.Expires).getTime(), Expires.getTime(), `${what}: Expires`);
    t.same(o.Metadata, meta, `${what}: x-amz-meta-*`);
  };
  check((await getBytes(Key)).out, 'GET');
  check(await s3.send(new HeadObjectCommand({ Bucket, Key })), 'HEAD');
  const dflt = await s3.send(new PutObjectCommand({ Bucket, Key: 'headers/default', Body: 'x' }));
  t.ok(dflt.ETag);
  const h = await s3.send(new HeadObjectCommand({ Bucket, Key: 'headers/default' }));
  t.ok(h.ContentType, 'a content type is always returned');
  t.same(h.Metadata, {}, 'no metadata');
});

t.test('user metadata limit: 2 KiB', async (t) => {
  // name + value bytes, the x-amz-meta- prefix not counted (as AWS measures it)
  await s3.send(new PutObjectCommand({ Bucket, Key: 'meta/at-limit', Body: 'x', Metadata: { k: 'v'.repeat(2047) } }));
  t.pass('exactly 2048 bytes is accepted');
  await expectS3Error(t, s3.send(new PutObjectCommand({ Bucket, Key: 'meta/over', Body: 'x', Metadata: { k: 'v'.repeat(2048) } })), 'MetadataTooLarge', 400, '2049 bytes');
  await expectS3Error(t, s3.send(new PutObjectCommand({ Bucket, Key: 'meta/over', Body: 'x', Metadata: { a: 'x'.repeat(1100), b: 'y'.repeat(1100) } })),
    'MetadataTooLarge', 400, 'several values summing over 2 KiB');
  await expectS3Error(t, s3.send(new HeadObjectCommand({ Bucket, Key: 'meta/over' })), 'NotFound', 404, 'refused object not created');
  await expectS3Error(t, s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'meta/mpu', Metadata: { k: 'v'.repeat(3000) } })),
    'MetadataTooLarge', 400, 'CreateMultipartUpload');
});

t.test('key length: 1024 bytes OK, 1025 → KeyTooLongError', async (t) => {
  for (const Key of ['k'.repeat(1024), 'é'.repeat(512), `${'日'.repeat(341)}a`]) {
    t.equal(Buffer.byteLength(Key), 1024);
    await s3.send(new PutObjectCommand({ Bucket, Key, Body: 'long' }));
    t.equal((await getBytes(Key)).body.toString(), 'long', `${Key.slice(0, 4)}… (1024 bytes) stored`);
    await s3.send(new DeleteObjectCommand({ Bucket, Key }));
  }
  for (const Key of ['k'.repeat(1025), `${'é'.repeat(512)}a`, '日'.repeat(342)]) {
    t.ok(Buffer.byteLength(Key) > 1024);
    await expectS3Error(t, s3.send(new PutObjectCommand({ Bucket, Key, Body: 'x' })), 'KeyTooLongError', 400, `${Buffer.byteLength(Key)}-byte key`);
  }
  await expectS3Error(t, s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'm'.repeat(1025) })), 'KeyTooLongError', 400, 'CreateMultipartUpload 1025');
  await s3.send(new PutObjectCommand({ Bucket, Key: 'copy-src', Body: 'c' }));
  await expectS3Error(t, s3.send(new CopyObjectCommand({ Bucket, Key: 'c'.repeat(1025), CopySource: `${Bucket}/copy-src` })), 'KeyTooLongError', 400, 'CopyObject 1025');
});

t.test('unicode, space and special-character keys', async (t) => {
  const keys = [
    'with space', 'ünïcödé/文件.txt', 'emoji-😀-🚀', 'plus+sign', 'percent%25literal', 'lone%percent', 'amp&and=eq', 'q?mark', 'hash#tag',
    'semi;colon,comma', 'quote"and\'apos', 'tilde~star*', 'back\\slash', 'dir//double', '/leading-slash', 'trailing/', 'brackets[]{}()',
    'xml<&>chars', 'tab\tchar', 'caret^pipe|backtick`', 'dollar$at@', 'ends.with.dot.', '-', '!', 'a/b/c/d/e/f/g', 'Ω≈ç√∫',
    // dot segments are names, never normalised; control characters survive XML listings
    '.', '..', './x', 'a/../b', 'a/./b', '../up', 'nl\nx', 'cr\rx', 'crlf\r\n', '\u0001ctl', 'del\u007f',
  ];
  const SB = 'special-keys';
  await s3.send(new CreateBucketCommand({ Bucket: SB }));
  for (const Key of keys) {
    await s3.send(new PutObjectCommand({ Bucket: SB, Key, Body: Key }));
    const got = await s3.send(new GetObjectCommand({ Bucket: SB, Key }));
    t.equal(await got.Body!.transformToString(), Key, `GET ${JSON.stringify(Key)}`);
    const h = await s3.send(new HeadObjectCommand({ Bucket: SB, Key }));
    t.equal(h.ContentLength, Buffer.byteLength(Key), `HEAD ${JSON.stringify(Key)}`);
  }
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: SB }));
  const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  t.same(listed.Contents?.map((c) => c.Key), sorted, 'listing has every key, exactly, in UTF-8 byte order');
  const enc = await s3.send(new ListObjectsV2Command({ Bucket: SB, EncodingType: 'url' }));
  t.same(enc.Contents?.map((c) => decodeURIComponent(c.Key!.replace(/\+/g, ' '))), sorted, 'url-encoded listing decodes to the keys');
  for (const Key of keys.slice(0, 8)) {
    const CopySource = `${SB}/${encodeURIComponent(Key)}`;
    await s3.send(new CopyObjectCommand({ Bucket: SB, Key: `copy/${Key}`, CopySource }));
    t.equal(await (await s3.send(new GetObjectCommand({ Bucket: SB, Key: `copy/${Key}` }))).Body!.transformToString(), Key, `copy of ${JSON.stringify(Key)}`);
    await s3.send(new DeleteObjectCommand({ Bucket: SB, Key: `copy/${Key}` }));
  }
  const half = keys.length >> 1;
  for (const Key of keys.slice(0, half)) await s3.send(new DeleteObjectCommand({ Bucket: SB, Key }));
  const multi = await s3.send(new DeleteObjectsCommand({ Bucket: SB, Delete: { Objects: keys.slice(half).map((Key) => ({ Key })) } }));
  t.same(multi.Deleted?.map((d) => d.Key).sort(), keys.slice(half).sort(), 'DeleteObjects echoes the special keys exactly');
  t.equal((await s3.send(new ListObjectsV2Command({ Bucket: SB }))).KeyCount, 0, 'all deleted by name');
});

t.test('Range requests', async (t) => {
  const Key = 'range/obj';
  const data = seeded(1000, 7);
  await s3.send(new PutObjectCommand({ Bucket, Key, Body: data }));
  const cases: Array<[string, number, number]> = [
    ['bytes=0-9', 0, 10], ['bytes=100-199', 100, 200], ['bytes=-10', 990, 1000], ['bytes=5-', 5, 1000],
    ['bytes=990-5000', 990, 1000], ['bytes=999-999', 999, 1000], ['bytes=-5000', 0, 1000],
  ];
  for (const [Range, start, end] of cases) {
    const { body, out } = await getBytes(Key, { Range });
    t.equal(out.$metadata.httpStatusCode, 206, `${Range}: 206`);
    t.equal(out.ContentRange, `bytes ${start}-${end - 1}/1000`, `${Range}: Content-Range`);
    t.equal(out.ContentLength, end - start, `${Range}: Content-Length`);
    t.ok(body.equals(data.subarray(start, end)), `${Range}: the right bytes`);
  }
  for (const Range of ['bytes=1000-', 'bytes=2000-3000', 'bytes=1000-1000', 'bytes=-0']) {
    const e = await expectS3Error(t, getBytes(Key, { Range }), 'InvalidRange', 416, Range);
    t.ok(e, `${Range} refused`);
  }
  await s3.send(new PutObjectCommand({ Bucket, Key: 'range/empty', Body: Buffer.alloc(0) }));
  await expectS3Error(t, getBytes('range/empty', { Range: 'bytes=0-' }), 'InvalidRange', 416, 'any range of an empty object');
  // A syntactically invalid range is ignored, as on S3: the whole object comes back.
  for (const Range of ['bytes=abc', 'bytes=20-10', 'items=0-5']) {
    const { body, out } = await getBytes(Key, { Range });
    t.equal(out.$metadata.httpStatusCode, 200, `${Range}: 200`);
    t.ok(body.equals(data), `${Range}: whole object`);
  }
  const h = await s3.send(new HeadObjectCommand({ Bucket, Key, Range: 'bytes=10-19' }));
  t.equal(h.ContentLength, 10, 'HEAD with a range');
  t.equal(h.ContentRange, 'bytes 10-19/1000');
});

t.test('partNumber on a multipart object', async (t) => {
  const Key = 'parts/mp';
  const { data, parts, etag } = await multipartObject(Key);
  t.match(etag, /^"[0-9a-f]{32}-2"$/, 'multipart ETag');
  const p1 = await getBytes(Key, { PartNumber: 1 });
  t.equal(p1.out.$metadata.httpStatusCode, 206);
  t.equal(p1.out.PartsCount, 2, 'x-amz-mp-parts-count');
  t.equal(p1.out.ContentRange, `bytes 0-${parts[0].length - 1}/${data.length}`);
  t.equal(sha256(p1.body), sha256(parts[0]), 'part 1 bytes');
  const p2 = await getBytes(Key, { PartNumber: 2 });
  t.equal(sha256(p2.body), sha256(parts[1]), 'part 2 bytes');
  t.equal(p2.out.ContentRange, `bytes ${parts[0].length}-${data.length - 1}/${data.length}`);
  const h = await s3.send(new HeadObjectCommand({ Bucket, Key, PartNumber: 2 }));
  t.equal(h.ContentLength, 1234, 'HEAD partNumber=2 length');
  t.equal(h.PartsCount, 2);
  // s3-tests (checked against AWS) expect 400 InvalidPart for a part number past the last part.
  await expectS3Error(t, getBytes(Key, { PartNumber: 3 }), 'InvalidPart', 400, 'part 3 of 2');
  await expectS3Error(t, getBytes(Key, { PartNumber: 1, Range: 'bytes=0-1' }), 'InvalidRequest', 400, 'partNumber with Range');
  const whole = await getBytes(Key);
  t.equal(sha256(whole.body), sha256(data), 'whole multipart object');
  // Ranges across the part boundary, and ending exactly on it.
  const b = parts[0].length;
  for (const [s0, e0] of [[b - 10, b + 10], [b - 1, b], [0, b - 1], [b, data.length - 1], [1, data.length - 2]]) {
    const r = await getBytes(Key, { Range: `bytes=${s0}-${e0}` });
    t.ok(r.body.equals(data.subarray(s0, e0 + 1)), `multipart range ${s0}-${e0}`);
  }
  await s3.send(new PutObjectCommand({ Bucket, Key: 'parts/single', Body: 'single' }));
  t.equal((await getBytes('parts/single', { PartNumber: 1 })).body.toString(), 'single', 'part 1 of a single-part object is all of it');
  await expectS3Error(t, getBytes('parts/single', { PartNumber: 2 }), 'InvalidPart', 400, 'part 2 of a single-part object');
});

t.test('conditional GET and HEAD', async (t) => {
  const Key = 'cond/obj';
  const put = await s3.send(new PutObjectCommand({ Bucket, Key, Body: 'conditional' }));
  const etag = put.ETag!;
  const lm = (await s3.send(new HeadObjectCommand({ Bucket, Key }))).LastModified!;
  const past = new Date(lm.getTime() - 3600_000);
  const future = new Date(lm.getTime() + 3600_000);
  const ok = async (extra: Record<string, unknown>, what: string) => {
    const r = await getBytes(Key, extra);
    t.equal(r.body.toString(), 'conditional', `${what}: 200 with the body`);
  };
  await ok({ IfMatch: etag }, 'If-Match current');
  await ok({ IfMatch: '*' }, 'If-Match *');
  await ok({ IfNoneMatch: '"0123456789abcdef0123456789abcdef"' }, 'If-None-Match other');
  await ok({ IfModifiedSince: past }, 'If-Modified-Since past');
  await ok({ IfUnmodifiedSince: future }, 'If-Unmodified-Since future');
  await ok({ IfUnmodifiedSince: lm }, 'If-Unmodified-Since = Last-Modified');
  await ok({ IfMatch: etag, IfUnmodifiedSince: past }, 'If-Match true wins over If-Unmodified-Since false');
  await expectS3Error(t, getBytes(Key, { IfMatch: '"0123456789abcdef0123456789abcdef"' }), 'PreconditionFailed', 412, 'If-Match other');
  await expectS3Error(t, getBytes(Key, { IfUnmodifiedSince: past }), 'PreconditionFailed', 412, 'If-Unmodified-Since past');
  // 304 has no body (on AWS too), so the SDK can only report the status.
  const notModified = async (extra: Record<string, unknown>, what: string) => {
    const e = await getBytes(Key, extra).then(() => undefined, (err) => err);
    t.equal(e?.$metadata?.httpStatusCode, 304, `${what} → 304`);
  };
  await notModified({ IfNoneMatch: etag }, 'If-None-Match current');
  await notModified({ IfNoneMatch: '*' }, 'If-None-Match *');
  await notModified({ IfModifiedSince: future }, 'If-Modified-Since future');
  await notModified({ IfModifiedSince: lm }, 'If-Modified-Since = Last-Modified');
  await notModified({ IfNoneMatch: etag, IfModifiedSince: past }, 'If-None-Match false wins over If-Modified-Since true');
  const raw304 = await raw(srv, { path: `/${Bucket}/${Key}`, headers: { 'if-none-match': etag } });
  t.equal(raw304.status, 304);
  t.equal(raw304.body.length, 0, '304 has no body');
  t.equal(raw304.headers.etag, etag, '304 carries the ETag');
  t.ok(raw304.headers['last-modified'], '304 carries Last-Modified');
  const head = (extra: Record<string, unknown>) => s3.send(new HeadObjectCommand({ Bucket, Key, ...extra }));
  t.equal((await head({ IfMatch: etag })).ETag, etag, 'HEAD If-Match current');
  let st = await head({ IfMatch: '"nope"' }).then(() => 200, (e) => e.$metadata?.httpStatusCode);
  t.equal(st, 412, 'HEAD If-Match other → 412');
  st = await head({ IfNoneMatch: etag }).then(() => 200, (e) => e.$metadata?.httpStatusCode);
  t.equal(st, 304, 'HEAD If-None-Match current → 304');
  st = await head({ IfModifiedSince: future }).then(() => 200, (e) => e.$metadata?.httpStatusCode);
  t.equal(st, 304, 'HEAD If-Modified-Since future → 304');
  st = await head({ IfUnmodifiedSince: past }).then(() => 200, (e) => e.$metadata?.httpStatusCode);
  t.equal(st, 412, 'HEAD If-Unmodified-Since past → 412');
});

t.test('response-* overrides', async (t) => {
  const Key = 'override/obj';
  await s3.send(new PutObjectCommand({ Bucket, Key, Body: 'o', ContentType: 'text/plain' }));
  const { out } = await getBytes(Key, {
    ResponseContentType: 'application/x-override', ResponseContentLanguage: 'fr', ResponseExpires: new Date('2031-05-06T07:08:09Z'),
    ResponseCacheControl: 'no-store', ResponseContentDisposition: 'inline; filename="o.bin"', ResponseContentEncoding: 'x-custom',
  });
  t.equal(out.ContentType, 'application/x-override');
  t.equal(out.ContentLanguage, 'fr');
  t.equal(new Date(out.ExpiresString ?? out.Expires).getTime(), new Date('2031-05-06T07:08:09Z').getTime());
  t.equal(out.CacheControl, 'no-store');
  t.equal(out.ContentDisposition, 'inline; filename="o.bin"');
  t.equal(out.ContentEncoding, 'x-custom');
  const h = await s3.send(new HeadObjectCommand({ Bucket, Key, ResponseContentType: 'image/png' }));
  t.equal(h.ContentType, 'image/png', 'HEAD honours overrides too');
  t.equal((await s3.send(new HeadObjectCommand({ Bucket, Key }))).ContentType, 'text/plain', 'the stored type is unchanged');
});

t.test('HeadObject and DeleteObject', async (t) => {
  const Key = 'head/obj';
  const data = seeded(4321, 9);
  const put = await s3.send(new PutObjectCommand({ Bucket, Key, Body: data, Metadata: { m: 'v' } }));
  const h = await s3.send(new HeadObjectCommand({ Bucket, Key }));
  t.equal(h.ContentLength, 4321);
  t.equal(h.ETag, put.ETag);
  t.ok(h.LastModified instanceof Date);
  t.same(h.Metadata, { m: 'v' });
  t.equal(h.AcceptRanges, 'bytes');
  await expectS3Error(t, s3.send(new HeadObjectCommand({ Bucket, Key: 'head/missing' })), 'NotFound', 404, 'HEAD missing key');
  await expectS3Error(t, s3.send(new HeadObjectCommand({ Bucket: 'no-such-bucket-h', Key })), 'NotFound', 404, 'HEAD missing bucket');
  t.equal((await getBytes(Key, { VersionId: 'null' })).body.length, 4321, 'versionId=null names the only version of an unversioned object');
  await expectS3Error(t, getBytes(Key, { VersionId: 'no-such-version' }), 'NoSuchVersion', 404, 'an unknown version id');
  const d = await s3.send(new DeleteObjectCommand({ Bucket, Key }));
  t.equal(d.$metadata.httpStatusCode, 204);
  await expectS3Error(t, getBytes(Key), 'NoSuchKey', 404, 'deleted');
  const d2 = await s3.send(new DeleteObjectCommand({ Bucket, Key: 'head/never-existed' }));
  t.equal(d2.$metadata.httpStatusCode, 204, 'deleting a missing key is 204');
  await expectS3Error(t, s3.send(new DeleteObjectCommand({ Bucket: 'no-such-bucket-d', Key })), 'NoSuchBucket', 404, 'delete in a missing bucket');
  await expectS3Error(t, getBytes('k', {}, 'no-such-bucket-g'), 'NoSuchBucket', 404, 'GET in a missing bucket');
  await expectS3Error(t, s3.send(new PutObjectCommand({ Bucket: 'no-such-bucket-p', Key: 'k', Body: 'x' })), 'NoSuchBucket', 404, 'PUT in a missing bucket');
});

t.test('DeleteObjects', async (t) => {
  const DB = 'multi-delete';
  await s3.send(new CreateBucketCommand({ Bucket: DB }));
  await s3.send(new PutObjectCommand({ Bucket: DB, Key: 'a', Body: 'a' }));
  await s3.send(new PutObjectCommand({ Bucket: DB, Key: 'b', Body: 'b' }));
  const loud = await s3.send(new DeleteObjectsCommand({ Bucket: DB, Delete: { Objects: [{ Key: 'a' }, { Key: 'b' }, { Key: 'missing' }] } }));
  t.same(loud.Deleted?.map((d) => d.Key).sort(), ['a', 'b', 'missing'], 'every key reported deleted, missing ones too');
  t.same(loud.Errors ?? [], [], 'no errors');
  await s3.send(new PutObjectCommand({ Bucket: DB, Key: 'c', Body: 'c' }));
  const quiet = await s3.send(new DeleteObjectsCommand({ Bucket: DB, Delete: { Quiet: true, Objects: [{ Key: 'c' }, { Key: 'd' }] } }));
  t.same(quiet.Deleted ?? [], [], 'quiet mode reports no successes');
  t.same(quiet.Errors ?? [], []);
  t.equal((await s3.send(new ListObjectsV2Command({ Bucket: DB }))).KeyCount, 0, 'bucket empty');

  // 1000 keys in one call: 300 that exist, 700 that do not.
  const keys = Array.from({ length: 1000 }, (_, i) => `k/${String(i).padStart(4, '0')}`);
  for (let i = 0; i < 300; i += 30) {
    await Promise.all(keys.slice(i, i + 30).map((Key) => s3.send(new PutObjectCommand({ Bucket: DB, Key, Body: Key }))));
  }
  t.equal((await s3.send(new ListObjectsV2Command({ Bucket: DB }))).KeyCount, 300);
  const big = await s3.send(new DeleteObjectsCommand({ Bucket: DB, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
  t.equal(big.Deleted?.length, 1000, '1000 results');
  t.same(big.Errors ?? [], []);
  t.equal((await s3.send(new ListObjectsV2Command({ Bucket: DB }))).KeyCount, 0, 'all gone');
  await s3.send(new PutObjectCommand({ Bucket: DB, Key: 'survivor', Body: 's' }));
  await expectS3Error(t, s3.send(new DeleteObjectsCommand({ Bucket: DB, Delete: { Objects: [...keys, 'survivor'].map((Key) => ({ Key })) } })),
    'MalformedXML', 400, '1001 keys');
  t.equal((await s3.send(new ListObjectsV2Command({ Bucket: DB }))).KeyCount, 1, 'a refused batch deletes nothing');
  await expectS3Error(t, s3.send(new DeleteObjectsCommand({ Bucket: 'no-such-bucket-md', Delete: { Objects: [{ Key: 'a' }] } })), 'NoSuchBucket', 404, 'missing bucket');
});

t.test('CopyObject', async (t) => {
  const src = 'copy/src';
  const data = seeded(9 * MiB, 55);
  await s3.send(new PutObjectCommand({ Bucket, Key: src, Body: data, ContentType: 'application/x-src', CacheControl: 'max-age=1', Metadata: { origin: 'source' }, Tagging: 'a=1&b=2' }));
  const srcEtag = (await s3.send(new HeadObjectCommand({ Bucket, Key: src }))).ETag!;

  const c1 = await s3.send(new CopyObjectCommand({ Bucket, Key: 'copy/dst-copy', CopySource: `${Bucket}/${src}` }));
  t.equal(c1.CopyObjectResult?.ETag, srcEtag, 'same bytes, same MD5 ETag');
  const g1 = await getBytes('copy/dst-copy');
  t.equal(sha256(g1.body), sha256(data), 'copied bytes are exact');
  t.equal(g1.out.ContentType, 'application/x-src', 'COPY keeps the content type');
  t.equal(g1.out.CacheControl, 'max-age=1', 'COPY keeps standard headers');
  t.same(g1.out.Metadata, { origin: 'source' }, 'COPY keeps metadata');
  t.same((await s3.send(new GetObjectTaggingCommand({ Bucket, Key: 'copy/dst-copy' }))).TagSet?.map((x) => `${x.Key}=${x.Value}`), ['a=1', 'b=2'], 'tags copied');

  await s3.send(new CopyObjectCommand({
    Bucket, Key: 'copy/dst-replace', CopySource: `${Bucket}/${src}`, MetadataDirective: 'REPLACE', ContentType: 'text/replaced',
    Metadata: { fresh: 'yes' }, TaggingDirective: 'REPLACE', Tagging: 'z=26',
  }));
  const h2 = await s3.send(new HeadObjectCommand({ Bucket, Key: 'copy/dst-replace' }));
  t.equal(h2.ContentType, 'text/replaced', 'REPLACE sets the content type');
  t.same(h2.Metadata, { fresh: 'yes' }, 'REPLACE replaces metadata');
  t.equal(h2.CacheControl, undefined, 'REPLACE drops headers not given');
  t.same((await s3.send(new GetObjectTaggingCommand({ Bucket, Key: 'copy/dst-replace' }))).TagSet, [{ Key: 'z', Value: '26' }], 'tagging REPLACE');

  await expectS3Error(t, s3.send(new CopyObjectCommand({ Bucket, Key: src, CopySource: `${Bucket}/${src}` })), 'InvalidRequest', 400, 'copy onto itself without REPLACE');
  await s3.send(new CopyObjectCommand({ Bucket, Key: src, CopySource: `${Bucket}/${src}`, MetadataDirective: 'REPLACE', Metadata: { origin: 'updated' } }));
  const self = await getBytes(src);
  t.same(self.out.Metadata, { origin: 'updated' }, 'self-copy with REPLACE updates metadata');
  t.equal(sha256(self.body), sha256(data), 'and keeps the bytes');

  await expectS3Error(t, s3.send(new CopyObjectCommand({ Bucket, Key: 'copy/cond', CopySource: `${Bucket}/${src}`, CopySourceIfMatch: '"0000"' })),
    'PreconditionFailed', 412, 'x-amz-copy-source-if-match mismatch');
  await expectS3Error(t, s3.send(new CopyObjectCommand({ Bucket, Key: 'copy/cond', CopySource: `${Bucket}/${src}`, CopySourceIfNoneMatch: srcEtag })),
    'PreconditionFailed', 412, 'x-amz-copy-source-if-none-match match');
  await expectS3Error(t, s3.send(new CopyObjectCommand({ Bucket, Key: 'copy/cond', CopySource: `${Bucket}/${src}`, CopySourceIfModifiedSince: new Date(Date.now() + 3600_000) })),
    'PreconditionFailed', 412, 'x-amz-copy-source-if-modified-since future');
  await expectS3Error(t, s3.send(new CopyObjectCommand({ Bucket, Key: 'copy/cond', CopySource: `${Bucket}/${src}`, CopySourceIfUnmodifiedSince: new Date(Date.now() - 3600_000) })),
    'PreconditionFailed', 412, 'x-amz-copy-source-if-unmodified-since past');
  await expectS3Error(t, s3.send(new HeadObjectCommand({ Bucket, Key: 'copy/cond' })), 'NotFound', 404, 'failed copies create nothing');
  await s3.send(new CopyObjectCommand({ Bucket, Key: 'copy/cond', CopySource: `${Bucket}/${src}`, CopySourceIfMatch: srcEtag }));
  t.pass('x-amz-copy-source-if-match match copies');

  await expectS3Error(t, s3.send(new CopyObjectCommand({ Bucket, Key: 'copy/x', CopySource: `${Bucket}/copy/missing` })), 'NoSuchKey', 404, 'missing source key');
  await expectS3Error(t, s3.send(new CopyObjectCommand({ Bucket, Key: 'copy/x', CopySource: 'no-such-src-bucket/k' })), 'NoSuchBucket', 404, 'missing source bucket');
  await expectS3Error(t, s3.send(new CopyObjectCommand({ Bucket: 'no-such-dst-bucket', Key: 'copy/x', CopySource: `${Bucket}/${src}` })), 'NoSuchBucket', 404, 'missing destination bucket');
  await expectS3Error(t, s3.send(new CopyObjectCommand({ Bucket, Key: 'copy/x', CopySource: `${Bucket}/${src}`, MetadataDirective: 'MERGE' as 'COPY' })),
    'InvalidArgument', 400, 'unknown metadata directive');

  // Across buckets, and from a multipart source.
  await s3.send(new CreateBucketCommand({ Bucket: 'copy-target' }));
  const { data: mpData } = await multipartObject('copy/mp-src');
  await s3.send(new CopyObjectCommand({ Bucket: 'copy-target', Key: 'from-mp', CopySource: `${Bucket}/copy/mp-src` }));
  t.equal(sha256((await getBytes('from-mp', {}, 'copy-target')).body), sha256(mpData), 'copy of a multipart object to another bucket');
});

t.test('object tagging', async (t) => {
  const Key = 'tags/obj';
  await s3.send(new PutObjectCommand({ Bucket, Key, Body: 't', Tagging: 'project=kiln&stage=test%20run' }));
  const g = await s3.send(new GetObjectTaggingCommand({ Bucket, Key }));
  t.same(g.TagSet, [{ Key: 'project', Value: 'kiln' }, { Key: 'stage', Value: 'test run' }], 'PutObject Tagging stored');
  t.equal((await getBytes(Key)).out.TagCount, 2, 'GET reports x-amz-tagging-count');
  await s3.send(new PutObjectTaggingCommand({ Bucket, Key, Tagging: { TagSet: [{ Key: 'k1', Value: 'v1' }, { Key: 'k2', Value: '' }] } }));
  t.same((await s3.send(new GetObjectTaggingCommand({ Bucket, Key }))).TagSet, [{ Key: 'k1', Value: 'v1' }, { Key: 'k2', Value: '' }], 'put replaces');
  const d = await s3.send(new DeleteObjectTaggingCommand({ Bucket, Key }));
  t.equal(d.$metadata.httpStatusCode, 204);
  t.same((await s3.send(new GetObjectTaggingCommand({ Bucket, Key }))).TagSet ?? [], [], 'no tags after delete');
  t.equal((await getBytes(Key)).body.toString(), 't', 'data untouched');
  const eleven = Array.from({ length: 11 }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));
  await expectS3Error(t, s3.send(new PutObjectTaggingCommand({ Bucket, Key, Tagging: { TagSet: eleven } })), 'InvalidTag', 400, '11 tags');
  await expectS3Error(t, s3.send(new PutObjectTaggingCommand({ Bucket, Key, Tagging: { TagSet: [{ Key: 'k'.repeat(129), Value: 'v' }] } })), 'InvalidTag', 400, 'key too long');
  await expectS3Error(t, s3.send(new PutObjectTaggingCommand({ Bucket, Key, Tagging: { TagSet: [{ Key: 'k', Value: 'v'.repeat(257) }] } })), 'InvalidTag', 400, 'value too long');
  await expectS3Error(t, s3.send(new PutObjectCommand({ Bucket, Key: 'tags/bad', Body: 'x', Tagging: 'a=1&a=2' })), 'InvalidTag', 400, 'duplicate tag in x-amz-tagging');
  await expectS3Error(t, s3.send(new GetObjectTaggingCommand({ Bucket, Key: 'tags/missing' })), 'NoSuchKey', 404, 'get on a missing key');
  await expectS3Error(t, s3.send(new PutObjectTaggingCommand({ Bucket, Key: 'tags/missing', Tagging: { TagSet: [] } })), 'NoSuchKey', 404, 'put on a missing key');
  await expectS3Error(t, s3.send(new DeleteObjectTaggingCommand({ Bucket, Key: 'tags/missing' })), 'NoSuchKey', 404, 'delete on a missing key');
});

t.test('GetObjectAttributes', async (t) => {
  const data = seeded(3000, 77);
  const put = await s3.send(new PutObjectCommand({ Bucket, Key: 'attr/single', Body: data, ChecksumAlgorithm: 'SHA256' }));
  const a = await s3.send(new GetObjectAttributesCommand({ Bucket, Key: 'attr/single', ObjectAttributes: ['ETag', 'ObjectSize', 'Checksum', 'StorageClass', 'ObjectParts'] }));
  t.equal(a.ETag, put.ETag!.replace(/"/g, ''), 'ETag (unquoted, as S3 sends it here)');
  t.equal(a.ObjectSize, 3000);
  t.equal(a.StorageClass, 'STANDARD');
  t.equal(a.Checksum?.ChecksumSHA256, createHash('sha256').update(data).digest('base64'), 'SHA256 checksum');
  t.equal(a.ObjectParts, undefined, 'no parts for a single-part object');
  t.ok(a.LastModified instanceof Date);

  const { parts } = await multipartObject('attr/mp', { ChecksumAlgorithm: 'CRC32' });
  const m = await s3.send(new GetObjectAttributesCommand({ Bucket, Key: 'attr/mp', ObjectAttributes: ['ObjectParts', 'ObjectSize', 'Checksum', 'ETag'] }));
  t.equal(m.ObjectSize, parts[0].length + parts[1].length);
  t.equal(m.ObjectParts?.TotalPartsCount, 2, 'PartsCount');
  t.same(m.ObjectParts?.Parts?.map((p) => [p.PartNumber, p.Size, p.ChecksumCRC32]), parts.map((p, i) => [i + 1, p.length, b64u32(crc32(p))]), 'parts with their CRC32');
  t.match(m.Checksum?.ChecksumCRC32, /^[A-Za-z0-9+/]{6}==-2$/, 'composite CRC32 checksum');
  t.equal(m.Checksum?.ChecksumType, 'COMPOSITE');
  const page = await s3.send(new GetObjectAttributesCommand({ Bucket, Key: 'attr/mp', ObjectAttributes: ['ObjectParts'], MaxParts: 1 }));
  t.equal(page.ObjectParts?.Parts?.length, 1);
  t.equal(page.ObjectParts?.IsTruncated, true);
  const page2 = await s3.send(new GetObjectAttributesCommand({ Bucket, Key: 'attr/mp', ObjectAttributes: ['ObjectParts'], MaxParts: 1, PartNumberMarker: page.ObjectParts?.NextPartNumberMarker }));
  t.equal(page2.ObjectParts?.Parts?.[0].PartNumber, 2, 'second page');
  t.equal(page2.ObjectParts?.IsTruncated, false);

  await expectS3Error(t, s3.send(new GetObjectAttributesCommand({ Bucket, Key: 'attr/missing', ObjectAttributes: ['ETag'] })), 'NoSuchKey', 404, 'missing key');
  await expectS3Error(t, s3.send(new GetObjectAttributesCommand({ Bucket, Key: 'attr/single', ObjectAttributes: ['Bogus' as 'ETag'] })), 'InvalidArgument', 400, 'unknown attribute');
});

t.test('conditional PUT', async (t) => {
  const Key = 'cput/obj';
  await s3.send(new PutObjectCommand({ Bucket, Key, Body: 'first', IfNoneMatch: '*' }));
  t.pass('If-None-Match: * on a new key succeeds');
  await expectS3Error(t, s3.send(new PutObjectCommand({ Bucket, Key, Body: 'second', IfNoneMatch: '*' })), 'PreconditionFailed', 412, 'If-None-Match: * on an existing key');
  t.equal((await getBytes(Key)).body.toString(), 'first', 'the object is unchanged');
  const etag = (await s3.send(new HeadObjectCommand({ Bucket, Key }))).ETag!;
  await expectS3Error(t, s3.send(new PutObjectCommand({ Bucket, Key, Body: 'third', IfMatch: '"00000000000000000000000000000000"' })), 'PreconditionFailed', 412, 'If-Match mismatch');
  await s3.send(new PutObjectCommand({ Bucket, Key, Body: 'fourth', IfMatch: etag }));
  t.equal((await getBytes(Key)).body.toString(), 'fourth', 'If-Match match overwrites');
  await expectS3Error(t, s3.send(new PutObjectCommand({ Bucket, Key: 'cput/none', Body: 'x', IfMatch: etag })), 'NoSuchKey', 404, 'If-Match on a missing key');
  // The same on CompleteMultipartUpload.
  const up = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key }));
  const p = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId: up.UploadId, PartNumber: 1, Body: 'mp' }));
  await expectS3Error(t, s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId: up.UploadId, IfNoneMatch: '*', MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p.ETag }] } })),
    'PreconditionFailed', 412, 'Complete with If-None-Match: * on an existing key');
});

t.test('flexible checksums on PutObject and GetObject', async (t) => {
  const data = seeded(MiB + 3, 31);
  const expected: Record<string, string> = {
    CRC32: b64u32(crc32(data)),
    CRC32C: b64u32(fastCrc32c.calculate(data)),
    SHA1: createHash('sha1').update(data).digest('base64'),
    SHA256: createHash('sha256').update(data).digest('base64'),
  };
  for (const alg of ['CRC32', 'CRC32C', 'SHA1', 'SHA256'] as const) {
    for (const streamed of [false, true]) {
      const Key = `sum/${alg}-${streamed ? 'stream' : 'buffer'}`;
      const Body = streamed ? Readable.from([data.subarray(0, 500_000), data.subarray(500_000)]) : data;
      const put = await s3.send(new PutObjectCommand({ Bucket, Key, Body, ChecksumAlgorithm: alg, ...(streamed ? { ContentLength: data.length } : {}) }));
      t.equal((put as any)[`Checksum${alg}`], expected[alg], `${Key}: PUT returns the ${alg}`);
      const got = await getBytes(Key, { ChecksumMode: 'ENABLED' });
      t.equal(got.out[`Checksum${alg}`], expected[alg], `${Key}: GET returns the ${alg} (and the SDK validated it)`);
      t.equal(got.out.ChecksumType, 'FULL_OBJECT');
      t.equal(sha256(got.body), sha256(data), `${Key}: bytes`);
      const h = await s3.send(new HeadObjectCommand({ Bucket, Key, ChecksumMode: 'ENABLED' }));
      t.equal((h as any)[`Checksum${alg}`], expected[alg], `${Key}: HEAD returns the ${alg}`);
    }
  }
  // A copy keeps a whole-object checksum: the bytes are the same.
  await s3.send(new CopyObjectCommand({ Bucket, Key: 'sum/SHA256-copy', CopySource: `${Bucket}/sum/SHA256-buffer` }));
  t.equal((await getBytes('sum/SHA256-copy', { ChecksumMode: 'ENABLED' })).out.ChecksumSHA256, expected.SHA256, 'CopyObject keeps the SHA256');
  // The SDK's default (CRC32) with no algorithm named.
  await s3.send(new PutObjectCommand({ Bucket, Key: 'sum/default', Body: data }));
  t.equal((await getBytes('sum/default', { ChecksumMode: 'ENABLED' })).out.ChecksumCRC32, expected.CRC32, 'default CRC32 kept');
  // A stated checksum that does not match the body.
  for (const alg of ['CRC32', 'CRC32C', 'SHA1', 'SHA256'] as const) {
    const wrong = alg.startsWith('CRC') ? 'AAAAAA==' : Buffer.alloc(alg === 'SHA1' ? 20 : 32).toString('base64');
    await expectS3Error(t, s3.send(new PutObjectCommand({ Bucket, Key: `sum/wrong-${alg}`, Body: data, [`Checksum${alg}`]: wrong })),
      'BadDigest', 400, `wrong ${alg}`);
    await expectS3Error(t, s3.send(new HeadObjectCommand({ Bucket, Key: `sum/wrong-${alg}` })), 'NotFound', 404, `wrong ${alg}: nothing stored`);
  }
  // Without checksum mode (the SDK always sends it, so raw), no checksum headers.
  const plain = await raw(srv, { path: `/${Bucket}/sum/CRC32-buffer` });
  t.equal(plain.status, 200);
  t.equal(plain.headers['x-amz-checksum-crc32'], undefined, 'no checksum without x-amz-checksum-mode');
  const withMode = await raw(srv, { path: `/${Bucket}/sum/CRC32-buffer`, headers: { 'x-amz-checksum-mode': 'ENABLED' } });
  t.equal(withMode.headers['x-amz-checksum-crc32'], expected.CRC32, 'checksum with x-amz-checksum-mode: ENABLED');
});

t.test('object lock: legal hold and retention', async (t) => {
  const LB = 'locked-objects';
  await s3.send(new CreateBucketCommand({ Bucket: LB, ObjectLockEnabledForBucket: true }));
  const put = await s3.send(new PutObjectCommand({ Bucket: LB, Key: 'held', Body: 'h' }));
  await s3.send(new PutObjectLegalHoldCommand({ Bucket: LB, Key: 'held', LegalHold: { Status: 'ON' } }));
  t.equal((await s3.send(new GetObjectLegalHoldCommand({ Bucket: LB, Key: 'held' }))).LegalHold?.Status, 'ON');
  await expectS3Error(t, s3.send(new DeleteObjectCommand({ Bucket: LB, Key: 'held', VersionId: put.VersionId })), 'AccessDenied', 403, 'delete under legal hold');
  // Per-key failures are reported in DeleteObjects' result, in quiet mode too.
  for (const Quiet of [false, true]) {
    const r = await s3.send(new DeleteObjectsCommand({ Bucket: LB, Delete: { Quiet, Objects: [{ Key: 'held', VersionId: put.VersionId }] } }));
    t.same(r.Errors?.map((e) => [e.Key, e.Code]), [['held', 'AccessDenied']], `DeleteObjects (quiet: ${Quiet}) reports the refused key`);
    t.same(r.Deleted ?? [], [], 'and deletes nothing');
  }
  await s3.send(new PutObjectLegalHoldCommand({ Bucket: LB, Key: 'held', LegalHold: { Status: 'OFF' } }));
  t.equal((await s3.send(new GetObjectLegalHoldCommand({ Bucket: LB, Key: 'held' }))).LegalHold?.Status, 'OFF');
  const until = new Date(Date.now() + 24 * 3600_000);
  await s3.send(new PutObjectRetentionCommand({ Bucket: LB, Key: 'held', Retention: { Mode: 'GOVERNANCE', RetainUntilDate: until } }));
  const r = await s3.send(new GetObjectRetentionCommand({ Bucket: LB, Key: 'held' }));
  t.equal(r.Retention?.Mode, 'GOVERNANCE');
  t.equal(Math.floor(r.Retention!.RetainUntilDate!.getTime() / 1000), Math.floor(until.getTime() / 1000));
  await expectS3Error(t, s3.send(new DeleteObjectCommand({ Bucket: LB, Key: 'held', VersionId: put.VersionId })), 'AccessDenied', 403, 'delete under retention');
  await s3.send(new DeleteObjectCommand({ Bucket: LB, Key: 'held', VersionId: put.VersionId, BypassGovernanceRetention: true }));
  t.pass('governance bypass deletes');
  await expectS3Error(t, s3.send(new GetObjectLegalHoldCommand({ Bucket, Key: 'range/obj' })), 'InvalidRequest', 400, 'legal hold on a bucket without object lock');
});

t.test('presigned GET and PUT URLs', async (t) => {
  const creds = { accessKeyId: ROOT_USER, secretAccessKey: ROOT_PASSWORD };
  const presign = (method: string, path: string) => {
    const r = aws4.sign({ host: `127.0.0.1:${srv.port}`, method, path, service: 's3', region: 'us-east-1', signQuery: true }, creds);
    return `${srv.endpoint}${r.path}`;
  };
  const data = seeded(200_000, 12);
  const putUrl = presign('PUT', `/${Bucket}/presigned/${encodeURIComponent('up load ü.bin')}?X-Amz-Expires=300`);
  const pr = await fetch(putUrl, { method: 'PUT', body: new Uint8Array(data) });
  t.equal(pr.status, 200, 'presigned PUT');
  t.equal(pr.headers.get('etag'), `"${md5hex(data)}"`);
  t.equal(sha256((await getBytes('presigned/up load ü.bin')).body), sha256(data), 'stored through the presigned PUT');

  const getUrl = presign('GET', `/${Bucket}/presigned/${encodeURIComponent('up load ü.bin')}?X-Amz-Expires=300`);
  const gr = await fetch(getUrl);
  t.equal(gr.status, 200, 'presigned GET');
  t.equal(sha256(Buffer.from(await gr.arrayBuffer())), sha256(data), 'presigned GET bytes');
  const rr = await fetch(getUrl, { headers: { range: 'bytes=0-99' } });
  t.equal(rr.status, 206, 'presigned GET with an (unsigned) Range header');
  t.ok(Buffer.from(await rr.arrayBuffer()).equals(data.subarray(0, 100)));
  const ov = await fetch(presign('GET', `/${Bucket}/presigned/${encodeURIComponent('up load ü.bin')}?response-content-type=${encodeURIComponent('text/csv')}`));
  t.equal(ov.headers.get('content-type'), 'text/csv', 'signed response-content-type override');
  await ov.arrayBuffer();

  const old = new Date(Date.now() - 20 * 60_000).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  const expired = presign('GET', `/${Bucket}/presigned/${encodeURIComponent('up load ü.bin')}?X-Amz-Expires=60&X-Amz-Date=${old}`);
  const er = await fetch(expired);
  const text = await er.text();
  t.equal(er.status, 403, 'expired presigned URL');
  t.match(text, /<Code>AccessDenied<\/Code>/);
  t.match(text, /expired/i);
  const ep = await fetch(presign('PUT', `/${Bucket}/presigned/late?X-Amz-Expires=60&X-Amz-Date=${old}`), { method: 'PUT', body: 'late' });
  t.equal(ep.status, 403, 'expired presigned PUT');
  await ep.text();
  await expectS3Error(t, s3.send(new HeadObjectCommand({ Bucket, Key: 'presigned/late' })), 'NotFound', 404, 'nothing stored by the expired PUT');
});
