import t from 'tap';
import { createHash, createHmac } from 'node:crypto';
import aws4 from 'aws4';
import { SignatureV4 } from '@smithy/signature-v4';
import { canonicalQuery, canonicalUri, formatAmzDate, hmacHex, parseAmzDate, sha256Hex, signaturesEqual, signingKeyFor, verifySigV4, type AuthInput, type SecretLookup } from '../server/auth/sigv4';

// Minimal node:crypto hash for the smithy signer (the @aws-crypto packages are not installed).
type Src = string | ArrayBuffer | ArrayBufferView;
const bytes = (d: Src) => typeof d === 'string' ? d
  : ArrayBuffer.isView(d) ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : new Uint8Array(d);
class Sha256 {
  private readonly h;
  constructor(secret?: Src) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: Src): void { this.h.update(bytes(data)); }
  async digest(): Promise<Uint8Array> { return new Uint8Array(this.h.digest()); }
}

const AK = 'AKIAKILNTEST0001';
const SECRET = 'kilnSecret/With+Specials=0123456789abcdef';
const secrets: Record<string, string> = {
  [AK]: SECRET,
  AKIAIOSFODNN7EXAMPLE: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
};
const lookup: SecretLookup = async (k) => secrets[k];
const HOST = 'kiln.local:9000';
const SIGN_DATE = new Date('2026-11-22T10:20:30Z');

/** How the AWS SDK escapes a URI component (RFC 3986: also !'()*). */
const esc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
const escPath = (key: string) => key.split('/').map(esc).join('/');

function smithy(secret = SECRET, region = 'us-east-1', service = 's3') {
  return new SignatureV4({ credentials: { accessKeyId: AK, secretAccessKey: secret }, region, service, sha256: Sha256, uriEscapePath: false });
}

interface Req { method: string; path: string; query?: Record<string, string | string[]>; headers?: Record<string, string> }

function rawUrl(path: string, query: Record<string, string | string[] | null> = {}): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    for (const one of Array.isArray(v) ? v : [v]) parts.push(one === null ? esc(k) : `${esc(k)}=${esc(one)}`);
  }
  return parts.length ? `${path}?${parts.join('&')}` : path;
}

function toInput(signed: { method: string; path: string; query?: Record<string, any>; headers: Record<string, string> }, now = SIGN_DATE): AuthInput {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers)) headers[k.toLowerCase()] = String(v);
  return { method: signed.method, url: rawUrl(signed.path, signed.query ?? {}), headers, now };
}

async function smithySign(r: Req, opts: { secret?: string; region?: string; service?: string; date?: Date } = {}) {
  const s = await smithy(opts.secret, opts.region, opts.service).sign(
    { method: r.method, protocol: 'http:', hostname: 'kiln.local', port: 9000, path: r.path, query: r.query ?? {}, headers: { host: HOST, ...r.headers } },
    { signingDate: opts.date ?? SIGN_DATE },
  );
  return toInput(s as any);
}

async function smithyPresign(r: Req, expiresIn = 3600, date = SIGN_DATE, token?: string) {
  const signer = new SignatureV4({ credentials: { accessKeyId: AK, secretAccessKey: SECRET, sessionToken: token }, region: 'eu-west-3', service: 's3', sha256: Sha256, uriEscapePath: false });
  const s = await signer.presign(
    { method: r.method, protocol: 'http:', hostname: 'kiln.local', port: 9000, path: r.path, query: r.query ?? {}, headers: { host: HOST, ...r.headers } },
    { signingDate: date, expiresIn },
  );
  return toInput(s as any);
}

t.test('signing key derivation matches the AWS documentation example', async (t) => {
  const key = signingKeyFor('wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', '20120215', 'us-east-1', 'iam');
  t.equal(key.toString('hex'), 'f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d');
  t.equal(signingKeyFor('wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', '20120215', 'us-east-1', 'iam'), key, 'cached');
});

