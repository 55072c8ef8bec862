// Server-side AWS Signature Version 4 verification with the S3 canonicalisation rules
// (paths encoded once, never normalised). Header and presigned-query auth share one
// canonical-request builder; only the parsing of the auth parameters differs.

import * as crypto from 'node:crypto';
import { createHash, createHmac } from 'node:crypto';
import { S3Error, type S3ErrorCode } from '../errors';

export interface SecretLookup { (accessKey: string): Promise<string | undefined> }

export interface AuthInput {
  method: string;
  /** raw path+query exactly as received, e.g. req.raw.url */
  url: string;
  /** lower-cased names as Node gives them */
  headers: Record<string, string | string[] | undefined>;
  /** req.raw.rawHeaders, optional: Node joins repeated headers with ', ' while SigV4 joins with ',' */
  rawHeaders?: string[];
  now?: Date;
}

export type PayloadMode = 'UNSIGNED-PAYLOAD' | 'SHA256' | 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD'
  | 'STREAMING-UNSIGNED-PAYLOAD-TRAILER' | 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER';

export interface AuthContext {
  anonymous: boolean; accessKey: string; region: string; service: string;
  signingKey: Buffer; seedSignature: string; amzDate: string; scope: string;
  payload: PayloadMode;
  /** hex, when payload === 'SHA256': caller must verify the body hash */
  payloadSha256?: string;
  presigned: boolean;
  /** x-amz-s3session-token or x-amz-security-token value if present (caller validates) */
  sessionToken?: string;
}

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
export const MAX_SKEW_MS = 15 * 60 * 1000;
export const MAX_PRESIGN_EXPIRES = 604800;
const STREAMING_MODES = new Set<string>(['STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
  'STREAMING-UNSIGNED-PAYLOAD-TRAILER', 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER']);
const HEX64 = /^[0-9a-fA-F]{64}$/;

// ---- encoding helpers (exported for tests and for chunk/trailer signing) ----

const UNRESERVED = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~') UNRESERVED[c.charCodeAt(0)] = 1;
const HEX = '0123456789ABCDEF';

/** AWS URI encoding of raw bytes: unreserved kept, everything else %XX (uppercase). */
export function awsEncodeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b < 128 && UNRESERVED[b] ? String.fromCharCode(b) : '%' + HEX[b >> 4] + HEX[b & 15];
  return out;
}

export function awsEncode(s: string): string {
  return awsEncodeBytes(Buffer.from(s, 'utf8'));
}

/**
 * Percent-decodes to bytes rather than a string, so malformed escapes and non-UTF-8 bytes
 * survive decode+encode unchanged instead of throwing or turning into U+FFFD.
 */
export function percentDecode(s: string, plusIsSpace: boolean): Buffer {
  if (!s.includes('%') && !(plusIsSpace && s.includes('+'))) return Buffer.from(s, 'utf8');
  const parts: Buffer[] = [];
  let lit = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === '%' && i + 2 < s.length && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      if (lit) { parts.push(Buffer.from(lit, 'utf8')); lit = ''; }
      parts.push(Buffer.from([parseInt(s.slice(i + 1, i + 3), 16)]));
      i += 2;
    } else lit += plusIsSpace && ch === '+' ? ' ' : ch;
  }
  if (lit) parts.push(Buffer.from(lit, 'utf8'));
  return Buffer.concat(parts);
}

// A path of unreserved characters and '/' is its own canonical form (most keys, every bench key).
const PLAIN_PATH = /^[A-Za-z0-9\-_.~/]+$/;

/** S3 canonical URI: each segment decoded then encoded once; '/' (and so empty segments) kept. */
export function canonicalUri(rawPath: string): string {
  if (rawPath === '') return '/';
  if (PLAIN_PATH.test(rawPath)) return rawPath;
  return rawPath.split('/').map((seg) => awsEncodeBytes(percentDecode(seg, false))).join('/');
}

