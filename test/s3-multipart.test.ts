// Multipart uploads through the real AWS SDK v3 and @aws-sdk/lib-storage against a running
// Kiln: a 100 MiB parallel Upload, the manual operations one by one, their errors, checksums.
import t from 'tap';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { Upload } from '@aws-sdk/lib-storage';
import {
  S3Client, CreateBucketCommand, CreateMultipartUploadCommand, UploadPartCommand, UploadPartCopyCommand, ListPartsCommand,
  ListMultipartUploadsCommand, CompleteMultipartUploadCommand, AbortMultipartUploadCommand, GetObjectCommand, HeadObjectCommand,
  PutObjectCommand, CompletedPart,
} from '@aws-sdk/client-s3';
import { startServer, TestServer } from './helpers/server';
import { expectS3Error, seeded, sha256 } from './helpers/s3';

const MiB = 1024 * 1024;
const Bucket = 'multipart';
let srv: TestServer;
let s3: S3Client;

t.before(async () => {
  srv = await startServer();
  s3 = srv.client();
  await s3.send(new CreateBucketCommand({ Bucket }));
});
t.teardown(() => srv.close());

const md5 = (b: Buffer) => createHash('md5').update(b).digest();
const b64u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b.toString('base64'); };
/** The S3 multipart ETag: MD5 of the concatenated binary part MD5s, then -N. */
const multipartEtag = (parts: Buffer[]) => `"${createHash('md5').update(Buffer.concat(parts.map(md5))).digest('hex')}-${parts.length}"`;

async function download(Key: string): Promise<{ sha: string; size: number }> {
  const out = await s3.send(new GetObjectCommand({ Bucket, Key }));
  const h = createHash('sha256');
  let size = 0;
  for await (const c of out.Body as AsyncIterable<Uint8Array>) { h.update(c); size += c.length; }
  return { sha: h.digest('hex'), size };
}

t.test('lib-storage Upload: 100 MiB, 4 parallel 8 MiB parts', async (t) => {
  const size = 100 * MiB;
  const data = seeded(size, 424242);
  const want = sha256(data);
  const Key = 'big/100mib.bin';
  const seen = new Set<number>();
  const up = new Upload({ client: s3, params: { Bucket, Key, Body: data, ContentType: 'application/octet-stream' }, queueSize: 4, partSize: 8 * MiB, leavePartsOnError: false });
  up.on('httpUploadProgress', (p) => { if (p.part) seen.add(p.part); });
  const res = await up.done();
  t.equal(seen.size, Math.ceil(size / (8 * MiB)), '13 parts uploaded');
  const parts = Array.from({ length: 13 }, (_, i) => data.subarray(i * 8 * MiB, Math.min(size, (i + 1) * 8 * MiB)));
  t.equal(res.ETag, multipartEtag(parts), 'the multipart ETag');
  const h = await s3.send(new HeadObjectCommand({ Bucket, Key }));
  t.equal(h.ContentLength, size);
  t.equal(h.ContentType, 'application/octet-stream');
  const got = await download(Key);
  t.equal(got.size, size, 'downloaded size');
  t.equal(got.sha, want, 'downloaded sha256 equals the uploaded body');
  t.equal((await s3.send(new ListMultipartUploadsCommand({ Bucket }))).Uploads?.length ?? 0, 0, 'no upload left behind');

  // A body smaller than one part goes up as a single PutObject.
  const small = seeded(1000, 5);
  await new Upload({ client: s3, params: { Bucket, Key: 'big/small', Body: small } }).done();
  t.equal((await download('big/small')).sha, sha256(small), 'small lib-storage upload');
});

