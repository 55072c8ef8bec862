// POST object: browser form uploads authorised by a signed policy document (SigV4 POST).
// The policy's conditions bound every form field and the content length; the file is
// streamed into storage only after the fields before it have been checked.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Ctx, Reply } from '../context';
import { xmlReply } from '../context';
import { S3Error } from '../errors';
import { x, xmlDoc } from '../xml';
import { hmac, signingKeyFor, signaturesEqual, parseAmzDate } from '../auth/sigv4';
import { allowed } from '../auth/identity';
import { validateKey, STANDARD_HEADERS, MAX_USER_META, parseTagging } from './common';
import { validateBucketName } from './bucket';
import { bucketAcl, CANNED_ACLS } from '../auth/access';
import { CHECKSUM_ALGORITHMS, createChecksum } from '../checksums';

type Condition = { op: 'eq' | 'starts-with'; field: string; value: string } | { op: 'range'; min: number; max: number };

function parsePolicy(b64: string): { expiration: number; conditions: Condition[] } {
  const bad = (m: string) => new S3Error('InvalidPolicyDocument', `Invalid Policy: ${m}`);
  let doc: { expiration?: unknown; conditions?: unknown };
  try {
    doc = JSON.parse(Buffer.from(b64, 'base64').toString('utf8'));
  } catch {
    throw bad('Invalid JSON.');
  }
  if (!doc || typeof doc !== 'object') throw bad('Invalid JSON.');
  // Keys are case-sensitive: "Expiration" is not "expiration".
  if (typeof doc.expiration !== 'string') throw bad('Policy missing expiration.');
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(doc.expiration)) throw bad(`Invalid 'expiration' value: '${doc.expiration}'`);
  const expiration = Date.parse(doc.expiration);
  if (!Array.isArray(doc.conditions)) throw bad('Policy missing conditions.');
  const conditions: Condition[] = [];
  for (const c of doc.conditions) {
    if (Array.isArray(c)) {
      const [rawOp, a, b] = c as [unknown, unknown, unknown];
      // Operator names match case-insensitively (as S3 accepts "StArTs-WiTh"); the policy's own
      // keys ("expiration", "conditions") do not.
      const op = typeof rawOp === 'string' ? rawOp.toLowerCase() : rawOp;
      if (op === 'content-length-range') {
        if (c.length !== 3) throw bad('Invalid content-length-range condition.');
        const min = Number(a), max = Number(b);
        if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max < min) throw bad('Invalid content-length-range condition.');
        conditions.push({ op: 'range', min, max });
        continue;
      }
      // Operators are case-sensitive, as on S3.
      if ((op !== 'eq' && op !== 'starts-with') || c.length !== 3 || typeof a !== 'string' || !a.startsWith('$') || typeof b !== 'string') {
        throw bad(`Invalid condition ${JSON.stringify(c)}.`);
      }
      conditions.push({ op, field: a.slice(1).toLowerCase(), value: b });
    } else if (c && typeof c === 'object') {
      const entries = Object.entries(c as Record<string, unknown>);
      if (entries.length !== 1 || typeof entries[0][1] !== 'string') throw bad('Invalid simple condition.');
      conditions.push({ op: 'eq', field: entries[0][0].toLowerCase(), value: entries[0][1] as string });
    } else {
      throw bad('Invalid condition.');
    }
  }
  return { expiration, conditions };
}

const EXEMPT = new Set(['x-amz-signature', 'file', 'policy', 'signature', 'awsaccesskeyid',
  // Checksums describe the file and are verified against it, not matched by the policy.
  'x-amz-checksum-crc32', 'x-amz-checksum-crc32c', 'x-amz-checksum-crc64nvme', 'x-amz-checksum-sha1', 'x-amz-checksum-sha256', 'x-amz-checksum-algorithm']);

function checkConditions(conds: Condition[], fields: Record<string, string>): void {
  const covered = new Set<string>();
  for (const c of conds) {
    if (c.op === 'range') continue;
    covered.add(c.field);
    const v = fields[c.field] ?? '';
    const ok = c.op === 'eq' ? v === c.value : v.startsWith(c.value);
    if (!ok) throw new S3Error('AccessDenied', `Invalid according to Policy: Policy Condition failed: ["${c.op}", "$${c.field}", "${c.value}"]`);
  }
  for (const f of Object.keys(fields)) {
    if (EXEMPT.has(f) || f.startsWith('x-ignore-')) continue;
    if (!covered.has(f)) throw new S3Error('AccessDenied', `Invalid according to Policy: Extra input fields: ${f}`);
  }
}

