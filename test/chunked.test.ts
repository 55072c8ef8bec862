import t from 'tap';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createChunkedDecoder, type ChunkedOptions } from '../server/auth/chunked';
import { signingKeyFor, verifySigV4, type AuthContext } from '../server/auth/sigv4';
import { createChecksum, type ChecksumAlgorithm } from '../server/checksums';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const EMPTY = sha256('');

interface Signing { key: Buffer; amzDate: string; scope: string; seed: string }

/** Builds an aws-chunked body straight from the AWS spec, independently of the decoder. */
function encode(chunks: Buffer[], o: { signing?: Signing; trailers?: Array<[string, string]>; trailerSig?: boolean; finalCrlf?: boolean } = {}) {
  const parts: Buffer[] = [];
  const sigs: string[] = [];
  let prev = o.signing?.seed ?? '';
  const sign = (sts: string) => createHmac('sha256', o.signing!.key).update(sts).digest('hex');
  for (const c of [...chunks, Buffer.alloc(0)]) {
    let ext = '';
    if (o.signing) {
      prev = sign(['AWS4-HMAC-SHA256-PAYLOAD', o.signing.amzDate, o.signing.scope, prev, EMPTY, sha256(c)].join('\n'));
      sigs.push(prev);
      ext = `;chunk-signature=${prev}`;
    }
    parts.push(Buffer.from(`${c.length.toString(16)}${ext}\r\n`));
    if (c.length) parts.push(c, Buffer.from('\r\n'));
  }
  let tail = '';
  for (const [n, v] of o.trailers ?? []) tail += `${n}:${v}\r\n`;
  if (o.trailerSig && o.signing) {
    const hashed = sha256((o.trailers ?? []).map(([n, v]) => `${n}:${v}\n`).join(''));
    tail += `x-amz-trailer-signature:${sign(['AWS4-HMAC-SHA256-TRAILER', o.signing.amzDate, o.signing.scope, prev, hashed].join('\n'))}\r\n`;
  }
  if (o.finalCrlf !== false) tail += '\r\n';
  parts.push(Buffer.from(tail));
  return { body: Buffer.concat(parts), sigs };
}

function split(body: Buffer, how: 'one' | 'tiny' | 'random'): Buffer[] {
  if (how === 'one') return [body];
  const out: Buffer[] = [];
  for (let pos = 0; pos < body.length;) {
    const n = how === 'tiny' ? 1 + Math.floor(Math.random() * 7) : 1 + Math.floor(Math.random() * 20000);
    out.push(body.subarray(pos, pos + n));
    pos += n;
  }
  return out;
}

async function decode(body: Buffer, opts: ChunkedOptions, how: 'one' | 'tiny' | 'random' = 'one', fastSink = false) {
  const dec = createChunkedDecoder(opts);
  const got: Buffer[] = [];
  let ended = false, finished = false;
  dec.on('end', () => { ended = true; });
  // The slow sink exercises backpressure; the fast one sees every byte the decoder released before an error.
  const sink = fastSink
    ? new Writable({ highWaterMark: 1 << 24, write(c, _e, cb) { got.push(c); cb(); } })
    : new Writable({ highWaterMark: 1024, write(c, _e, cb) { got.push(c); setImmediate(cb); } });
  sink.on('finish', () => { finished = true; });
  let error: any;
  try {
    await pipeline(Readable.from(split(body, how)), dec, sink);
  } catch (e) {
    error = e;
  }
  return { out: Buffer.concat(got), dec, ended, finished, error };
}

const SECRET = 'chunkSecret+/=';
const AMZ_DATE = '20261122T101500Z';
const SCOPE = '20261122/us-east-1/s3/aws4_request';
const signing: Signing = { key: signingKeyFor(SECRET, '20261122', 'us-east-1', 's3'), amzDate: AMZ_DATE, scope: SCOPE, seed: 'a'.repeat(64) };
const ctxFor = (payload: AuthContext['payload']): AuthContext => ({
  anonymous: false, accessKey: 'AK', region: 'us-east-1', service: 's3', signingKey: signing.key, seedSignature: signing.seed,
  amzDate: AMZ_DATE, scope: SCOPE, payload, presigned: false,
});
const SIGNED = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD' as const;
const SIGNED_TRAILER = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER' as const;
const UNSIGNED_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER' as const;
const checksumOf = (alg: ChecksumAlgorithm, data: Buffer) => { const c = createChecksum(alg); c.update(data); return c.digest(); };