t.test('manual multipart: create, upload, copy part, list, complete', async (t) => {
  const Key = 'manual/obj';
  const src = seeded(7 * MiB, 9);
  await s3.send(new PutObjectCommand({ Bucket, Key: 'manual/copy-source', Body: src }));
  const p1 = seeded(5 * MiB, 1);
  const p3 = seeded(4321, 3);
  const create = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key, ContentType: 'application/x-mp', Metadata: { via: 'manual' } }));
  const UploadId = create.UploadId!;
  t.ok(UploadId, 'upload id');
  t.equal(create.Key, Key);
  t.equal(create.Bucket, Bucket);

  const u1 = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: p1 }));
  t.equal(u1.ETag, `"${md5(p1).toString('hex')}"`, 'part ETag is its MD5');
  // Part 2 copied from bytes [1 MiB, 6 MiB) of another object.
  const c2 = await s3.send(new UploadPartCopyCommand({ Bucket, Key, UploadId, PartNumber: 2, CopySource: `${Bucket}/manual/copy-source`, CopySourceRange: `bytes=${MiB}-${6 * MiB - 1}` }));
  const p2 = src.subarray(MiB, 6 * MiB);
  t.equal(c2.CopyPartResult?.ETag, `"${md5(p2).toString('hex')}"`, 'copied part ETag');
  t.ok(c2.CopyPartResult?.LastModified instanceof Date);
  const u3 = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 3, Body: p3 }));
  // Re-uploading a part number replaces it.
  await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 4, Body: Buffer.from('replaced soon') }));
  const u4 = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 4, Body: Buffer.from('final four') }));

  // ListParts, one part per page.
  const seen: Array<[number, number, string]> = [];
  let marker: string | undefined;
  for (let page = 0; page < 10; page++) {
    const lp = await s3.send(new ListPartsCommand({ Bucket, Key, UploadId, MaxParts: 1, PartNumberMarker: marker }));
    t.equal(lp.MaxParts, 1);
    t.ok((lp.Parts?.length ?? 0) <= 1, 'at most MaxParts parts');
    for (const p of lp.Parts ?? []) seen.push([p.PartNumber!, p.Size!, p.ETag!]);
    if (!lp.IsTruncated) break;
    marker = String(lp.NextPartNumberMarker);
  }
  t.same(seen, [[1, p1.length, u1.ETag], [2, p2.length, c2.CopyPartResult!.ETag], [3, p3.length, u3.ETag], [4, 10, u4.ETag]], 'all parts, paginated, in order, replaced part current');
  const all = await s3.send(new ListPartsCommand({ Bucket, Key, UploadId }));
  t.equal(all.Parts?.length, 4);
  t.equal(all.IsTruncated, false);
  t.equal(all.UploadId, UploadId);

  const lu = await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: 'manual/' }));
  t.same(lu.Uploads?.map((u) => [u.Key, u.UploadId]), [[Key, UploadId]], 'ListMultipartUploads shows the upload');
  t.ok(lu.Uploads?.[0].Initiated instanceof Date);

  const Parts: CompletedPart[] = [
    { PartNumber: 1, ETag: u1.ETag }, { PartNumber: 2, ETag: c2.CopyPartResult!.ETag }, { PartNumber: 3, ETag: u3.ETag },
  ];
  const done = await s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts } }));
  t.equal(done.ETag, multipartEtag([p1, p2, p3]), 'completed ETag');
  t.equal(done.Key, Key);
  t.equal(done.Bucket, Bucket);
  const got = await s3.send(new GetObjectCommand({ Bucket, Key }));
  const body = Buffer.from(await got.Body!.transformToByteArray());
  t.equal(sha256(body), sha256(Buffer.concat([p1, p2, p3])), 'object is parts 1-3 (part 4 left out)');
  t.equal(got.ContentType, 'application/x-mp', 'content type from CreateMultipartUpload');
  t.same(got.Metadata, { via: 'manual' }, 'metadata from CreateMultipartUpload');
  t.equal((await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: 'manual/' }))).Uploads?.length ?? 0, 0, 'completed upload no longer listed');
  await expectS3Error(t, s3.send(new ListPartsCommand({ Bucket, Key, UploadId })), 'NoSuchUpload', 404, 'ListParts after complete');
  // A retried Complete of the same upload gets the same answer (as on S3).
  const again = await s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts } }));
  t.equal(again.ETag, done.ETag, 'idempotent Complete');
});