/**
 * The policy is signed either with SigV4 (x-amz-credential, x-amz-signature: hex HMAC-SHA256
 * with the derived key) or the legacy form (AWSAccessKeyId, signature: base64 HMAC-SHA1 with
 * the secret) that older browser upload code still sends. Returns the signer's access key.
 */
async function verifyPolicySignature(ctx: Ctx, fields: Record<string, string>): Promise<string> {
  const policy = fields['policy'];
  if (fields['x-amz-credential'] !== undefined || fields['x-amz-signature'] !== undefined) {
    if ((fields['x-amz-algorithm'] ?? '') !== 'AWS4-HMAC-SHA256') throw new S3Error('InvalidArgument', 'Only AWS4-HMAC-SHA256 POST policies are supported', { ArgumentName: 'x-amz-algorithm' });
    const cred = (fields['x-amz-credential'] ?? '').split('/');
    if (cred.length !== 5 || cred[4] !== 'aws4_request') throw new S3Error('InvalidArgument', 'Invalid x-amz-credential', { ArgumentName: 'x-amz-credential' });
    if (fields['x-amz-signature'] === undefined) throw new S3Error('InvalidArgument', 'Bucket POST must contain a field named \'x-amz-signature\'.', { ArgumentName: 'x-amz-signature' });
    if (!parseAmzDate(fields['x-amz-date'] ?? '')) throw new S3Error('InvalidArgument', 'Invalid x-amz-date', { ArgumentName: 'x-amz-date' });
    const secret = await ctx.identitySecret(cred[0]);
    if (secret === undefined) throw new S3Error('InvalidAccessKeyId');
    const expected = hmac(signingKeyFor(secret, cred[1], cred[2], cred[3]), policy).toString('hex');
    if (!signaturesEqual(expected, fields['x-amz-signature'])) throw new S3Error('SignatureDoesNotMatch');
    return cred[0];
  }
  const accessKey = fields['awsaccesskeyid'];
  if (accessKey === undefined) throw new S3Error('InvalidArgument', 'Bucket POST must contain a field named \'AWSAccessKeyId\'.', { ArgumentName: 'AWSAccessKeyId' });
  if (fields['signature'] === undefined) throw new S3Error('InvalidArgument', 'Bucket POST must contain a field named \'Signature\'.', { ArgumentName: 'Signature' });
  const secret = await ctx.identitySecret(accessKey);
  if (secret === undefined) throw new S3Error('InvalidAccessKeyId');
  const expected = createHmac('sha1', secret).update(policy).digest();
  const given = Buffer.from(fields['signature'], 'base64');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new S3Error('SignatureDoesNotMatch');
  return accessKey;
}

export async function postObject(ctx: Ctx): Promise<Reply> {
  validateBucketName(ctx.bucket);
  await ctx.store.getBucket(ctx.bucket);
  const fields: Record<string, string> = { bucket: ctx.bucket };
  let result: Reply | undefined;
  let sawFile = false;
  for await (const part of ctx.request.parts()) {
    // Only the part named "file" is the object; every other part is a form field, even when the
    // browser or library sent it with a filename.
    const name = part.fieldname.toLowerCase();
    if (part.type === 'file' && name === 'file') {
      if (sawFile) { part.file.resume(); continue; }
      sawFile = true;
      result = await storeFile(ctx, fields, part.filename, part.mimetype, part.file);
      continue;
    }
    const value = part.type === 'field' ? String(part.value) : (await part.toBuffer()).toString('utf8');
    if (sawFile) continue; // S3 ignores fields after the file
    // The bucket is the one in the URL; a form field cannot change what the policy is checked against.
    if (name === 'bucket') continue;
    if (name in fields) throw new S3Error('InvalidArgument', `POST requires exactly one ${name} field`);
    fields[name] = value;
  }
  if (!sawFile || !result) throw new S3Error('InvalidArgument', 'POST requires exactly one file upload per request.', { ArgumentName: 'file' });
  return result;
}