/** Query pieces decoded to bytes; '+' is a space here (form encoding, and how aws4 and Go clients read it). */
function splitQuery(rawQuery: string): Array<[Buffer, Buffer]> {
  return rawQuery.split('&').filter((p) => p !== '').map((piece) => {
    const eq = piece.indexOf('=');
    return [percentDecode(eq < 0 ? piece : piece.slice(0, eq), true), percentDecode(eq < 0 ? '' : piece.slice(eq + 1), true)];
  });
}

export function parseQuery(rawQuery: string): Array<[string, string]> {
  if (rawQuery === '') return [];
  return splitQuery(rawQuery).map(([k, v]) => [k.toString('utf8'), v.toString('utf8')]);
}

/** Sorted by encoded key, then encoded value (not by the joined 'k=v', which orders 'a-b' before 'a'). */
export function canonicalQuery(rawQuery: string, skipSignature: boolean): string {
  if (rawQuery === '') return '';
  const pairs = splitQuery(rawQuery).map(([k, v]): [string, string] => [awsEncodeBytes(k), awsEncodeBytes(v)])
    .filter(([k]) => !(skipSignature && k === 'X-Amz-Signature'));
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** Every value of each header as sent (repeated headers in order), by lower-case name. */
function rawHeaderMap(raw: string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const vals = m.get(name);
    if (vals) vals.push(raw[i + 1]);
    else m.set(name, [raw[i + 1]]);
  }
  return m;
}

function header(input: AuthInput, name: string): string | undefined {
  const v = input.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Node hands header values over as latin1 strings; clients sign the UTF-8 text they sent. Decode
 * the bytes as UTF-8 when they are valid UTF-8, else keep the latin1 reading (a client that sent
 * latin1 bytes signed those characters).
 */
export function headerText(v: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/[^\x00-\x7f]/.test(v)) return v;
  const u = Buffer.from(v, 'latin1').toString('utf8');
  return u.includes('\uFFFD') ? v : u;
}

// Values without runs of whitespace (nearly all) need no collapsing.
const SPACE_RUN = /\s\s|[\t\n\r\f\v]/;

function canonicalValue(v: string): string {
  const t = headerText(v).trim();
  return SPACE_RUN.test(t) ? t.replace(/\s+/g, ' ') : t;
}

export function canonicalHeaders(input: AuthInput, signed: string[]): string {
  const raw = input.rawHeaders ? rawHeaderMap(input.rawHeaders) : undefined;
  let out = '';
  for (const h of signed) {
    const v = input.headers[h];
    const vals = raw ? raw.get(h) ?? [] : v === undefined ? [] : Array.isArray(v) ? v : [v];
    out += `${h}:${vals.length === 1 ? canonicalValue(vals[0]) : vals.map(canonicalValue).join(',')}\n`;
  }
  return out;
}

// crypto.hash (Node >= 20.12) hashes in one call, without a Hash object to build and collect.
const oneShot = (crypto as unknown as { hash?: (alg: string, data: string | Buffer, enc: 'hex' | 'buffer' | 'latin1') => string | Buffer }).hash;

export function sha256Hex(data: string | Buffer): string {
  return oneShot ? oneShot('sha256', data, 'hex') as string : createHash('sha256').update(data).digest('hex');
}

// HMAC-SHA256 (RFC 2104) as two one-shot hashes over the key's pads, kept per signing key (the
// same Buffer all day, from signingKeyFor): one per request and per aws-chunked chunk, where
// building an Hmac object was the largest single cost of verifying a signature.
const pads = new WeakMap<Buffer, [Buffer, Buffer]>();

// Scratch for the inner and outer messages: hashing is synchronous, so one pair serves every call.
let innerMsg = Buffer.allocUnsafe(64 + 1024);
const outerMsg = Buffer.allocUnsafe(96);