t.test('UploadPartCopy from a multipart source, across its part boundary', async (t) => {
  const srcParts = [seeded(5 * MiB, 61), seeded(3 * MiB, 62)];
  const src = Buffer.concat(srcParts);
  const s = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'upc/src' }));
  const sp: CompletedPart[] = [];
  for (const [i, Body] of srcParts.entries()) sp.push({ PartNumber: i + 1, ETag: (await s3.send(new UploadPartCommand({ Bucket, Key: 'upc/src', UploadId: s.UploadId, PartNumber: i + 1, Body }))).ETag });
  await s3.send(new CompleteMultipartUploadCommand({ Bucket, Key: 'upc/src', UploadId: s.UploadId, MultipartUpload: { Parts: sp } }));
  const d = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'upc/dst' }));
  const ranges: Array<[number, number]> = [[2 * MiB, 7 * MiB - 1], [MiB, 2 * MiB - 1]];
  const dp: CompletedPart[] = [];
  for (const [i, [a, b]] of ranges.entries()) {
    const c = await s3.send(new UploadPartCopyCommand({ Bucket, Key: 'upc/dst', UploadId: d.UploadId, PartNumber: i + 1, CopySource: `${Bucket}/upc/src`, CopySourceRange: `bytes=${a}-${Math.min(b, src.length - 1)}` }));
    dp.push({ PartNumber: i + 1, ETag: c.CopyPartResult!.ETag });
  }
  await expectS3Error(t, s3.send(new UploadPartCopyCommand({ Bucket, Key: 'upc/dst', UploadId: d.UploadId, PartNumber: 3, CopySource: `${Bucket}/upc/src`, CopySourceRange: 'bytes=0-' })),
    'InvalidArgument', 400, 'an open-ended copy range');
  await s3.send(new CompleteMultipartUploadCommand({ Bucket, Key: 'upc/dst', UploadId: d.UploadId, MultipartUpload: { Parts: dp } }));
  const want = Buffer.concat(ranges.map(([a, b]) => src.subarray(a, Math.min(b, src.length - 1) + 1)));
  t.equal((await download('upc/dst')).sha, sha256(want), 'the copied ranges, byte-exact');
});

t.test('ListMultipartUploads pagination', async (t) => {
  const ids = new Map<string, string>();
  for (const k of ['lmu/a', 'lmu/b', 'lmu/c', 'lmu/sub/d', 'lmu/sub/e']) {
    ids.set(k, (await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: k }))).UploadId!);
  }
  const second = (await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'lmu/a' }))).UploadId!;
  const got: Array<[string, string]> = [];
  let KeyMarker: string | undefined;
  let UploadIdMarker: string | undefined;
  for (let page = 0; page < 20; page++) {
    const r = await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: 'lmu/', MaxUploads: 2, KeyMarker, UploadIdMarker }));
    t.ok((r.Uploads?.length ?? 0) <= 2, 'page bound');
    for (const u of r.Uploads ?? []) got.push([u.Key!, u.UploadId!]);
    if (!r.IsTruncated) break;
    KeyMarker = r.NextKeyMarker;
    UploadIdMarker = r.NextUploadIdMarker;
  }
  t.equal(got.length, 6, 'six uploads across pages');
  t.same(got.map(([k]) => k), ['lmu/a', 'lmu/a', 'lmu/b', 'lmu/c', 'lmu/sub/d', 'lmu/sub/e'], 'key order');
  t.same(new Set(got.filter(([k]) => k === 'lmu/a').map(([, u]) => u)), new Set([ids.get('lmu/a'), second]), 'both uploads of one key');
  const d = await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: 'lmu/', Delimiter: '/' }));
  t.same(d.CommonPrefixes?.map((p) => p.Prefix), ['lmu/sub/'], 'delimiter groups');
  t.same(d.Uploads?.map((u) => u.Key), ['lmu/a', 'lmu/a', 'lmu/b', 'lmu/c']);
  for (const [k, u] of [...ids.entries(), ['lmu/a', second] as [string, string]]) {
    const a = await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: k, UploadId: u }));
    t.equal(a.$metadata.httpStatusCode, 204);
  }
  t.equal((await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: 'lmu/' }))).Uploads?.length ?? 0, 0, 'all aborted');
  await expectS3Error(t, s3.send(new ListMultipartUploadsCommand({ Bucket: 'no-such-bucket-lmu' })), 'NoSuchBucket', 404, 'missing bucket');
});