async function storeFile(ctx: Ctx, fields: Record<string, string>, filename: string, mimetype: string, file: NodeJS.ReadableStream): Promise<Reply> {
  // ${filename} is replaced before the policy is checked, so conditions see the real key.
  if (fields['key'] !== undefined) fields['key'] = fields['key'].replace(/\$\{filename\}/g, filename);
  let range: { min: number; max: number } | undefined;
  let accessKey = '';
  if (fields['policy'] !== undefined) {
    accessKey = await verifyPolicySignature(ctx, fields);
    const policy = parsePolicy(fields['policy']);
    if (policy.expiration < Date.now()) throw new S3Error('AccessDenied', 'Invalid according to Policy: Policy expired.');
    checkConditions(policy.conditions, fields);
    range = policy.conditions.find((c): c is { op: 'range'; min: number; max: number } => c.op === 'range');
    const who = await ctx.identityFor(accessKey);
    if (!allowed(who, 'write', ctx.bucket)) throw new S3Error('AccessDenied');
  } else {
    if (fields['x-amz-signature'] !== undefined || fields['signature'] !== undefined) {
      throw new S3Error('InvalidArgument', 'Bucket POST must contain a field named \'policy\'.', { ArgumentName: 'policy' });
    }
    if (bucketAcl(await ctx.store.getBucket(ctx.bucket)) !== 'public-read-write') throw new S3Error('AccessDenied', 'Anonymous POST uploads need a public-read-write bucket');
  }
  if (fields['key'] === undefined || fields['key'] === '') throw new S3Error('InvalidArgument', 'Bucket POST must contain a field named \'key\'.', { ArgumentName: 'key' });
  const key = fields['key'].replace(/\$\{filename\}/g, filename);
  validateKey(key);
  const headers: Record<string, string> = {};
  for (const h of STANDARD_HEADERS) if (fields[h] !== undefined) headers[h] = fields[h];
  const meta: Record<string, string> = {};
  let metaSize = 0;
  for (const [k, v] of Object.entries(fields)) {
    if (!k.startsWith('x-amz-meta-')) continue;
    meta[k.slice(11)] = v;
    metaSize += k.length - 11 + v.length;
  }
  if (metaSize > MAX_USER_META) throw new S3Error('MetadataTooLarge');
  const max = Math.min(range?.max ?? ctx.config.maxObjectSize, ctx.config.maxObjectSize);
  const declared = CHECKSUM_ALGORITHMS.find((a) => fields[`x-amz-checksum-${a.toLowerCase()}`] !== undefined);
  const sum = declared ? createChecksum(declared) : undefined;
  async function* summed(): AsyncGenerator<Buffer> {
    for await (const c of file as AsyncIterable<Buffer>) { sum?.update(c); yield c; }
  }
  const rec = await ctx.store.putObject(ctx.bucket, key, summed(), {
    contentType: fields['content-type'] ?? (mimetype || undefined), headers, meta, maxSize: max,
    acl: fields['acl'] !== undefined && (CANNED_ACLS as readonly string[]).includes(fields['acl']) ? fields['acl'] : undefined,
    owner: accessKey || undefined,
    tags: fields['tagging'] !== undefined ? parseTagging(tagsFromXml(fields['tagging'])) : undefined,
    beforeCommit: (d) => {
      if ((file as unknown as { truncated?: boolean }).truncated) throw new S3Error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size');
      if (range && d.size < range.min) throw new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed size');
      if (range && d.size > range.max) throw new S3Error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size');
      if (declared && sum) {
        const got = sum.digest();
        if (got !== fields[`x-amz-checksum-${declared.toLowerCase()}`]) throw new S3Error('BadDigest', `The ${declared} you specified did not match the calculated checksum.`);
        return { [declared]: got };
      }
      return undefined;
    },
  });
  const etag = `"${rec.etag}"`;
  const location = `/${ctx.bucket}/${encodeURIComponent(key)}`;
  const redirect = fields['success_action_redirect'] ?? fields['redirect'];
  if (redirect) {
    try {
      const u = new URL(redirect);
      u.searchParams.set('bucket', ctx.bucket);
      u.searchParams.set('key', key);
      u.searchParams.set('etag', etag);
      return { status: 303, headers: { location: u.toString(), etag } };
    } catch { /* an invalid redirect falls back to the status rule, as on S3 */ }
  }
  const status = fields['success_action_status'];
  if (status === '201') {
    return xmlReply(xmlDoc('PostResponse', [x('Location', location), x('Bucket', ctx.bucket), x('Key', key), x('ETag', etag)], false), 201, { etag, location });
  }
  return { status: status === '200' ? 200 : 204, headers: { etag, location } };
}

/** The tagging form field is a Tagging XML document; turn it into query-string form. */
function tagsFromXml(v: string): string {
  const pairs = [...v.matchAll(/<Tag>\s*<Key>([^<]*)<\/Key>\s*<Value>([^<]*)<\/Value>\s*<\/Tag>/g)];
  return pairs.map((m) => `${encodeURIComponent(m[1])}=${encodeURIComponent(m[2])}`).join('&');
}
