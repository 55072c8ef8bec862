// Error paths over raw HTTP (node's http module, aws4 signing, hand-built aws-chunked bodies),
// so every byte on the wire is the test's: authentication failures, payload integrity, XML
// errors, the error document itself; then access-key permissions and health/metrics.
import t from 'tap';
import { createHash, createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';
import {
  S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, ListObjectsV2Command, ListBucketsCommand, DeleteObjectCommand,
  CopyObjectCommand, HeadBucketCommand, CreateMultipartUploadCommand, DeleteBucketCommand, GetObjectTaggingCommand,
} from '@aws-sdk/client-s3';
import { startServer, TestServer, ROOT_USER, ROOT_PASSWORD } from './helpers/server';
import { expectS3Error, raw, send, signed, assertErrorXml, xmlText, sha256, md5b64, seeded, RawResponse } from './helpers/s3';

const Bucket = 'errs';
let srv: TestServer;
let s3: S3Client;

t.before(async () => {
  srv = await startServer();
  s3 = srv.client();
  await s3.send(new CreateBucketCommand({ Bucket }));
  await s3.send(new PutObjectCommand({ Bucket, Key: 'exists', Body: 'here' }));
});
t.teardown(() => srv.close());

const amzDate = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
const head = (Key: string) => raw(srv, { method: 'HEAD', path: `/${Bucket}/${encodeURIComponent(Key)}` });

t.test('authentication failures', async (t) => {
  let r = await raw(srv, { path: `/${Bucket}/exists`, sign: { accessKeyId: ROOT_USER, secretAccessKey: 'not-the-secret' } });
  assertErrorXml(t, r, 'SignatureDoesNotMatch', 403, 'wrong secret');
  t.equal(xmlText(r.text, 'AWSAccessKeyId'), ROOT_USER, 'names the access key');
  t.ok(xmlText(r.text, 'StringToSign'), 'includes the string to sign, as S3 does');

  r = await raw(srv, { path: `/${Bucket}/exists`, sign: { accessKeyId: 'AKIDONOTEXIST', secretAccessKey: 'whatever' } });
  assertErrorXml(t, r, 'InvalidAccessKeyId', 403, 'unknown access key');

  for (const [method, path] of [['GET', '/'], ['GET', `/${Bucket}`], ['GET', `/${Bucket}/exists`], ['PUT', `/${Bucket}/anon`], ['DELETE', `/${Bucket}/exists`], ['PUT', '/anon-bucket']]) {
    r = await raw(srv, { method, path, sign: false, body: method === 'PUT' ? 'x' : undefined });
    assertErrorXml(t, r, 'AccessDenied', 403, `anonymous ${method} ${path}`);
  }
  t.equal((await head('anon')).status, 404, 'the anonymous PUT stored nothing');
  t.equal((await head('exists')).status, 200, 'the anonymous DELETE deleted nothing');

  for (const minutes of [-20, 20]) {
    r = await raw(srv, { path: `/${Bucket}/exists`, headers: { 'X-Amz-Date': amzDate(new Date(Date.now() + minutes * 60_000)) } });
    assertErrorXml(t, r, 'RequestTimeTooSkewed', 403, `clock ${minutes} min off`);
  }
  r = await raw(srv, { path: `/${Bucket}/exists`, headers: { 'X-Amz-Date': amzDate(new Date(Date.now() - 5 * 60_000)) } });
  t.equal(r.status, 200, '5 minutes of skew is within the 15 allowed');

  // Authorization header present but mangled.
  r = await send(srv, { method: 'GET', path: `/${Bucket}/exists`, headers: { authorization: 'AWS4-HMAC-SHA256 Credential=garbage', 'x-amz-date': amzDate(new Date()), 'x-amz-content-sha256': sha256('') } });
  assertErrorXml(t, r, 'AuthorizationHeaderMalformed', 400, 'malformed Authorization');
});

t.test('presigned URLs: expired, tampered', async (t) => {
  const creds = { accessKeyId: ROOT_USER, secretAccessKey: ROOT_PASSWORD };
  const good = signed(srv, { path: `/${Bucket}/exists?X-Amz-Expires=300`, presign: true, sign: creds });
  let r = await send(srv, { method: 'GET', path: good.path });
  t.equal(r.status, 200, 'valid presigned GET');
  t.equal(r.text, 'here');

  const old = amzDate(new Date(Date.now() - 20 * 60_000));
  const expired = signed(srv, { path: `/${Bucket}/exists?X-Amz-Expires=60&X-Amz-Date=${old}`, presign: true, sign: creds });
  r = await send(srv, { method: 'GET', path: expired.path });
  assertErrorXml(t, r, 'AccessDenied', 403, 'expired presigned URL');
  t.match(xmlText(r.text, 'Message'), /expired/i);

  const tamper = (from: RegExp, to: string) => good.path.replace(from, to);
  const cases: Array<[string, string]> = [
    ['a longer expiry', tamper(/X-Amz-Expires=300/, 'X-Amz-Expires=600')],
    ['another key', tamper(/\/exists\?/, '/exist2?')],
    ['an added parameter', `${good.path}&response-content-type=text%2Fhtml`],
    ['a changed signature', good.path.replace(/X-Amz-Signature=([0-9a-f])/, (_m, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`)],
    ['another date', tamper(/X-Amz-Date=\d{8}T\d{6}Z/, `X-Amz-Date=${sameDayShift(/X-Amz-Date=(\d{8})/.exec(good.path)![1])}`)],
  ];
  for (const [what, path] of cases) {
    t.not(path, good.path, `${what}: the URL really changed`);
    r = await send(srv, { method: 'GET', path });
    if (what === 'another key') t.equal(r.status, 403, 'tampered key: refused before it can say NoSuchKey');
    assertErrorXml(t, r, 'SignatureDoesNotMatch', 403, `presigned URL with ${what}`);
  }
  // A presigned PUT whose method is changed is refused too.
  const put = signed(srv, { method: 'PUT', path: `/${Bucket}/presigned-put?X-Amz-Expires=300`, presign: true, sign: creds });
  r = await send(srv, { method: 'DELETE', path: put.path });
  assertErrorXml(t, r, 'SignatureDoesNotMatch', 403, 'presigned PUT used as DELETE');
  r = await send(srv, { method: 'PUT', path: put.path, body: 'presigned body' });
  t.equal(r.status, 200, 'the presigned PUT itself works');
});

t.test('payload integrity: x-amz-content-sha256 and Content-MD5', async (t) => {
  let r = await raw(srv, { method: 'PUT', path: `/${Bucket}/sha-mismatch`, body: 'actual body', headers: { 'x-amz-content-sha256': sha256('a different body') } });
  assertErrorXml(t, r, 'XAmzContentSHA256Mismatch', 400, 'x-amz-content-sha256 mismatch');
  t.equal((await head('sha-mismatch')).status, 404, 'object not created');

  r = await raw(srv, { method: 'PUT', path: `/${Bucket}/sha-ok`, body: 'actual body' });
  t.equal(r.status, 200, 'a matching x-amz-content-sha256 is accepted');

  r = await raw(srv, { method: 'PUT', path: `/${Bucket}/bad-md5`, body: 'actual body', headers: { 'content-md5': md5b64('something else') } });
  assertErrorXml(t, r, 'BadDigest', 400, 'Content-MD5 mismatch');
  t.equal((await head('bad-md5')).status, 404, 'object not created');

  for (const bad of ['not-base64!', 'AAAA', md5b64('x').slice(0, -2), Buffer.alloc(20).toString('base64')]) {
    r = await raw(srv, { method: 'PUT', path: `/${Bucket}/malformed-md5`, body: 'actual body', headers: { 'content-md5': bad } });
    assertErrorXml(t, r, 'InvalidDigest', 400, `malformed Content-MD5 ${JSON.stringify(bad)}`);
  }
  t.equal((await head('malformed-md5')).status, 404, 'object not created');

  r = await raw(srv, { method: 'PUT', path: `/${Bucket}/good-md5`, body: 'actual body', headers: { 'content-md5': md5b64('actual body') } });
  t.equal(r.status, 200, 'a matching Content-MD5 is accepted');

  // An UNSIGNED-PAYLOAD request with a wrong x-amz-checksum-crc32 header.
  r = await raw(srv, { method: 'PUT', path: `/${Bucket}/bad-crc`, body: 'actual body', headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'x-amz-checksum-crc32': 'AAAAAA==' } });
  assertErrorXml(t, r, 'BadDigest', 400, 'wrong x-amz-checksum-crc32 header');
  t.equal((await head('bad-crc')).status, 404, 'object not created');
});

// ---- aws-chunked bodies, built by hand from the SigV4 streaming spec ----

const EMPTY_SHA = sha256('');
const hmac = (key: Buffer | string, s: string) => createHmac('sha256', key).update(s).digest();
const signingKey = (secret: string, date: string) => hmac(hmac(hmac(hmac(`AWS4${secret}`, date), 'us-east-1'), 's3'), 'aws4_request');

function splitChunks(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0; o < data.length; o += size) out.push(data.subarray(o, o + size));
  return out;
}

/** STREAMING-AWS4-HMAC-SHA256-PAYLOAD framing; signatures chain from the seed (header) signature. */
function signedChunkedBody(chunks: Buffer[], key: Buffer, date: string, scope: string, seed: string): Buffer {
  const out: Buffer[] = [];
  let prev = seed;
  for (const c of [...chunks, Buffer.alloc(0)]) {
    const sts = ['AWS4-HMAC-SHA256-PAYLOAD', date, scope, prev, EMPTY_SHA, sha256(c)].join('\n');
    prev = hmac(key, sts).toString('hex');
    out.push(Buffer.from(`${c.length.toString(16)};chunk-signature=${prev}\r\n`), c, Buffer.from('\r\n'));
  }
  return Buffer.concat(out);
}

/** Sends a signed streaming PUT: headers signed with aws4, then the chunk chain from its signature. */
async function putSignedChunked(key: string, data: Buffer, chunkSize: number, tamper?: (body: Buffer) => void, secret = ROOT_PASSWORD, declared = data.length): Promise<RawResponse> {
  const chunks = splitChunks(data, chunkSize);
  const placeholder = signedChunkedBody(chunks, Buffer.alloc(32), '', '', '0'.repeat(64));
  const req = signed(srv, {
    method: 'PUT', path: `/${Bucket}/${key}`,
    headers: {
      'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'content-encoding': 'aws-chunked',
      'x-amz-decoded-content-length': declared, 'content-length': placeholder.length,
    },
    sign: { accessKeyId: ROOT_USER, secretAccessKey: secret },
  });
  const date = String(req.headers['X-Amz-Date']);
  const scope = `${date.slice(0, 8)}/us-east-1/s3/aws4_request`;
  const seed = /Signature=([0-9a-f]{64})/.exec(String(req.headers.Authorization))![1];
  const body = signedChunkedBody(chunks, signingKey(ROOT_PASSWORD, date.slice(0, 8)), date, scope, seed);
  if (body.length !== placeholder.length) throw new Error('chunk framing length changed after signing');
  tamper?.(body);
  return send(srv, { ...req, body });
}

/** STREAMING-UNSIGNED-PAYLOAD-TRAILER: plain chunks, then trailer lines. */
function unsignedTrailerBody(chunks: Buffer[], trailers: Array<[string, string]>): Buffer {
  const out: Buffer[] = [];
  for (const c of chunks) out.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n'));
  out.push(Buffer.from(`0\r\n${trailers.map(([k, v]) => `${k}:${v}\r\n`).join('')}\r\n`));
  return Buffer.concat(out);
}

async function putUnsignedTrailer(key: string, data: Buffer, checksum: string, secret = ROOT_PASSWORD): Promise<RawResponse> {
  const body = unsignedTrailerBody(splitChunks(data, 8192), [['x-amz-checksum-crc32', checksum]]);
  return raw(srv, {
    method: 'PUT', path: `/${Bucket}/${key}`, body,
    headers: {
      'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', 'content-encoding': 'aws-chunked', 'x-amz-trailer': 'x-amz-checksum-crc32',
      'x-amz-decoded-content-length': data.length, 'content-length': body.length,
    },
    sign: { accessKeyId: ROOT_USER, secretAccessKey: secret },
  });
}

const crc32b64 = (b: Buffer) => { const o = Buffer.alloc(4); o.writeUInt32BE(crc32(b) >>> 0); return o.toString('base64'); };

t.test('aws-chunked STREAMING-AWS4-HMAC-SHA256-PAYLOAD', async (t) => {
  const data = seeded(200_000, 3);
  let r = await putSignedChunked('chunked-ok', data, 65536);
  t.equal(r.status, 200, `correct signed chunks → 200 (${r.text.slice(0, 200)})`);
  t.equal(r.headers.etag, `"${createHash('md5').update(data).digest('hex')}"`, 'ETag is the MD5 of the decoded payload');
  const g = await raw(srv, { path: `/${Bucket}/chunked-ok` });
  t.equal(g.status, 200);
  t.equal(g.body.length, data.length, 'stored length is the decoded length');
  t.ok(g.body.equals(data), 'GET returns exactly the payload, no chunk framing');
  t.equal(g.headers['content-encoding'], undefined, 'aws-chunked is not stored as a content encoding');

  r = await putSignedChunked('chunked-empty', Buffer.alloc(0), 65536);
  t.equal(r.status, 200, 'an empty signed streaming body');
  t.equal((await raw(srv, { path: `/${Bucket}/chunked-empty` })).body.length, 0);

  // One payload byte flipped in the second chunk.
  r = await putSignedChunked('chunked-tampered', data, 65536, (body) => {
    const second = body.indexOf('\r\n', body.indexOf(';chunk-signature=', 100) + 1) + 2;
    body[second + 10] ^= 0xff;
  });
  assertErrorXml(t, r, 'SignatureDoesNotMatch', 403, 'tampered chunk');
  t.equal((await head('chunked-tampered')).status, 404, 'nothing stored');
  // A tampered chunk signature.
  r = await putSignedChunked('chunked-badsig', data, 65536, (body) => {
    const i = body.indexOf(';chunk-signature=') + ';chunk-signature='.length;
    body[i] = body[i] === 0x30 ? 0x31 : 0x30;
  });
  assertErrorXml(t, r, 'SignatureDoesNotMatch', 403, 'tampered chunk signature');
  t.equal((await head('chunked-badsig')).status, 404, 'nothing stored');
  // Header signed with the wrong secret: the seed signature fails first.
  r = await putSignedChunked('chunked-wrongkey', data, 65536, undefined, 'wrong-secret');
  assertErrorXml(t, r, 'SignatureDoesNotMatch', 403, 'wrong secret on a streaming upload');
  t.equal((await head('chunked-wrongkey')).status, 404, 'nothing stored');
  // x-amz-decoded-content-length that disagrees with the chunks.
  for (const declared of [data.length + 1, data.length - 1]) {
    r = await putSignedChunked('chunked-length', data, 65536, undefined, ROOT_PASSWORD, declared);
    assertErrorXml(t, r, 'IncompleteBody', 400, `decoded length ${declared} for ${data.length} bytes`);
  }
  t.equal((await head('chunked-length')).status, 404, 'nothing stored');
  // The final (zero-length) chunk's signature forged: everything before it verified, still nothing is stored.
  r = await putSignedChunked('chunked-badfinal', data, 65536, (body) => {
    const i = body.lastIndexOf('0;chunk-signature=') + '0;chunk-signature='.length;
    body[i] = body[i] === 0x30 ? 0x31 : 0x30;
  });
  assertErrorXml(t, r, 'SignatureDoesNotMatch', 403, 'forged final chunk signature');
  t.equal((await head('chunked-badfinal')).status, 404, 'nothing stored');
});

t.test('aws-chunked STREAMING-UNSIGNED-PAYLOAD-TRAILER with x-amz-checksum-crc32', async (t) => {
  const data = seeded(50_000, 4);
  let r = await putUnsignedTrailer('trailer-ok', data, crc32b64(data));
  t.equal(r.status, 200, `correct trailer → 200 (${r.text.slice(0, 200)})`);
  t.equal(r.headers['x-amz-checksum-crc32'], crc32b64(data), 'the CRC32 is echoed');
  const g = await raw(srv, { path: `/${Bucket}/trailer-ok`, headers: { 'x-amz-checksum-mode': 'ENABLED' } });
  t.ok(g.body.equals(data), 'stored bytes are the decoded payload');
  t.equal(g.headers['x-amz-checksum-crc32'], crc32b64(data), 'and the checksum is kept');

  r = await putUnsignedTrailer('trailer-bad', data, crc32b64(Buffer.from('something else')));
  assertErrorXml(t, r, 'BadDigest', 400, 'wrong CRC32 trailer');
  t.equal((await head('trailer-bad')).status, 404, 'nothing stored');

  r = await putUnsignedTrailer('trailer-wrongsig', data, crc32b64(data), 'wrong-secret');
  assertErrorXml(t, r, 'SignatureDoesNotMatch', 403, 'unsigned-trailer request with a wrong header signature');
  t.equal((await head('trailer-wrongsig')).status, 404, 'nothing stored');
  // Same body, no Authorization at all: anonymous writes are refused.
  const body = unsignedTrailerBody(splitChunks(data, 8192), [['x-amz-checksum-crc32', crc32b64(data)]]);
  r = await send(srv, { method: 'PUT', path: `/${Bucket}/trailer-anon`, body, headers: { 'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', 'content-encoding': 'aws-chunked', 'x-amz-trailer': 'x-amz-checksum-crc32', 'x-amz-decoded-content-length': data.length } });
  assertErrorXml(t, r, 'AccessDenied', 403, 'anonymous unsigned-trailer upload');
});

t.test('malformed XML bodies → MalformedXML', async (t) => {
  const up = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'xml-mpu' }));
  const bodies = ['<not xml', '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>', 'plain text', '<Wrong/>'];
  for (const body of bodies) {
    let r = await raw(srv, { method: 'POST', path: `/${Bucket}/xml-mpu?uploadId=${encodeURIComponent(up.UploadId!)}`, body, headers: { 'content-type': 'application/xml' } });
    assertErrorXml(t, r, 'MalformedXML', 400, `CompleteMultipartUpload ${JSON.stringify(body)}`);
    r = await raw(srv, { method: 'POST', path: `/${Bucket}?delete`, body, headers: { 'content-md5': md5b64(body), 'content-type': 'application/xml' } });
    assertErrorXml(t, r, 'MalformedXML', 400, `DeleteObjects ${JSON.stringify(body)}`);
    r = await raw(srv, { method: 'PUT', path: `/${Bucket}/exists?tagging`, body, headers: { 'content-type': 'application/xml' } });
    assertErrorXml(t, r, 'MalformedXML', 400, `PutObjectTagging ${JSON.stringify(body)}`);
    r = await raw(srv, { method: 'PUT', path: `/${Bucket}?tagging`, body, headers: { 'content-type': 'application/xml' } });
    assertErrorXml(t, r, 'MalformedXML', 400, `PutBucketTagging ${JSON.stringify(body)}`);
  }
  t.equal((await head('exists')).status, 200, 'DeleteObjects with bad XML deleted nothing');
  t.same((await s3.send(new GetObjectTaggingCommand({ Bucket, Key: 'exists' }))).TagSet ?? [], [], 'no tags were set');
  const delNoMd5 = await raw(srv, { method: 'POST', path: `/${Bucket}?delete`, body: '<Delete><Object><Key>exists</Key></Object></Delete>' });
  assertErrorXml(t, delNoMd5, 'InvalidRequest', 400, 'DeleteObjects without Content-MD5 or checksum');
  t.equal((await head('exists')).status, 200, 'and deleted nothing');
});

t.test('missing bucket, missing key, bad keys', async (t) => {
  let r = await raw(srv, { path: '/no-such-bucket-here/key' });
  assertErrorXml(t, r, 'NoSuchBucket', 404, 'GET in a missing bucket');
  t.equal(xmlText(r.text, 'BucketName'), 'no-such-bucket-here', 'names the bucket');
  t.equal(xmlText(r.text, 'Resource'), '/no-such-bucket-here/key');
  r = await raw(srv, { path: '/no-such-bucket-here' });
  assertErrorXml(t, r, 'NoSuchBucket', 404, 'list a missing bucket');
  r = await raw(srv, { path: `/${Bucket}/no/such/key` });
  assertErrorXml(t, r, 'NoSuchKey', 404, 'GET a missing key');
  t.equal(xmlText(r.text, 'Key'), 'no/such/key', 'names the key');
  t.equal(xmlText(r.text, 'Resource'), `/${Bucket}/no/such/key`);
  r = await raw(srv, { method: 'HEAD', path: `/${Bucket}/no/such/key` });
  t.equal(r.status, 404, 'HEAD of a missing key');
  t.equal(r.body.length, 0, 'HEAD errors have no body');
  t.ok(r.headers['x-amz-request-id'], 'but a request id');

  r = await raw(srv, { method: 'PUT', path: `/${Bucket}/nul%00byte`, body: 'x' });
  t.equal(r.status, 400, 'a key with NUL is refused');
  assertErrorXml(t, r, String(xmlText(r.text, 'Code')), 400, 'NUL key');
  t.match(xmlText(r.text, 'Code'), /^(InvalidArgument|InvalidObjectName|InvalidURI)$/);
  t.equal((await raw(srv, { path: `/${Bucket}?prefix=nul` })).text.includes('<Key>nul'), false, 'nothing listed');
  r = await raw(srv, { path: `/${Bucket}/nul%00byte` });
  t.ok(r.status === 400 || (r.status === 404 && xmlText(r.text, 'Code') === 'NoSuchKey'), `GET with NUL: refused or not found (${r.status})`);
  // aws4 cannot sign a path that is not valid percent-encoding; the addressing check comes before auth anyway.
  for (const path of [`/${Bucket}/bad%ZZescape`, `/${Bucket}/bad%C3%28utf8`, `/${Bucket}/trunc%E6%97`]) {
    r = await send(srv, { method: 'PUT', path, body: 'x' });
    assertErrorXml(t, r, 'InvalidURI', 400, `undecodable key ${path}`);
  }
});

t.test('every response has x-amz-request-id; every error body is S3 error XML', async (t) => {
  const ids = new Set<string>();
  const responses: Array<[string, RawResponse]> = [
    ['ListBuckets', await raw(srv, { path: '/' })],
    ['GetObject', await raw(srv, { path: `/${Bucket}/exists` })],
    ['HeadObject', await raw(srv, { method: 'HEAD', path: `/${Bucket}/exists` })],
    ['PutObject', await raw(srv, { method: 'PUT', path: `/${Bucket}/rid`, body: 'x' })],
    ['DeleteObject', await raw(srv, { method: 'DELETE', path: `/${Bucket}/rid` })],
    ['NoSuchKey', await raw(srv, { path: `/${Bucket}/nope` })],
    ['NotImplemented', await raw(srv, { path: `/${Bucket}?policy` })],
    ['anonymous', await raw(srv, { path: `/${Bucket}`, sign: false })],
    ['bad method', await raw(srv, { method: 'PATCH', path: `/${Bucket}/exists`, body: 'x' })],
    ['304', await raw(srv, { path: `/${Bucket}/exists`, headers: { 'if-none-match': '*' } })],
    ['416', await raw(srv, { path: `/${Bucket}/exists`, headers: { range: 'bytes=100-' } })],
  ];
  for (const [what, r] of responses) {
    const id = r.headers['x-amz-request-id'];
    t.ok(typeof id === 'string' && id.length > 0, `${what}: x-amz-request-id`);
    if (typeof id === 'string') ids.add(id);
    if (r.status >= 400 && what !== 'HeadObject') {
      t.match(r.text, /^<\?xml[^>]*>\s*<Error>/, `${what}: error body is S3 XML`);
      for (const el of ['Code', 'Message', 'Resource', 'RequestId']) t.ok(xmlText(r.text, el) !== undefined, `${what}: <${el}>`);
      t.equal(xmlText(r.text, 'RequestId'), id, `${what}: RequestId equals the header`);
    }
  }
  t.equal(ids.size, responses.length, 'request ids are unique');
  t.equal(responses[8][1].status, 405, 'PATCH → 405');
  t.equal(xmlText(responses[8][1].text, 'Code'), 'MethodNotAllowed');
  t.equal(responses[9][1].status, 304);
  t.equal(responses[10][1].status, 416);
  t.equal(xmlText(responses[10][1].text, 'Code'), 'InvalidRange');
});

t.test('access keys scoped to buckets', async (t) => {
  for (const b of ['ro-bucket', 'rw-bucket', 'third-bucket']) await s3.send(new CreateBucketCommand({ Bucket: b }));
  await s3.send(new PutObjectCommand({ Bucket: 'ro-bucket', Key: 'r', Body: 'readable' }));
  await s3.send(new PutObjectCommand({ Bucket: 'third-bucket', Key: 's', Body: 'secret' }));
  const key = await srv.kiln.credentials.create({ 'ro-bucket': 'read', 'rw-bucket': 'readwrite' });
  const c = srv.client({ accessKeyId: key.accessKey, secretAccessKey: key.secretKey });

  t.equal(await (await c.send(new GetObjectCommand({ Bucket: 'ro-bucket', Key: 'r' }))).Body!.transformToString(), 'readable', 'reads ro-bucket');
  t.equal((await c.send(new ListObjectsV2Command({ Bucket: 'ro-bucket' }))).KeyCount, 1, 'lists ro-bucket');
  await c.send(new HeadBucketCommand({ Bucket: 'ro-bucket' }));
  await expectS3Error(t, c.send(new PutObjectCommand({ Bucket: 'ro-bucket', Key: 'w', Body: 'no' })), 'AccessDenied', 403, 'PutObject to ro-bucket');
  await expectS3Error(t, c.send(new DeleteObjectCommand({ Bucket: 'ro-bucket', Key: 'r' })), 'AccessDenied', 403, 'DeleteObject in ro-bucket');
  await expectS3Error(t, c.send(new CreateMultipartUploadCommand({ Bucket: 'ro-bucket', Key: 'm' })), 'AccessDenied', 403, 'CreateMultipartUpload in ro-bucket');
  await expectS3Error(t, c.send(new DeleteBucketCommand({ Bucket: 'ro-bucket' })), 'AccessDenied', 403, 'DeleteBucket ro-bucket');
  t.equal((await head('r').then(() => raw(srv, { method: 'HEAD', path: '/ro-bucket/w' }))).status, 404, 'the refused PUT stored nothing');

  await c.send(new PutObjectCommand({ Bucket: 'rw-bucket', Key: 'w', Body: 'written' }));
  t.equal(await (await c.send(new GetObjectCommand({ Bucket: 'rw-bucket', Key: 'w' }))).Body!.transformToString(), 'written', 'writes and reads rw-bucket');
  await c.send(new CopyObjectCommand({ Bucket: 'rw-bucket', Key: 'copied', CopySource: 'ro-bucket/r' }));
  t.pass('copies from ro-bucket into rw-bucket');
  await expectS3Error(t, c.send(new CopyObjectCommand({ Bucket: 'rw-bucket', Key: 'stolen', CopySource: 'third-bucket/s' })), 'AccessDenied', 403, 'copy from a bucket it cannot read');
  await c.send(new DeleteObjectCommand({ Bucket: 'rw-bucket', Key: 'w' }));

  await expectS3Error(t, c.send(new GetObjectCommand({ Bucket: 'third-bucket', Key: 's' })), 'AccessDenied', 403, 'GetObject third-bucket');
  await expectS3Error(t, c.send(new PutObjectCommand({ Bucket: 'third-bucket', Key: 'x', Body: 'x' })), 'AccessDenied', 403, 'PutObject third-bucket');
  await expectS3Error(t, c.send(new ListObjectsV2Command({ Bucket: 'third-bucket' })), 'AccessDenied', 403, 'ListObjectsV2 third-bucket');
  await expectS3Error(t, c.send(new CreateBucketCommand({ Bucket: 'new-by-key' })), 'AccessDenied', 403, 'CreateBucket');

  const lb = await c.send(new ListBucketsCommand({}));
  t.same(lb.Buckets?.map((b) => b.Name), ['ro-bucket', 'rw-bucket'], 'ListBuckets shows only its buckets');

  await srv.kiln.credentials.remove(key.accessKey);
  // The credential cache holds a key for at most a second; a removed key then stops working.
  let code: string | undefined;
  for (let i = 0; i < 30 && code !== 'InvalidAccessKeyId'; i++) {
    code = await c.send(new ListBucketsCommand({})).then(() => 'ok', (e: { name?: string }) => e.name);
    if (code !== 'InvalidAccessKeyId') await new Promise((res) => setTimeout(res, 100));
  }
  t.equal(code, 'InvalidAccessKeyId', 'a removed key is refused');
});

t.test('health and metrics', async (t) => {
  let r = await send(srv, { method: 'GET', path: '/health/live' });
  t.equal(r.status, 200, '/health/live');
  r = await send(srv, { method: 'GET', path: '/health/ready' });
  t.equal(r.status, 200, '/health/ready');
  r = await send(srv, { method: 'GET', path: '/metrics' });
  t.equal(r.status, 200, '/metrics');
  t.match(r.text, /^kiln_requests_total\{op="GetObject",status="200"\} \d+/m, 'kiln_requests_total by operation and status');
  t.match(r.text, /^kiln_requests_total\{op="PutObject",status="403"\} \d+/m, 'errors are counted too');
  // The latency histogram: cumulative buckets ending in +Inf, which equals _count.
  const series = (name: string) => r.text.split('\n').filter((l) => l.startsWith(name)).map((l) => Number(l.split(' ').pop()));
  const buckets = series('kiln_request_duration_seconds_bucket{le="');
  t.ok(buckets.length >= 16, 'histogram buckets exported');
  const getBuckets = r.text.split('\n').filter((l) => /^kiln_request_duration_seconds_bucket\{le="[^"]+",op="GetObject"\}/.test(l)).map((l) => Number(l.split(' ')[1]));
  t.equal(getBuckets.length, 16, 'GetObject: 15 bounds and +Inf');
  t.ok(getBuckets.every((v, i) => i === 0 || v >= getBuckets[i - 1]), 'buckets are cumulative');
  t.equal(getBuckets[15], series('kiln_request_duration_seconds_count{op="GetObject"}')[0], '+Inf bucket equals _count');
  t.ok(series('kiln_request_duration_seconds_sum{op="GetObject"}')[0] > 0, '_sum');
  t.ok(series('kiln_bytes_received_total')[0] > 0 && series('kiln_bytes_sent_total')[0] > 0, 'payload bytes in and out');
  t.match(r.text, /^kiln_drive_online\{drive="[^"]+",state="[^"]+"\} 1$/m, 'kiln_drive_online per drive');
  t.equal(r.text.match(/^kiln_drive_online\{/gm)?.length, srv.drives.length, 'one series per drive');
});

/** A time a minute off the signed one but on its day (the credential's date), even around midnight UTC. */
function sameDayShift(day: string): string {
  for (const ms of [-60_000, 60_000]) {
    const d = amzDate(new Date(Date.now() + ms));
    if (d.startsWith(day)) return d;
  }
  throw new Error('no time a minute away on the same day');
}