export function hmacHex(key: Buffer, data: string): string {
  if (!oneShot || key.length > 64) return createHmac('sha256', key).update(data, 'utf8').digest('hex');
  let p = pads.get(key);
  if (!p) {
    const inner = Buffer.alloc(64, 0x36), outer = Buffer.alloc(64, 0x5c);
    for (let i = 0; i < key.length; i++) { inner[i] ^= key[i]; outer[i] ^= key[i]; }
    pads.set(key, p = [inner, outer]);
  }
  const len = 64 + Buffer.byteLength(data, 'utf8');
  if (len > innerMsg.length) innerMsg = Buffer.allocUnsafe(len);
  p[0].copy(innerMsg, 0);
  innerMsg.write(data, 64, 'utf8');
  // 'latin1' out, then written: a 'buffer' result costs a new Buffer per call (~0.6 us here).
  const h = oneShot('sha256', innerMsg.subarray(0, len), 'latin1') as string;
  p[1].copy(outerMsg, 0);
  outerMsg.write(h, 64, 'latin1');
  return oneShot('sha256', outerMsg, 'hex') as string;
}

export function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

// Derivation costs four HMACs; clients reuse one key for a whole day, so a small cache pays.
const KEY_CACHE_MAX = 256;
const keyCache = new Map<string, Buffer>();

let lastKey: { secret: string; date: string; region: string; service: string; key: Buffer } = { secret: '', date: '', region: '', service: '', key: Buffer.alloc(0) };

export function signingKeyFor(secret: string, date: string, region: string, service: string): Buffer {
  const l = lastKey;
  if (l.secret === secret && l.date === date && l.region === region && l.service === service) return l.key;
  const cacheKey = `${secret}\0${date}\0${region}\0${service}`;
  const hit = keyCache.get(cacheKey);
  if (hit) { lastKey = { secret, date, region, service, key: hit }; return hit; }
  const key = hmac(hmac(hmac(hmac('AWS4' + secret, date), region), service), 'aws4_request');
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value as string);
  keyCache.set(cacheKey, key);
  return key;
}

export function stringToSign(amzDate: string, scope: string, canonicalRequest: string): string {
  return `${ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonicalRequest)}`;
}

/** Constant-time comparison of two hex signatures, case-insensitive: every character is looked at whatever differs. */
export function signaturesEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  const x = a.toLowerCase(), y = b.toLowerCase();
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x.charCodeAt(i) ^ y.charCodeAt(i);
  return diff === 0;
}

const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

// Requests arriving in the same second carry the same x-amz-date.
let lastAmz: { s: string; d: Date } = { s: '', d: new Date(0) };

/** ISO8601 basic 'YYYYMMDDTHHMMSSZ' → Date, or undefined when malformed or not a real time. */
export function parseAmzDate(s: string): Date | undefined {
  if (s === lastAmz.s) return new Date(lastAmz.d.getTime());
  const m = AMZ_DATE.exec(s);
  if (!m) return undefined;
  const [y, mo, day, h, mi, sec] = [+m[1], +m[2], +m[3], +m[4], +m[5], +m[6]];
  const d = new Date(Date.UTC(y, mo - 1, day, h, mi, sec));
  // Date.UTC rolls 31 April over into May: a field out of range shows as a different date.
  if (d.getUTCFullYear() !== y || d.getUTCMonth() !== mo - 1 || d.getUTCDate() !== day || h > 23 || mi > 59 || sec > 59) return undefined;
  lastAmz = { s, d: new Date(d.getTime()) };
  return d;
}