t.test('multipart errors', async (t) => {
  const Key = 'err/obj';
  const small = Buffer.from('tiny part');
  // EntityTooSmall: a non-last part under 5 MiB.
  {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key }));
    const a = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: small }));
    const b = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 2, Body: small }));
    await expectS3Error(t, s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: a.ETag }, { PartNumber: 2, ETag: b.ETag }] } })),
      'EntityTooSmall', 400, 'part 1 under the minimum');
    // A single small part is fine: it is the last part.
    const one = await s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 2, ETag: b.ETag }] } }));
    t.equal(one.ETag, multipartEtag([small]), 'a lone small last part completes');
  }
  // InvalidPart (wrong ETag, unknown part) and InvalidPartOrder.
  {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key }));
    const big = seeded(5 * MiB, 77);
    const a = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: big }));
    const b = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 2, Body: small }));
    const complete = (Parts: CompletedPart[]) => s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts } }));
    await expectS3Error(t, complete([{ PartNumber: 1, ETag: '"00000000000000000000000000000000"' }, { PartNumber: 2, ETag: b.ETag }]), 'InvalidPart', 400, 'wrong ETag');
    await expectS3Error(t, complete([{ PartNumber: 1, ETag: a.ETag }, { PartNumber: 3, ETag: b.ETag }]), 'InvalidPart', 400, 'part never uploaded');
    await expectS3Error(t, complete([{ PartNumber: 2, ETag: b.ETag }, { PartNumber: 1, ETag: a.ETag }]), 'InvalidPartOrder', 400, 'out of order');
    await expectS3Error(t, complete([{ PartNumber: 1, ETag: a.ETag }, { PartNumber: 1, ETag: a.ETag }]), 'InvalidPartOrder', 400, 'repeated part number');
    await expectS3Error(t, complete([]), 'MalformedXML', 400, 'no parts');
    t.equal((await s3.send(new ListPartsCommand({ Bucket, Key, UploadId }))).Parts?.length, 2, 'failed completes leave the upload intact');
    const ok = await complete([{ PartNumber: 1, ETag: a.ETag }, { PartNumber: 2, ETag: b.ETag }]);
    t.equal(ok.ETag, multipartEtag([big, small]), 'and it still completes');
  }
  // Unknown upload id.
  const bogus = 'this-upload-id-does-not-exist';
  await expectS3Error(t, s3.send(new UploadPartCommand({ Bucket, Key, UploadId: bogus, PartNumber: 1, Body: small })), 'NoSuchUpload', 404, 'UploadPart unknown id');
  await expectS3Error(t, s3.send(new ListPartsCommand({ Bucket, Key, UploadId: bogus })), 'NoSuchUpload', 404, 'ListParts unknown id');
  await expectS3Error(t, s3.send(new CompleteMultipartUploadCommand({ Bucket, Key: 'err/none', UploadId: bogus, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"x"' }] } })),
    'NoSuchUpload', 404, 'Complete unknown id');
  await expectS3Error(t, s3.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: bogus })), 'NoSuchUpload', 404, 'Abort unknown id');
  await expectS3Error(t, s3.send(new UploadPartCopyCommand({ Bucket, Key, UploadId: bogus, PartNumber: 1, CopySource: `${Bucket}/${Key}` })), 'NoSuchUpload', 404, 'UploadPartCopy unknown id');
  // An upload id belongs to its key.
  {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'err/owner' }));
    await expectS3Error(t, s3.send(new UploadPartCommand({ Bucket, Key: 'err/other', UploadId, PartNumber: 1, Body: small })), 'NoSuchUpload', 404, 'upload id used with another key');
    // Abort, then upload → NoSuchUpload.
    const ab = await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: 'err/owner', UploadId }));
    t.equal(ab.$metadata.httpStatusCode, 204, 'abort');
    await expectS3Error(t, s3.send(new UploadPartCommand({ Bucket, Key: 'err/owner', UploadId, PartNumber: 1, Body: small })), 'NoSuchUpload', 404, 'UploadPart after abort');
    await expectS3Error(t, s3.send(new CompleteMultipartUploadCommand({ Bucket, Key: 'err/owner', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"x"' }] } })),
      'NoSuchUpload', 404, 'Complete after abort');
    await expectS3Error(t, s3.send(new HeadObjectCommand({ Bucket, Key: 'err/owner' })), 'NotFound', 404, 'aborted upload created nothing');
  }
  // Part numbers outside 1..10000.
  {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'err/pn' }));
    for (const PartNumber of [0, 10001]) {
      await expectS3Error(t, s3.send(new UploadPartCommand({ Bucket, Key: 'err/pn', UploadId, PartNumber, Body: small })), 'InvalidArgument', 400, `part number ${PartNumber}`);
    }
    // UploadPartCopy errors: range past the end, failed precondition, missing source.
    await s3.send(new PutObjectCommand({ Bucket, Key: 'err/src', Body: seeded(1000, 4) }));
    await expectS3Error(t, s3.send(new UploadPartCopyCommand({ Bucket, Key: 'err/pn', UploadId, PartNumber: 1, CopySource: `${Bucket}/err/src`, CopySourceRange: 'bytes=500-1000' })),
      'InvalidRange', 416, 'copy range past the end');
    await expectS3Error(t, s3.send(new UploadPartCopyCommand({ Bucket, Key: 'err/pn', UploadId, PartNumber: 1, CopySource: `${Bucket}/err/src`, CopySourceIfMatch: '"nope"' })),
      'PreconditionFailed', 412, 'copy-source-if-match mismatch');
    await expectS3Error(t, s3.send(new UploadPartCopyCommand({ Bucket, Key: 'err/pn', UploadId, PartNumber: 1, CopySource: `${Bucket}/err/missing` })),
      'NoSuchKey', 404, 'copy from a missing key');
    const whole = await s3.send(new UploadPartCopyCommand({ Bucket, Key: 'err/pn', UploadId, PartNumber: 1, CopySource: `${Bucket}/err/src` }));
    t.equal(whole.CopyPartResult?.ETag, `"${md5(seeded(1000, 4)).toString('hex')}"`, 'UploadPartCopy without a range copies the whole source');
    await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: 'err/pn', UploadId }));
  }
  await expectS3Error(t, s3.send(new CreateMultipartUploadCommand({ Bucket: 'no-such-bucket-mpu', Key })), 'NoSuchBucket', 404, 'create in a missing bucket');
});