t.test('AWS documentation example: seed from verifySigV4, chunk signatures, decode', async (t) => {
  const ctx = await verifySigV4({
    method: 'PUT', url: '/examplebucket/chunkObject.txt', now: new Date('2013-05-24T00:00:00Z'),
    headers: {
      host: 's3.amazonaws.com', 'x-amz-date': '20130524T000000Z', 'x-amz-storage-class': 'REDUCED_REDUNDANCY',
      'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': '66560', 'content-length': '66824',
      'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      authorization: 'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
    },
  }, async (k) => (k === 'AKIAIOSFODNN7EXAMPLE' ? 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' : undefined));
  t.equal(ctx.seedSignature, '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9');
  const data = Buffer.alloc(66560, 'a');
  const { body, sigs } = encode([data.subarray(0, 65536), data.subarray(65536)],
    { signing: { key: ctx.signingKey, amzDate: ctx.amzDate, scope: ctx.scope, seed: ctx.seedSignature } });
  t.same(sigs, [
    'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648',
    '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497',
    'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9',
  ]);
  t.equal(body.length, 66824, 'matches the documented Content-Length');
  const r = await decode(body, { mode: ctx.payload, ctx, decodedLength: 66560 });
  t.error(r.error);
  t.ok(r.out.equals(data));
});

t.test('signed chunks decode byte-exact however the input is split', async (t) => {
  const data = randomBytes(200_000);
  const chunks = [data.subarray(0, 65536), data.subarray(65536, 131072), data.subarray(131072, 131073), data.subarray(131073)];
  const { body } = encode(chunks, { signing });
  for (const how of ['one', 'tiny', 'random'] as const) {
    const r = await decode(body, { mode: SIGNED, ctx: ctxFor(SIGNED), decodedLength: data.length }, how);
    t.error(r.error, how);
    t.ok(r.out.equals(data), how);
    t.ok(r.ended && r.finished, how);
  }
});

t.test('signed chunk tampering', async (t) => {
  const data = randomBytes(30_000);
  const { body } = encode([data.subarray(0, 10_000), data.subarray(10_000, 20_000), data.subarray(20_000)], { signing });
  const opts = { mode: SIGNED, ctx: ctxFor(SIGNED), decodedLength: data.length } as const;
  const tampered = Buffer.from(body);
  const at = body.indexOf(data.subarray(10_000, 10_016)) + 500;
  tampered[at] ^= 1;
  for (const how of ['one', 'tiny'] as const) {
    const fast = await decode(tampered, opts, how, true);
    t.match(fast.error, { code: 'SignatureDoesNotMatch' }, how);
    t.ok(fast.out.equals(data.subarray(0, 10_000)), 'only the verified first chunk went downstream');
    t.notOk(fast.ended || fast.finished);
    const slow = await decode(tampered, opts, how);
    t.match(slow.error, { code: 'SignatureDoesNotMatch' }, how);
    t.ok(slow.out.length <= 10_000 && slow.out.equals(data.subarray(0, slow.out.length)));
  }
  const badSig = Buffer.from(body.toString('latin1').replace(/chunk-signature=([0-9a-f])/, (_m, c) => `chunk-signature=${c === '0' ? '1' : '0'}`), 'latin1');
  t.match((await decode(badSig, opts)).error, { code: 'SignatureDoesNotMatch' });
  // Dropping a whole chunk breaks the signature chain.
  const short = encode([data.subarray(0, 10_000), data.subarray(20_000)], { signing });
  const frame = 87 + 10_000 + 2; // '2710;chunk-signature=<64 hex>\r\n' + data + CRLF
  const chained = Buffer.concat([short.body.subarray(0, frame), body.subarray(2 * frame)]);
  t.match((await decode(chained, { ...opts, decodedLength: undefined })).error, { code: 'SignatureDoesNotMatch' });
  t.match((await decode(body, { mode: SIGNED, ctx: { ...ctxFor(SIGNED), seedSignature: 'b'.repeat(64) } })).error, { code: 'SignatureDoesNotMatch' });
  const unsignedBody = encode([data]).body;
  t.match((await decode(unsignedBody, opts)).error, { code: 'SignatureDoesNotMatch' }, 'signature required in signed mode');
  t.throws(() => createChunkedDecoder({ mode: SIGNED }), { code: 'AccessDenied' });
});

t.test('decoded length and truncation', async (t) => {
  const data = randomBytes(5000);
  const { body } = encode([data.subarray(0, 4000), data.subarray(4000)], { signing });
  for (const decodedLength of [4999, 5001, 0]) {
    const r = await decode(body, { mode: SIGNED, ctx: ctxFor(SIGNED), decodedLength }, 'tiny');
    t.match(r.error, { code: 'IncompleteBody' }, `decodedLength ${decodedLength}`);
    t.notOk(r.ended);
  }
  for (const cut of [10, 3000, body.length - 90]) {
    const r = await decode(body.subarray(0, cut), { mode: SIGNED, ctx: ctxFor(SIGNED) });
    t.match(r.error, { code: 'IncompleteBody' }, `cut at ${cut}`);
    t.notOk(r.finished);
  }
  // Lenient: the closing CRLF may be missing.
  const lax = encode([data], { signing, finalCrlf: false });
  t.error((await decode(lax.body, { mode: SIGNED, ctx: ctxFor(SIGNED), decodedLength: 5000 })).error);
});

t.test('unsigned trailer mode with every checksum algorithm', async (t) => {
  const data = randomBytes(70_000);
  const chunks = [data.subarray(0, 65536), data.subarray(65536)];
  for (const alg of ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'] as ChecksumAlgorithm[]) {
    const name = `x-amz-checksum-${alg.toLowerCase()}`;
    const good = encode(chunks, { trailers: [[name, checksumOf(alg, data)]] });
    for (const how of ['one', 'tiny'] as const) {
      const r = await decode(good.body, { mode: UNSIGNED_TRAILER, trailerNames: [name], decodedLength: data.length }, how);
      t.error(r.error, `${alg} ${how}`);
      t.ok(r.out.equals(data));
      t.same(r.dec.trailers, { [name]: checksumOf(alg, data) });
      t.same(r.dec.checksum, { algorithm: alg, value: checksumOf(alg, data) });
    }
    const bad = encode(chunks, { trailers: [[name, checksumOf(alg, Buffer.from('other'))]] });
    const r = await decode(bad.body, { mode: UNSIGNED_TRAILER, trailerNames: [name] }, 'tiny');
    t.match(r.error, { code: 'BadDigest' }, `${alg} mismatch`);
    t.notOk(r.ended || r.finished, 'never ends cleanly');
  }
  const lax = encode(chunks, { trailers: [['x-amz-checksum-crc32', checksumOf('CRC32', data)]], finalCrlf: false });
  t.error((await decode(lax.body, { mode: UNSIGNED_TRAILER, trailerNames: ['x-amz-checksum-crc32'] })).error, 'missing final CRLF');
  const good = encode(chunks, { trailers: [['x-amz-checksum-crc32', checksumOf('CRC32', data)]] });
  t.match((await decode(good.body, { mode: UNSIGNED_TRAILER })).error, { code: 'InvalidRequest' }, 'undeclared trailer');
  t.match((await decode(encode(chunks).body, { mode: UNSIGNED_TRAILER, trailerNames: ['x-amz-checksum-crc32'] })).error, { code: 'InvalidRequest' }, 'declared trailer missing');
  const short = encode(chunks, { trailers: [['x-amz-checksum-crc32', 'AAAA']] });
  t.match((await decode(short.body, { mode: UNSIGNED_TRAILER, trailerNames: ['x-amz-checksum-crc32'] })).error, { code: 'InvalidDigest' });
  t.throws(() => createChunkedDecoder({ mode: UNSIGNED_TRAILER, trailerNames: ['x-amz-checksum-crc32,x-amz-checksum-sha1'] }), { code: 'InvalidRequest' });
});

t.test('signed trailer mode', async (t) => {
  const data = randomBytes(20_000);
  const crc = checksumOf('CRC32C', data);
  const opts = { mode: SIGNED_TRAILER, ctx: ctxFor(SIGNED_TRAILER), trailerNames: ['x-amz-checksum-crc32c'], decodedLength: data.length } as const;
  const good = encode([data.subarray(0, 8192), data.subarray(8192)], { signing, trailers: [['x-amz-checksum-crc32c', crc]], trailerSig: true });
  for (const how of ['one', 'tiny'] as const) {
    const r = await decode(good.body, opts, how);
    t.error(r.error, how);
    t.ok(r.out.equals(data));
    t.equal(r.dec.trailers['x-amz-checksum-crc32c'], crc);
  }
  // A forged checksum value no longer matches the trailer signature.
  const forged = Buffer.from(good.body.toString('latin1').replace(`x-amz-checksum-crc32c:${crc}`, 'x-amz-checksum-crc32c:AAAAAA=='), 'latin1');
  t.match((await decode(forged, opts)).error, { code: 'SignatureDoesNotMatch' });
  const noSig = encode([data], { signing, trailers: [['x-amz-checksum-crc32c', crc]] });
  t.match((await decode(noSig.body, opts)).error, { code: 'SignatureDoesNotMatch' });
  const wrongCrc = encode([data], { signing, trailers: [['x-amz-checksum-crc32c', 'AAAAAA==']], trailerSig: true });
  t.match((await decode(wrongCrc.body, opts)).error, { code: 'BadDigest' });
});

t.test('malformed framing is rejected without unbounded buffering', async (t) => {
  const opts = { mode: UNSIGNED_TRAILER } as const;
  t.match((await decode(Buffer.alloc(5000, 'f'), opts)).error, { code: 'InvalidRequest' }, 'size line over 4 KiB');
  t.match((await decode(Buffer.from('zz\r\nabc\r\n0\r\n\r\n'), opts)).error, { code: 'InvalidRequest' });
  t.match((await decode(Buffer.from('3\r\nabcd\r\n0\r\n\r\n'), opts)).error, { code: 'InvalidRequest' }, 'data longer than size');
  t.match((await decode(Buffer.from('3\r\nabc\r\n0\r\n\r\nextra'), opts)).error, { code: 'InvalidRequest' }, 'data after the end');
  t.match((await decode(Buffer.from('3\r\nab'), opts)).error, { code: 'IncompleteBody' });
  t.match((await decode(Buffer.alloc(0), opts)).error, { code: 'IncompleteBody' });
  const r = await decode(Buffer.from('3\r\nabc\r\n0\r\n\r\n\r\n'), opts);
  t.error(r.error);
  t.equal(r.out.toString(), 'abc');
});

t.test('large unsigned body through a slow sink keeps backpressure and bytes intact', async (t) => {
  const data = randomBytes(4 * 1024 * 1024 + 17);
  const chunks: Buffer[] = [];
  for (let p = 0; p < data.length; p += 1 << 20) chunks.push(data.subarray(p, p + (1 << 20)));
  const { body } = encode(chunks, { trailers: [['x-amz-checksum-crc64nvme', checksumOf('CRC64NVME', data)]] });
  const r = await decode(body, { mode: UNSIGNED_TRAILER, trailerNames: ['x-amz-checksum-crc64nvme'], decodedLength: data.length }, 'random');
  t.error(r.error);
  t.ok(r.out.equals(data));
});
