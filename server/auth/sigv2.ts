// Legacy AWS Signature Version 2 (HMAC-SHA1), for the clients that still send it: presigned
// URLs from boto3 and the AWS CLI v1 without an s3v4 setting, and older tools. Header form
// (`Authorization: AWS AK:sig`) and query form (AWSAccessKeyId, Expires, Signature).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { S3Error } from '../errors';
import type { AuthContext, AuthInput, SecretLookup } from './sigv4';

const SUBRESOURCES = new Set([
  'accelerate', 'acl', 'analytics', 'attributes', 'cors', 'delete', 'encryption', 'intelligent-tiering', 'inventory',
  'legal-hold', 'lifecycle', 'location', 'logging', 'metrics', 'notification', 'object-lock', 'ownershipControls',
  'partNumber', 'policy', 'publicAccessBlock', 'replication', 'requestPayment', 'restore', 'retention', 'select',
  'session', 'tagging', 'torrent', 'uploadId', 'uploads', 'versionId', 'versioning', 'versions', 'website',
  'response-cache-control', 'response-content-disposition', 'response-content-encoding', 'response-content-language',
  'response-content-type', 'response-expires',
]);
const MAX_SKEW_MS = 15 * 60 * 1000;

function one(input: AuthInput, name: string): string {
  const v = input.headers[name];
  return (Array.isArray(v) ? v.join(',') : v) ?? '';
}

export function isSigV2(input: AuthInput): boolean {
  const auth = one(input, 'authorization');
  if (auth.startsWith('AWS ')) return true;
  const q = input.url.indexOf('?');
  if (q < 0 || auth) return false;
  const params = new URLSearchParams(input.url.slice(q + 1));
  return params.has('AWSAccessKeyId') && params.has('Signature');
}

/** `resourcePrefix` is '/bucket' for virtual-host-style requests, '' for path-style. */
export async function verifySigV2(input: AuthInput, lookup: SecretLookup, resourcePrefix = ''): Promise<AuthContext> {
  const now = input.now ?? new Date();
  const q = input.url.indexOf('?');
  const rawPath = q < 0 ? input.url : input.url.slice(0, q);
  const rawQuery = q < 0 ? '' : input.url.slice(q + 1);
  const params = new URLSearchParams(rawQuery);
  const auth = one(input, 'authorization');
  let accessKey: string;
  let signature: string;
  let dateLine: string;
  const presigned = !auth;
  if (auth) {
    const m = /^AWS ([^:]+):(.+)$/.exec(auth);
    if (!m) throw new S3Error('AuthorizationHeaderMalformed', 'The authorization header is malformed.');
    [, accessKey, signature] = m;
    const dateHeader = one(input, 'x-amz-date') || one(input, 'date');
    const t = Date.parse(dateHeader);
    if (Number.isNaN(t)) throw new S3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
    if (Math.abs(now.getTime() - t) > MAX_SKEW_MS) throw new S3Error('RequestTimeTooSkewed');
    dateLine = one(input, 'x-amz-date') ? '' : one(input, 'date');
  } else {
    accessKey = params.get('AWSAccessKeyId') ?? '';
    signature = params.get('Signature') ?? '';
    dateLine = params.get('Expires') ?? '';
    const expires = Number(dateLine);
    if (!/^\d+$/.test(dateLine)) throw new S3Error('AccessDenied', 'Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters');
    if (expires * 1000 < now.getTime()) throw new S3Error('AccessDenied', 'Request has expired');
  }
  const secret = await lookup(accessKey);
  if (secret === undefined) throw new S3Error('InvalidAccessKeyId', undefined, { AWSAccessKeyId: accessKey });

  const amz = Object.keys(input.headers).filter((h) => h.startsWith('x-amz-')).sort()
    .map((h) => `${h}:${one(input, h).trim().replace(/\s+/g, ' ')}\n`).join('');
  const sub = [...params.entries()].filter(([k]) => SUBRESOURCES.has(k)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => (v === '' && !rawQuery.includes(`${k}=`) ? k : `${k}=${v}`));
  const query = sub.length ? `?${sub.join('&')}` : '';
  const stsFor = (path: string) => `${input.method}\n${one(input, 'content-md5')}\n${one(input, 'content-type')}\n${dateLine}\n${amz}${resourcePrefix}${path}${query}`;
  const given = Buffer.from(signature, 'base64');
  const matches = (sts: string) => {
    const expected = createHmac('sha1', secret).update(sts, 'utf8').digest();
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
  // Some signers (botocore) write a bucket-only resource as "/bucket/", others as "/bucket".
  const bucketOnly = /^\/[^/]+$/.test(rawPath);
  const sts = stsFor(rawPath);
  if (!matches(sts) && !(bucketOnly && matches(stsFor(`${rawPath}/`)))) {
    throw new S3Error('SignatureDoesNotMatch', undefined, { AWSAccessKeyId: accessKey, StringToSign: sts });
  }
  const sha = one(input, 'x-amz-content-sha256');
  return {
    anonymous: false, accessKey, region: '', service: 's3', signingKey: Buffer.alloc(0), seedSignature: '', amzDate: '', scope: '',
    payload: /^[0-9a-f]{64}$/i.test(sha) ? 'SHA256' : 'UNSIGNED-PAYLOAD', payloadSha256: /^[0-9a-f]{64}$/i.test(sha) ? sha.toLowerCase() : undefined,
    presigned, sessionToken: undefined,
  };
}