t.test('AWS S3 documentation vectors', async (t) => {
  const now = new Date('2013-05-24T00:05:00Z');
  const ctx = await verifySigV4({
    method: 'GET', url: '/test.txt', now,
    headers: {
      host: 'examplebucket.s3.amazonaws.com', range: 'bytes=0-9',
      'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      'x-amz-date': '20130524T000000Z',
      authorization: 'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    },
  }, lookup);
  t.match(ctx, { anonymous: false, accessKey: 'AKIAIOSFODNN7EXAMPLE', region: 'us-east-1', service: 's3', payload: 'SHA256', presigned: false,
    payloadSha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', scope: '20130524/us-east-1/s3/aws4_request', amzDate: '20130524T000000Z' });

  const pre = await verifySigV4({
    method: 'GET', now, headers: { host: 'examplebucket.s3.amazonaws.com' },
    url: '/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
  }, lookup);
  t.match(pre, { presigned: true, payload: 'UNSIGNED-PAYLOAD', accessKey: 'AKIAIOSFODNN7EXAMPLE' });
  await t.rejects(verifySigV4({ ...{ method: 'GET', headers: { host: 'examplebucket.s3.amazonaws.com' } }, now: new Date('2013-05-25T00:00:01Z'),
    url: '/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
  }, lookup), { code: 'AccessDenied', message: 'Request has expired' });
});

const KEYS = [
  'plain.txt', 'dir/sub dir/file with spaces.bin', 'ünïcødé/日本語/emoji-🎉.dat', "special !'()*+,;=:@$&[]~%#?.txt",
  'a/b//c/', 'dots/./../x', 'tilde~_-.', 'percent%2Fliteral',
];

t.test('header auth against @smithy/signature-v4 for awkward keys and queries', async (t) => {
  for (const key of KEYS) {
    const input = await smithySign({ method: 'GET', path: '/bucket/' + escPath(key), query: { 'list-type': '2', prefix: 'a b/ü', 'max-keys': '7', empty: '', multi: ['z', 'a'] } });
    const ctx = await verifySigV4(input, lookup);
    t.equal(ctx.accessKey, AK, key);
    t.equal(ctx.payload, 'SHA256');
    t.equal(ctx.payloadSha256, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  }
});

t.test('header auth: payload modes, regions, s3express, session token', async (t) => {
  const body = Buffer.from('hello kiln');
  const sha = createHash('sha256').update(body).digest('hex');
  let ctx = await verifySigV4(await smithySign({ method: 'PUT', path: '/b/k', headers: { 'x-amz-content-sha256': sha, 'content-length': '10' } }), lookup);
  t.match(ctx, { payload: 'SHA256', payloadSha256: sha });
  ctx = await verifySigV4(await smithySign({ method: 'PUT', path: '/b/k', headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } }), lookup);
  t.equal(ctx.payload, 'UNSIGNED-PAYLOAD');
  ctx = await verifySigV4(await smithySign({ method: 'PUT', path: '/b/k', headers: { 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': '10' } }), lookup);
  t.match(ctx, { payload: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', amzDate: '20261122T102030Z', scope: '20261122/us-east-1/s3/aws4_request' });
  t.match(ctx.seedSignature, /^[0-9a-f]{64}$/);
  t.ok(ctx.signingKey.equals(signingKeyFor(SECRET, '20261122', 'us-east-1', 's3')));
  ctx = await verifySigV4(await smithySign({ method: 'GET', path: '/b/k' }, { region: 'kiln-local-1', service: 's3express' }), lookup);
  t.match(ctx, { region: 'kiln-local-1', service: 's3express' });
  ctx = await verifySigV4(await smithySign({ method: 'GET', path: '/b/k', headers: { 'x-amz-s3session-token': 'tok123' } }), lookup);
  t.equal(ctx.sessionToken, 'tok123');
  // Multi-valued headers are joined with ',' after trimming and collapsing whitespace.
  const input = await smithySign({ method: 'GET', path: '/b/k', headers: { 'x-amz-meta-a': '  one   two ' } });
  input.headers['x-amz-meta-a'] = 'one two';
  await t.resolves(verifySigV4(input, lookup));
  // A repeated header signs as 'v1,v2'; Node's joined 'v1, v2' cannot match, rawHeaders restores the pieces.
  const dup = await smithySign({ method: 'GET', path: '/b/k', headers: { 'x-amz-meta-d': 'v1,v2' } });
  dup.headers['x-amz-meta-d'] = 'v1, v2';
  await t.rejects(verifySigV4(dup, lookup), { code: 'SignatureDoesNotMatch' });
  dup.rawHeaders = Object.entries(dup.headers).flatMap(([k, v]) => (k === 'x-amz-meta-d' ? [k, 'v1', 'X-Amz-Meta-D', ' v2'] : [k, String(v)]));
  await t.resolves(verifySigV4(dup, lookup));
});

t.test('header auth against aws4', async (t) => {
  for (const path of ['/bucket/key.txt', '/bucket/a%20b/%C3%BC%2B.txt?tagging', '/bucket/?list-type=2&prefix=x%2Fy&delimiter=%2F&start-after=']) {
    const opts: any = { host: HOST, path, method: 'GET', service: 's3', region: 'us-west-2', headers: { 'X-Amz-Meta-Note': 'a  b' } };
    aws4.sign(opts, { accessKeyId: AK, secretAccessKey: SECRET });
    const headers: Record<string, string> = { host: HOST };
    for (const [k, v] of Object.entries(opts.headers)) headers[k.toLowerCase()] = String(v);
    const ctx = await verifySigV4({ method: 'GET', url: opts.path, headers }, lookup);
    t.equal(ctx.region, 'us-west-2', path);
  }
});

t.test('presigned URLs from @smithy/signature-v4 and aws4', async (t) => {
  for (const key of KEYS) {
    const input = await smithyPresign({ method: 'PUT', path: '/bucket/' + escPath(key), query: { partNumber: '3', uploadId: 'x/y+z' }, headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
    const ctx = await verifySigV4(input, lookup);
    t.match(ctx, { presigned: true, payload: 'UNSIGNED-PAYLOAD', region: 'eu-west-3' }, key);
  }
  // Without a content-sha header the raw smithy presigner signs the empty-body hash; the caller must then check the body.
  const g = await verifySigV4(await smithyPresign({ method: 'GET', path: '/bucket/k' }), lookup);
  t.match(g, { payload: 'SHA256', payloadSha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' });
  const tok = await verifySigV4(await smithyPresign({ method: 'GET', path: '/bucket/k', headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } }, 60, SIGN_DATE, 'sess-tok'), lookup);
  t.equal(tok.sessionToken, 'sess-tok');

  const opts: any = { host: HOST, path: '/bucket/some%20key.txt?versionId=abc', method: 'GET', service: 's3', region: 'us-east-1', signQuery: true };
  aws4.sign(opts, { accessKeyId: AK, secretAccessKey: SECRET });
  const ctx = await verifySigV4({ method: 'GET', url: opts.path, headers: { host: HOST } }, lookup);
  t.match(ctx, { presigned: true, payload: 'UNSIGNED-PAYLOAD' });
});

t.test('presigned URL time window and parameters', async (t) => {
  const input = await smithyPresign({ method: 'GET', path: '/b/k', headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } }, 600);
  await t.resolves(verifySigV4({ ...input, now: new Date(SIGN_DATE.getTime() + 599_000) }, lookup));
  await t.rejects(verifySigV4({ ...input, now: new Date(SIGN_DATE.getTime() + 601_000) }, lookup), { code: 'AccessDenied', message: 'Request has expired' });
  await t.rejects(verifySigV4({ ...input, now: new Date(SIGN_DATE.getTime() - 3_600_000) }, lookup), { code: 'AccessDenied' });
  await t.rejects(verifySigV4({ ...input, url: input.url.replace('X-Amz-Expires=600', 'X-Amz-Expires=604801') }, lookup), { code: 'AccessDenied' });
  await t.rejects(verifySigV4({ ...input, url: input.url.replace('X-Amz-Expires=600', 'X-Amz-Expires=601') }, lookup), { code: 'SignatureDoesNotMatch' });
  await t.rejects(verifySigV4({ ...input, url: input.url.replace('X-Amz-Expires=600', 'X-Amz-Expires=-1') }, lookup), { code: 'AccessDenied' });
  await t.rejects(verifySigV4({ ...input, url: input.url.replace('AWS4-HMAC-SHA256', 'AWS4-HMAC-SHA1') }, lookup), { code: 'AuthorizationQueryParametersError' });
  await t.rejects(verifySigV4({ ...input, url: input.url.replace(/X-Amz-Credential=[^&]*/, 'X-Amz-Credential=garbage') }, lookup), { code: 'AuthorizationQueryParametersError' });
  await t.rejects(verifySigV4({ ...input, url: input.url + '&extra=1' }, lookup), { code: 'SignatureDoesNotMatch' });
  await t.rejects(verifySigV4({ ...input, headers: { ...input.headers, authorization: 'AWS4-HMAC-SHA256 x' } }, lookup), { code: 'InvalidArgument' });
});

t.test('failures', async (t) => {
  const input = await smithySign({ method: 'GET', path: '/bucket/key' });
  await t.rejects(verifySigV4(await smithySign({ method: 'GET', path: '/bucket/key' }, { secret: 'wrong' }), lookup), { code: 'SignatureDoesNotMatch' });
  await t.rejects(verifySigV4(input, async () => undefined), { code: 'InvalidAccessKeyId' });
  await t.rejects(verifySigV4({ ...input, now: new Date(SIGN_DATE.getTime() + 16 * 60_000) }, lookup), { code: 'RequestTimeTooSkewed' });
  await t.rejects(verifySigV4({ ...input, now: new Date(SIGN_DATE.getTime() - 16 * 60_000) }, lookup), { code: 'RequestTimeTooSkewed' });
  await t.resolves(verifySigV4({ ...input, now: new Date(SIGN_DATE.getTime() + 14 * 60_000) }, lookup));
  await t.rejects(verifySigV4({ ...input, url: '/bucket/key2' }, lookup), { code: 'SignatureDoesNotMatch' });
  await t.rejects(verifySigV4({ ...input, url: '/bucket/key?acl' }, lookup), { code: 'SignatureDoesNotMatch' });
  await t.rejects(verifySigV4({ ...input, method: 'DELETE' }, lookup), { code: 'SignatureDoesNotMatch' });
  await t.rejects(verifySigV4({ ...input, headers: { ...input.headers, host: 'evil.example' } }, lookup), { code: 'SignatureDoesNotMatch' });

  const auth = input.headers.authorization as string;
  const sig = auth.slice(-64);
  const flipped = auth.slice(0, -1) + (auth.endsWith('0') ? '1' : '0');
  await t.rejects(verifySigV4({ ...input, headers: { ...input.headers, authorization: flipped } }, lookup), { code: 'SignatureDoesNotMatch' });
  // Extra whitespace and commas between components are tolerated; upper-case hex too.
  const spaced = auth.replace('AWS4-HMAC-SHA256 ', 'AWS4-HMAC-SHA256   ').replace(/, ?/g, ' ,, ').replace(sig, sig.toUpperCase());
  await t.resolves(verifySigV4({ ...input, headers: { ...input.headers, authorization: spaced } }, lookup));

  const withHeaders = (h: Record<string, string | undefined>) => verifySigV4({ ...input, headers: { ...input.headers, ...h } }, lookup);
  await t.rejects(withHeaders({ 'x-amz-content-sha256': undefined }), { code: 'InvalidArgument' });
  await t.rejects(withHeaders({ 'x-amz-content-sha256': 'STREAMING-BOGUS' }), { code: 'InvalidArgument' });
  await t.rejects(withHeaders({ authorization: auth.replace('/s3/', '/ec2/') }), { code: 'AuthorizationHeaderMalformed' });
  await t.rejects(withHeaders({ authorization: auth.replace('20261122/', '20261121/') }), { code: 'AuthorizationHeaderMalformed' });
  await t.rejects(withHeaders({ authorization: auth.replace('aws4_request', 'aws5_request') }), { code: 'AuthorizationHeaderMalformed' });
  await t.rejects(withHeaders({ authorization: auth.replace(/SignedHeaders=[^,]*/, 'SignedHeaders=x-amz-date') }), { code: 'AuthorizationHeaderMalformed' });
  await t.rejects(withHeaders({ authorization: auth.replace(/Signature=.*/, '') }), { code: 'AuthorizationHeaderMalformed' });
  await t.rejects(withHeaders({ authorization: auth.replace(/Credential=/, 'Cred=') }), { code: 'AuthorizationHeaderMalformed' });
  await t.rejects(withHeaders({ authorization: 'AWS AKIAKILNTEST0001:abc=' }), { code: 'InvalidRequest' });
  await t.rejects(withHeaders({ 'x-amz-date': 'yesterday' }), { code: 'AccessDenied' });
  await t.rejects(withHeaders({ 'x-amz-date': '20261131T102030Z' }), { code: 'AccessDenied' }, 'a day the month does not have');
  // The parsed Credential/SignedHeaders prefix is reused across requests; the signature still decides.
  for (let i = 0; i < 3; i++) await t.resolves(verifySigV4(input, lookup), 'the same header again');
  await t.rejects(withHeaders({ authorization: auth.slice(0, -1) }), { code: 'AuthorizationHeaderMalformed' }, 'a 63-digit signature after a known prefix');
  await t.rejects(withHeaders({ authorization: `${auth}, Signature=${sig}` }), { code: 'AuthorizationHeaderMalformed' }, 'two signatures');
  await t.rejects(withHeaders({ authorization: auth.replace(sig, 'g'.repeat(64)) }), { code: 'AuthorizationHeaderMalformed' });
});

t.test('x-amz-date parsing', async (t) => {
  t.same(parseAmzDate('20261122T102030Z'), new Date('2026-11-22T10:20:30Z'));
  t.same(parseAmzDate('20240229T235959Z'), new Date('2024-02-29T23:59:59Z'), 'a leap day');
  for (const bad of ['20250229T000000Z', '20261131T000000Z', '20261322T000000Z', '20261100T000000Z', '20261122T240000Z',
    '20261122T106000Z', '20261122T102060Z', '20261122T102030', '2026-11-22T10:20:30Z', '20261122T102030Z ']) t.equal(parseAmzDate(bad), undefined, bad);
  t.equal(formatAmzDate(new Date('2026-01-02T03:04:05.678Z')), '20260102T030405Z');
});

t.test('anonymous requests', async (t) => {
  const ctx = await verifySigV4({ method: 'GET', url: '/bucket/key?list-type=2', headers: { host: HOST } }, lookup);
  t.match(ctx, { anonymous: true, presigned: false, payload: 'UNSIGNED-PAYLOAD' });
  await t.rejects(verifySigV4({ method: 'GET', url: '/b/k?AWSAccessKeyId=x&Signature=y&Expires=1', headers: { host: HOST } }, lookup), { code: 'InvalidRequest' });
  await t.rejects(verifySigV4({ method: 'PUT', url: '/b/k', headers: { host: HOST, 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD' } }, lookup), { code: 'AccessDenied' });
});

t.test('canonicalisation helpers', async (t) => {
  t.equal(canonicalUri('/b/a%20b/%c3%bc+!'), '/b/a%20b/%C3%BC%2B%21');
  t.equal(canonicalUri('/b/x%2Fy'), '/b/x%2Fy', 'an encoded slash stays encoded');
  t.equal(canonicalUri('/b/100%'), '/b/100%25', 'a stray % is taken literally');
  t.equal(canonicalUri(''), '/');
  t.equal(canonicalUri('/b/plain-key_1.txt~/x'), '/b/plain-key_1.txt~/x', 'unreserved characters only');
  t.equal(canonicalUri('/b//k'), '/b//k', 'empty segments kept');
  t.equal(canonicalQuery('uploads', false), 'uploads=');
  t.equal(canonicalQuery('b=2&a=z&a=y&a-b=1&c=x+y', false), 'a=y&a=z&a-b=1&b=2&c=x%20y');
  t.equal(canonicalQuery('X-Amz-Signature=abc&z=1', true), 'z=1');
});

t.test('HMAC and hash helpers agree with node:crypto', async (t) => {
  for (const keyLen of [0, 1, 32, 63, 64, 65, 100]) {
    const key = Buffer.alloc(keyLen, 0).map((_, i) => (i * 37 + keyLen) & 255) as Buffer;
    for (const data of ['', 'x', 'AWS4-HMAC-SHA256\n20261122T102030Z\nscope\n' + 'ab'.repeat(32), 'ünïcödé \u{1F600}', 'y'.repeat(5000)]) {
      t.equal(hmacHex(key, data), createHmac('sha256', key).update(data, 'utf8').digest('hex'), `key ${keyLen} bytes, data ${data.length} chars`);
      t.equal(hmacHex(key, data), hmacHex(key, data), 'the same again (pads cached)');
    }
  }
  t.equal(sha256Hex('abc'), createHash('sha256').update('abc').digest('hex'));
  t.equal(sha256Hex(Buffer.from('abc')), createHash('sha256').update('abc').digest('hex'));
  const sig = 'a'.repeat(63) + 'f';
  t.ok(signaturesEqual(sig, sig.toUpperCase()), 'case-insensitive');
  t.notOk(signaturesEqual(sig, 'a'.repeat(64)));
  t.notOk(signaturesEqual(sig, sig.slice(1)), 'length differs');
  t.notOk(signaturesEqual('0'.repeat(64), '\u0010'.repeat(64)), 'no folding of other characters');
});