export function formatAmzDate(d: Date): string {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

// ---- verification ----

interface AuthParams {
  accessKey: string; date: string; region: string; service: string;
  signedHeaders: string[]; signature: string;
}

/** Credential=AK/yyyymmdd/region/service/aws4_request; the key itself may not contain '/' in AWS, but split from the right anyway. */
function parseCredential(cred: string, bad: (m: string) => S3Error): Omit<AuthParams, 'signedHeaders' | 'signature'> {
  const parts = cred.split('/');
  if (parts.length < 5) throw bad(`the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`);
  const [date, region, service, term] = parts.slice(-4);
  const accessKey = parts.slice(0, -4).join('/');
  if (!accessKey) throw bad('the Credential is missing an access key id.');
  if (!/^\d{8}$/.test(date)) throw bad(`Invalid credential date "${date}". This date is not the same as X-Amz-Date.`);
  if (!region) throw bad('the region is empty.');
  if (service !== 's3' && service !== 's3express') throw bad(`incorrect service "${service}". This endpoint belongs to "s3".`);
  if (term !== 'aws4_request') throw bad(`incorrect terminal "${term}". This endpoint uses "aws4_request".`);
  return { accessKey, date, region, service };
}

function parseSignedHeaders(v: string, bad: (m: string) => S3Error): string[] {
  const list = v.split(';').map((h) => h.trim().toLowerCase());
  if (list.some((h) => h === '')) throw bad('SignedHeaders contains an empty header name.');
  if (!list.includes('host')) throw bad("'Host' must be a 'SignedHeader' in the AWS Authorization.");
  return list;
}

// Clients send the same "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., " before each new
// Signature for a whole day: what was parsed from that prefix is kept (bounded), so a request
// only checks its signature's form. Only prefixes that parsed cleanly are kept.
const AUTH_CACHE_MAX = 1024;
const authCache = new Map<string, Omit<AuthParams, 'signature'>>();

function parseAuthorizationHeader(value: string): AuthParams {
  const at = value.lastIndexOf('Signature=');
  const sig = at > 0 ? value.slice(at + 10) : '';
  const prefix = at > 0 ? value.slice(0, at) : '';
  const hit = prefix ? authCache.get(prefix) : undefined;
  if (hit && HEX64.test(sig)) {
    return { accessKey: hit.accessKey, date: hit.date, region: hit.region, service: hit.service, signedHeaders: hit.signedHeaders, signature: sig.toLowerCase() };
  }
  const parsed = parseAuthorizationFields(value);
  if (prefix && sig === parsed.signature) {
    if (authCache.size >= AUTH_CACHE_MAX) authCache.delete(authCache.keys().next().value as string);
    const { signature: _, ...rest } = parsed;
    authCache.set(prefix, rest);
  }
  return parsed;
}

function parseAuthorizationFields(value: string): AuthParams {
  const bad = (m: string) => new S3Error('AuthorizationHeaderMalformed', `The authorization header is malformed; ${m}`);
  const trimmed = value.trim();
  const sp = trimmed.search(/\s/);
  const algorithm = sp < 0 ? trimmed : trimmed.slice(0, sp);
  if (algorithm !== ALGORITHM) {
    throw new S3Error('InvalidRequest', 'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.');
  }
  const fields = new Map<string, string>();
  for (const tok of trimmed.slice(algorithm.length).split(/[\s,]+/)) {
    if (tok === '') continue;
    const eq = tok.indexOf('=');
    if (eq <= 0) throw bad(`unexpected component "${tok}".`);
    const name = tok.slice(0, eq);
    if (fields.has(name)) throw bad(`duplicate component "${name}".`);
    fields.set(name, tok.slice(eq + 1));
  }
  const cred = fields.get('Credential'), sh = fields.get('SignedHeaders'), sig = fields.get('Signature');
  if (cred === undefined) throw bad('missing Credential.');
  if (sh === undefined) throw bad('missing SignedHeaders.');
  if (sig === undefined || !HEX64.test(sig)) throw bad('missing or invalid Signature.');
  return { ...parseCredential(cred, bad), signedHeaders: parseSignedHeaders(sh, bad), signature: sig.toLowerCase() };
}

function fail(code: S3ErrorCode, message?: string, extra?: Record<string, string>): never {
  throw new S3Error(code, message, extra);
}

function payloadFrom(value: string, what: string): { payload: PayloadMode; sha?: string } {
  if (value === 'UNSIGNED-PAYLOAD') return { payload: value };
  if (STREAMING_MODES.has(value)) return { payload: value as PayloadMode };
  if (HEX64.test(value)) return { payload: 'SHA256', sha: value.toLowerCase() };
  return fail('InvalidArgument', `${what} must be UNSIGNED-PAYLOAD, STREAMING-* or a SHA256 hex digest.`, { ArgumentName: 'x-amz-content-sha256', ArgumentValue: value });
}

interface Parsed { params: AuthParams; amzDate: string; payloadLine: string; p: { payload: PayloadMode; sha?: string }; emptyFallback: boolean }

function parseHeaderAuth(input: AuthInput, authHeader: string, now: Date): Parsed {
  const params = parseAuthorizationHeader(authHeader);
  const xDate = header(input, 'x-amz-date');
  const httpDate = header(input, 'date');
  const d = xDate !== undefined ? parseAmzDate(xDate) : httpDate !== undefined ? new Date(httpDate) : undefined;
  if (!d || Number.isNaN(d.getTime())) fail('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
  // A valid x-amz-date is already in the basic format (parseAmzDate checked every field).
  const amzDate = xDate !== undefined ? xDate : formatAmzDate(d);
  if (Math.abs(now.getTime() - d.getTime()) > MAX_SKEW_MS) {
    fail('RequestTimeTooSkewed', undefined, { RequestTime: amzDate, ServerTime: now.toISOString(), MaxAllowedSkewMilliseconds: String(MAX_SKEW_MS) });
  }
  if (params.date !== amzDate.slice(0, 8)) {
    fail('AuthorizationHeaderMalformed', `The authorization header is malformed; Invalid credential date "${params.date}". This date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`);
  }
  const contentSha = header(input, 'x-amz-content-sha256');
  if (contentSha === undefined) fail('InvalidArgument', 'Missing required header for this request: x-amz-content-sha256', { ArgumentName: 'x-amz-content-sha256' });
  return { params, amzDate, payloadLine: contentSha, p: payloadFrom(contentSha, 'x-amz-content-sha256'), emptyFallback: false };
}

function parsePresignedAuth(input: AuthInput, query: Array<[string, string]>, now: Date): Parsed {
  const bad = (m: string) => new S3Error('AuthorizationQueryParametersError', m);
  const one = (name: string): string => {
    const v = query.filter(([k]) => k === name);
    if (v.length !== 1) throw bad(`Query-string authentication version 4 requires exactly one ${name} parameter.`);
    return v[0][1];
  };
  if (one('X-Amz-Algorithm') !== ALGORITHM) throw bad('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
  const cred = parseCredential(one('X-Amz-Credential'), (m) => bad(`Error parsing the X-Amz-Credential parameter; ${m}`));
  const sig = one('X-Amz-Signature');
  if (!HEX64.test(sig)) throw bad('X-Amz-Signature must be a 64-character hex string.');
  const params = { ...cred, signedHeaders: parseSignedHeaders(one('X-Amz-SignedHeaders'), bad), signature: sig.toLowerCase() };
  const amzDate = one('X-Amz-Date');
  const d = parseAmzDate(amzDate);
  if (!d) throw bad("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
  const expiresRaw = one('X-Amz-Expires');
  if (!/^-?\d{1,9}$/.test(expiresRaw)) throw bad('X-Amz-Expires should be a number');
  const expires = Number(expiresRaw);
  if (expires > MAX_PRESIGN_EXPIRES) fail('AccessDenied', 'X-Amz-Expires must be less than a week (in seconds) that is 604800');
  if (params.date !== amzDate.slice(0, 8)) throw bad(`Invalid credential date "${params.date}". This date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`);
  // A signer's clock may run a little ahead, so "not yet valid" allows the same skew as header auth.
  if (d.getTime() - now.getTime() > MAX_SKEW_MS) fail('AccessDenied', 'Request is not valid yet');
  if (now.getTime() > d.getTime() + expires * 1000) {
    fail('AccessDenied', 'Request has expired', { 'X-Amz-Expires': expiresRaw, Expires: new Date(d.getTime() + expires * 1000).toISOString(), ServerTime: now.toISOString() });
  }
  // Presigned URLs normally sign UNSIGNED-PAYLOAD; a client may pin a hash via the (hoisted) query parameter or header.
  const pinned = query.find(([k]) => k.toLowerCase() === 'x-amz-content-sha256')?.[1] ?? header(input, 'x-amz-content-sha256');
  const payloadLine = pinned ?? 'UNSIGNED-PAYLOAD';
  // Raw SDK presigners sign the empty-body hash when given no header; accept that, with the hash left for the caller to check.
  return { params, amzDate, payloadLine, p: payloadFrom(payloadLine, 'X-Amz-Content-Sha256'), emptyFallback: pinned === undefined };
}

export async function verifySigV4(input: AuthInput, lookup: SecretLookup): Promise<AuthContext> {
  const q = input.url.indexOf('?');
  const rawPath = q < 0 ? input.url : input.url.slice(0, q);
  const rawQuery = q < 0 ? '' : input.url.slice(q + 1);
  const query = parseQuery(rawQuery);
  const authHeader = header(input, 'authorization');
  const isPresigned = query.some(([k]) => k === 'X-Amz-Algorithm' || k === 'X-Amz-Credential' || k === 'X-Amz-Signature');
  const now = input.now ?? new Date();
  const sessionToken = header(input, 'x-amz-s3session-token') ?? header(input, 'x-amz-security-token')
    ?? query.find(([k]) => k === 'X-Amz-Security-Token')?.[1];

  if (authHeader !== undefined && isPresigned) {
    fail('InvalidArgument', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified');
  }
  if (authHeader === undefined && !isPresigned) {
    if (query.some(([k]) => k === 'AWSAccessKeyId' || k === 'Signature')) {
      fail('InvalidRequest', 'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.');
    }
    const contentSha = header(input, 'x-amz-content-sha256');
    const p = contentSha === undefined ? { payload: 'UNSIGNED-PAYLOAD' as const, sha: undefined } : payloadFrom(contentSha, 'x-amz-content-sha256');
    if (p.payload.startsWith('STREAMING-AWS4-HMAC')) fail('AccessDenied', 'A signed streaming payload requires a signed request.');
    return {
      anonymous: true, accessKey: '', region: '', service: 's3', signingKey: Buffer.alloc(0), seedSignature: '',
      amzDate: '', scope: '', payload: p.payload, payloadSha256: p.sha, presigned: false, sessionToken,
    };
  }

  const { params, amzDate, payloadLine, emptyFallback, p: parsedPayload } = authHeader !== undefined
    ? parseHeaderAuth(input, authHeader, now) : parsePresignedAuth(input, query, now);
  let p = parsedPayload;
  const secret = await lookup(params.accessKey);
  if (secret === undefined) fail('InvalidAccessKeyId', undefined, { AWSAccessKeyId: params.accessKey });
  const scope = `${params.date}/${params.region}/${params.service}/aws4_request`;
  const signingKey = signingKeyFor(secret, params.date, params.region, params.service);
  const head = `${input.method.toUpperCase()}\n${canonicalUri(rawPath)}\n${canonicalQuery(rawQuery, isPresigned)}\n`
    + `${canonicalHeaders(input, params.signedHeaders)}\n${params.signedHeaders.join(';')}\n`;
  const check = (payload: string) => {
    const sts = stringToSign(amzDate, scope, head + payload);
    return { ok: signaturesEqual(hmacHex(signingKey, sts), params.signature), sts, canonical: head + payload };
  };
  let r = check(payloadLine);
  if (!r.ok && emptyFallback && check(EMPTY_SHA256).ok) {
    r = { ...r, ok: true };
    p = { payload: 'SHA256', sha: EMPTY_SHA256 };
  }
  if (!r.ok) {
    fail('SignatureDoesNotMatch', undefined, {
      AWSAccessKeyId: params.accessKey, StringToSign: r.sts, SignatureProvided: params.signature, CanonicalRequest: r.canonical,
    });
  }
  return {
    anonymous: false, accessKey: params.accessKey, region: params.region, service: params.service,
    signingKey, seedSignature: params.signature, amzDate, scope, payload: p.payload, payloadSha256: p.sha,
    presigned: isPresigned, sessionToken,
  };
}