t.test('CRC32 multipart checksums', async (t) => {
  const parts = [seeded(5 * MiB, 21), seeded(5 * MiB, 22), seeded(777, 23)];
  const whole = Buffer.concat(parts);
  const partSums = parts.map((p) => b64u32(crc32(p)));
  const composite = `${b64u32(crc32(Buffer.concat(partSums.map((s) => Buffer.from(s, 'base64')))))}-${parts.length}`;

  // COMPOSITE (the default for CRC32).
  {
    const Key = 'crc/composite';
    const c = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key, ChecksumAlgorithm: 'CRC32' }));
    t.equal(c.ChecksumAlgorithm, 'CRC32');
    t.equal(c.ChecksumType, 'COMPOSITE');
    const done: CompletedPart[] = [];
    for (const [i, Body] of parts.entries()) {
      const u = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId: c.UploadId, PartNumber: i + 1, Body, ChecksumAlgorithm: 'CRC32' }));
      t.equal(u.ChecksumCRC32, partSums[i], `part ${i + 1} CRC32`);
      done.push({ PartNumber: i + 1, ETag: u.ETag, ChecksumCRC32: u.ChecksumCRC32 });
    }
    const lp = await s3.send(new ListPartsCommand({ Bucket, Key, UploadId: c.UploadId }));
    t.same(lp.Parts?.map((p) => p.ChecksumCRC32), partSums, 'ListParts shows the part checksums');
    t.equal(lp.ChecksumAlgorithm, 'CRC32');
    const bad = done.map((p, i) => (i === 1 ? { ...p, ChecksumCRC32: 'AAAAAA==' } : p));
    await expectS3Error(t, s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId: c.UploadId, MultipartUpload: { Parts: bad } })),
      'InvalidPart', 400, 'a part checksum that does not match');
    const r = await s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId: c.UploadId, MultipartUpload: { Parts: done } }));
    t.equal(r.ChecksumCRC32, composite, 'composite checksum: CRC32 of the part CRC32s, -N');
    t.equal(r.ChecksumType, 'COMPOSITE');
    const g = await s3.send(new GetObjectCommand({ Bucket, Key, ChecksumMode: 'ENABLED' }));
    t.equal(g.ChecksumCRC32, composite, 'GET reports the composite checksum');
    t.equal(g.ChecksumType, 'COMPOSITE');
    t.equal(sha256(Buffer.from(await g.Body!.transformToByteArray())), sha256(whole), 'bytes');
    const h = await s3.send(new HeadObjectCommand({ Bucket, Key, ChecksumMode: 'ENABLED' }));
    t.equal(h.ChecksumCRC32, composite, 'HEAD too');
    const p2 = await s3.send(new GetObjectCommand({ Bucket, Key, PartNumber: 2, ChecksumMode: 'ENABLED' }));
    t.equal(sha256(Buffer.from(await p2.Body!.transformToByteArray())), sha256(parts[1]), 'GET partNumber=2');
  }
  // FULL_OBJECT: the CRC32 of the whole object, combined from the parts.
  {
    const Key = 'crc/full';
    const c = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key, ChecksumAlgorithm: 'CRC32', ChecksumType: 'FULL_OBJECT' }));
    t.equal(c.ChecksumType, 'FULL_OBJECT');
    const done: CompletedPart[] = [];
    for (const [i, Body] of parts.entries()) {
      const u = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId: c.UploadId, PartNumber: i + 1, Body, ChecksumAlgorithm: 'CRC32' }));
      done.push({ PartNumber: i + 1, ETag: u.ETag, ChecksumCRC32: u.ChecksumCRC32 });
    }
    const r = await s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId: c.UploadId, MultipartUpload: { Parts: done }, ChecksumCRC32: b64u32(crc32(whole)), ChecksumType: 'FULL_OBJECT' }));
    t.equal(r.ChecksumCRC32, b64u32(crc32(whole)), 'full-object CRC32');
    const g = await s3.send(new GetObjectCommand({ Bucket, Key, ChecksumMode: 'ENABLED' }));
    t.equal(sha256(Buffer.from(await g.Body!.transformToByteArray())), sha256(whole), 'bytes (validated by the SDK against the full-object CRC32)');
    t.equal(g.ChecksumCRC32, b64u32(crc32(whole)));
  }
  // lib-storage with a checksum algorithm.
  {
    const Key = 'crc/lib-storage';
    const body = seeded(12 * MiB + 5, 24);
    await new Upload({ client: s3, params: { Bucket, Key, Body: body, ChecksumAlgorithm: 'CRC32' }, partSize: 5 * MiB, queueSize: 2 }).done();
    const h = await s3.send(new HeadObjectCommand({ Bucket, Key, ChecksumMode: 'ENABLED' }));
    t.match(h.ChecksumCRC32, /-3$/, 'lib-storage CRC32 upload has a 3-part composite checksum');
    t.equal((await download(Key)).sha, sha256(body));
  }
});
