// Multipart upload operations. Storage keeps each part as its own shard set and completes an
// upload by writing one record; these handlers speak the XML and check the S3 rules.
import { crc32 as zlibCrc32 } from 'node:zlib';
import type { Ctx, Reply } from '../context';
import { header, xmlReply } from '../context';
import { S3Error } from '../errors';
import { x, xmlDoc, isoDate, parseXml, text, children } from '../xml';
import { objectBody, readSmallBody } from '../body';
import { metaFromRequest, parseTagging, requireBucketKey, validateKey } from './common';
import { ownerXml } from './bucket';
import { openSource } from './copy';
import { rejectUnsupportedWriteHeaders } from './put';
import { parseRange } from './get';
import { lockForNewVersion } from './object-lock';
import { checkConsecutiveParts, isDirectoryBucket } from './express';
import { createChecksum, ChecksumAlgorithm, CHECKSUM_ALGORITHMS } from '../checksums';
import type { StoredPart, UploadRecord, ObjectRecord } from '../../storage';
import { crcCombine, crc64Combine, CRC32_POLY, CRC32C_POLY } from '../../storage';

const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;

function partNumber(ctx: Ctx): number {
  const v = ctx.query['partNumber'];
  const n = Number(v);
  if (v === undefined || !/^\d+$/.test(v) || n < 1 || n > 10000) {
    throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', { ArgumentName: 'partNumber', ArgumentValue: v ?? '' });
  }
  return n;
}

async function upload(ctx: Ctx): Promise<UploadRecord> {
  return ctx.mp.get(ctx.bucket, ctx.key, ctx.query['uploadId']);
}

function partChecksums(p: { checksums?: Record<string, string> }): ReturnType<typeof x>[] {
  return Object.entries(p.checksums ?? {}).map(([a, v]) => x(`Checksum${a}`, v));
}

export async function createUpload(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  validateKey(ctx.key);
  rejectUnsupportedWriteHeaders(ctx);
  const m = metaFromRequest(ctx);
  const algHeader = header(ctx, 'x-amz-checksum-algorithm');
  const alg = algHeader?.toUpperCase() as ChecksumAlgorithm | undefined;
  if (alg && !CHECKSUM_ALGORITHMS.includes(alg)) throw new S3Error('InvalidRequest', `Checksum algorithm ${algHeader} is not supported`);
  const type = header(ctx, 'x-amz-checksum-type')?.toUpperCase();
  if (type && type !== 'COMPOSITE' && type !== 'FULL_OBJECT') throw new S3Error('InvalidRequest', 'Value for x-amz-checksum-type header is invalid.');
  if (type === 'FULL_OBJECT' && alg && alg !== 'CRC64NVME' && alg !== 'CRC32' && alg !== 'CRC32C') throw new S3Error('InvalidRequest', `The FULL_OBJECT checksum type cannot be used with the ${alg} checksum algorithm.`);
  // CRC64NVME is always full-object; other CRCs default to composite, as on S3.
  const checksumType = alg ? (type === 'FULL_OBJECT' || alg === 'CRC64NVME' ? 'FULL_OBJECT' : 'COMPOSITE') : undefined;
  if (alg === 'CRC64NVME' && type === 'COMPOSITE') throw new S3Error('InvalidRequest', 'The COMPOSITE checksum type cannot be used with the CRC64NVME checksum algorithm.');
  const up = await ctx.mp.create(ctx.bucket, ctx.key, {
    contentType: m.contentType, headers: m.headers, meta: m.meta, tags: parseTagging(header(ctx, 'x-amz-tagging')),
    checksumAlgorithm: alg, checksumType,
    lock: await lockForNewVersion(ctx),
  });
  return xmlReply(xmlDoc('InitiateMultipartUploadResult', [x('Bucket', ctx.bucket), x('Key', ctx.key), x('UploadId', up.uploadId)]), 200,
    alg ? { 'x-amz-checksum-algorithm': alg, 'x-amz-checksum-type': checksumType! } : {});
}

export async function uploadPart(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  const n = partNumber(ctx);
  const up = await upload(ctx);
  const plan = objectBody(ctx, MAX_PART_SIZE);
  const part = await ctx.mp.uploadPart(ctx.bucket, ctx.key, up.uploadId, n, plan.body, { maxSize: MAX_PART_SIZE, beforeCommit: plan.beforeCommit, etag: isDirectoryBucket(ctx.bucket) ? 'random' : 'md5' });
  if (up.checksumAlgorithm && !part.checksums?.[up.checksumAlgorithm]) {
    // The upload promised per-part checksums of this algorithm; a part without one can't be composed.
    const sdk = header(ctx, 'x-amz-sdk-checksum-algorithm');
    if (sdk) throw new S3Error('InvalidRequest', `Checksum Type mismatch occurred, expected checksum Type: ${up.checksumAlgorithm.toLowerCase()}, actual checksum Type: ${sdk.toLowerCase()}`);
  }
  const h: Record<string, string> = { etag: `"${part.etag}"` };
  for (const [a, v] of Object.entries(part.checksums ?? {})) h[`x-amz-checksum-${a.toLowerCase()}`] = v;
  return { status: 200, headers: h };
}

export async function uploadPartCopy(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  const n = partNumber(ctx);
  const up = await upload(ctx);
  const rangeHeader = header(ctx, 'x-amz-copy-source-range');
  const got = await openSource(ctx, (rec) => {
    if (rangeHeader === undefined) return { start: 0, end: rec.size };
    const m = /^bytes=(\d+)-(\d+)$/.exec(rangeHeader.trim());
    if (!m) throw new S3Error('InvalidArgument', 'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy', { ArgumentName: 'x-amz-copy-source-range' });
    const r = parseRange(`bytes=${m[1]}-${m[2]}`, rec.size);
    if (!r || Number(m[2]) >= rec.size) throw new S3Error('InvalidRange', undefined, {}, { 'content-range': `bytes */${rec.size}` });
    return r;
  });
  if (got.end - got.start > MAX_PART_SIZE) { got.stream.destroy(); throw new S3Error('EntityTooLarge'); }
  let part: StoredPart;
  try {
    part = await ctx.mp.uploadPart(ctx.bucket, ctx.key, up.uploadId, n, got.stream, { maxSize: MAX_PART_SIZE });
  } finally {
    got.stream.destroy();
  }
  return xmlReply(xmlDoc('CopyPartResult', [x('LastModified', isoDate(part.mtime ?? Date.now())), x('ETag', `"${part.etag}"`)]));
}

/** FULL_OBJECT checksum of the whole upload from the parts' CRCs, without reading the data. */
function fullObject(alg: ChecksumAlgorithm, parts: StoredPart[]): string | undefined {
  if (alg === 'CRC64NVME') {
    let acc: bigint | undefined;
    for (const p of parts) {
      const v = p.checksums?.CRC64NVME;
      if (!v) return undefined;
      const c = BigInt(`0x${Buffer.from(v, 'base64').toString('hex')}`);
      acc = acc === undefined ? c : crc64Combine(acc, c, p.size);
    }
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(acc ?? 0n);
    return b.toString('base64');
  }
  if (alg !== 'CRC32' && alg !== 'CRC32C') return undefined;
  let acc: number | undefined;
  for (const p of parts) {
    const v = p.checksums?.[alg];
    const c = v ? Buffer.from(v, 'base64').readUInt32BE(0) : alg === 'CRC32C' ? p.crc32c : undefined;
    if (c === undefined) return undefined;
    acc = acc === undefined ? c : crcCombine(acc, c, p.size, alg === 'CRC32' ? CRC32_POLY : CRC32C_POLY);
  }
  const b = Buffer.alloc(4);
  b.writeUInt32BE((acc ?? 0) >>> 0);
  return b.toString('base64');
}

/** COMPOSITE checksum: the algorithm over the concatenated binary part checksums, "-N". */
function composite(alg: ChecksumAlgorithm, parts: StoredPart[]): string | undefined {
  const raw: Buffer[] = [];
  for (const p of parts) {
    const v = p.checksums?.[alg];
    if (!v) return undefined;
    raw.push(Buffer.from(v, 'base64'));
  }
  const all = Buffer.concat(raw);
  let digest: string;
  if (alg === 'CRC32') {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(zlibCrc32(all) >>> 0);
    digest = b.toString('base64');
  } else {
    const c = createChecksum(alg);
    c.update(all);
    digest = c.digest();
  }
  return `${digest}-${parts.length}`;
}

function completeResult(ctx: Ctx, rec: ObjectRecord, alg: string | undefined, sum: string | undefined, type = 'COMPOSITE'): Reply {
  const host = header(ctx, 'host') ?? 'localhost';
  return xmlReply(xmlDoc('CompleteMultipartUploadResult', [
    x('Location', `http://${host}/${ctx.bucket}/${encodeURI(ctx.key)}`), x('Bucket', ctx.bucket), x('Key', ctx.key), x('ETag', `"${rec.etag}"`),
    sum ? x(`Checksum${alg}`, sum) : undefined,
    sum ? x('ChecksumType', type) : undefined,
  ]), 200, rec.versioned && rec.versionId !== 'null' ? { 'x-amz-version-id': rec.versionId } : {});
}

export async function completeUpload(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  let up: UploadRecord;
  try {
    up = await upload(ctx);
  } catch (e) {
    // A retried Complete of an upload that already completed gets the same answer (as on S3).
    const done = await ctx.store.headObject(ctx.bucket, ctx.key).catch(() => undefined);
    if (done && done.uploadId === ctx.query['uploadId']) {
      await readSmallBody(ctx, 4 * 1024 * 1024, false);
      const alg = Object.keys(done.checksums).find((a) => a !== 'CRC32C') ?? undefined;
      return completeResult(ctx, done, alg, alg ? done.checksums[alg] : undefined, done.checksumType);
    }
    throw e;
  }
  const body = await readSmallBody(ctx, 4 * 1024 * 1024, false);
  const doc = await parseXml(body, 'CompleteMultipartUpload');
  const partsXml = children(doc, 'Part');
  if (partsXml.length === 0) throw new S3Error('MalformedXML', 'You must specify at least one part');
  const wanted = partsXml.map((p) => {
    const num = Number(text(p, 'PartNumber'));
    const etag = text(p, 'ETag');
    if (!Number.isInteger(num) || etag === undefined) throw new S3Error('MalformedXML');
    const sums: Record<string, string> = {};
    for (const a of CHECKSUM_ALGORITHMS) {
      const v = text(p, `Checksum${a}`);
      if (v !== undefined) sums[a] = v;
    }
    return { number: num, etag, sums };
  });
  checkConsecutiveParts(ctx, wanted.map((w) => w.number));
  const { parts: stored } = await ctx.mp.listParts(up.uploadId, 0, 10000);
  const byNumber = new Map(stored.map((p) => [p.number, p]));
  for (const w of wanted) {
    const p = byNumber.get(w.number);
    for (const [a, v] of Object.entries(w.sums)) {
      if (p && p.checksums?.[a] !== undefined && p.checksums[a] !== v) throw new S3Error('InvalidPart', `checksum of part ${w.number} does not match`);
    }
  }
  const chosen = wanted.map((w) => byNumber.get(w.number)).filter((p): p is StoredPart => !!p);
  const alg = up.checksumAlgorithm as ChecksumAlgorithm | undefined;
  const sum = alg && chosen.length === wanted.length
    ? (up.checksumType === 'FULL_OBJECT' ? fullObject(alg, chosen) : composite(alg, chosen)) : undefined;
  // The client may state the whole object's checksum; it must agree with what the parts give.
  for (const a of CHECKSUM_ALGORITHMS) {
    const stated = header(ctx, `x-amz-checksum-${a.toLowerCase()}`);
    if (stated === undefined) continue;
    if (a !== alg || !sum || stated.replace(/-\d+$/, '') !== sum.replace(/-\d+$/, '')) {
      throw new S3Error('BadDigest', `The ${a} you specified did not match the calculated checksum.`);
    }
  }
  const rec = await ctx.mp.complete(ctx.bucket, ctx.key, up.uploadId, wanted.map((w) => ({ number: w.number, etag: w.etag })),
    { ifNoneMatch: header(ctx, 'if-none-match'), ifMatch: header(ctx, 'if-match') },
    sum ? { [up.checksumAlgorithm!]: sum } : undefined);
  return completeResult(ctx, rec, up.checksumAlgorithm, sum, up.checksumType);
}

export async function abortUpload(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  await ctx.mp.abort(ctx.bucket, ctx.key, ctx.query['uploadId']);
  return { status: 204 };
}

export async function listParts(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  const up = await upload(ctx);
  const markerQ = ctx.query['part-number-marker'] ?? '0';
  const marker = Number(markerQ);
  if (!/^\d+$/.test(markerQ)) throw new S3Error('InvalidArgument', 'Invalid part number marker', { ArgumentName: 'part-number-marker' });
  const maxQ = ctx.query['max-parts'] ?? '1000';
  if (!/^\d+$/.test(maxQ)) throw new S3Error('InvalidArgument', 'Invalid max-parts', { ArgumentName: 'max-parts' });
  const max = Math.min(Number(maxQ), 1000);
  const { parts, truncated } = await ctx.mp.listParts(up.uploadId, marker, max);
  const owner = ownerXml(ctx.identity.accessKey);
  return xmlReply(xmlDoc('ListPartsResult', [
    x('Bucket', ctx.bucket), x('Key', ctx.key), x('UploadId', up.uploadId),
    x('Initiator', owner), x('Owner', owner), x('StorageClass', 'STANDARD'),
    x('PartNumberMarker', marker), x('NextPartNumberMarker', parts.length ? parts[parts.length - 1].number : marker),
    x('MaxParts', max), x('IsTruncated', truncated),
    up.checksumAlgorithm ? [x('ChecksumAlgorithm', up.checksumAlgorithm), x('ChecksumType', up.checksumType ?? 'COMPOSITE')] : undefined,
    parts.map((p) => x('Part', [x('PartNumber', p.number), x('LastModified', isoDate(p.mtime ?? up.initiated)), x('ETag', `"${p.etag}"`), x('Size', p.size), ...partChecksums(p)])),
  ]));
}

export async function listUploads(ctx: Ctx): Promise<Reply> {
  const maxQ = ctx.query['max-uploads'] ?? '1000';
  if (!/^\d+$/.test(maxQ)) throw new S3Error('InvalidArgument', 'Invalid max-uploads', { ArgumentName: 'max-uploads' });
  const max = Math.min(Number(maxQ), 1000);
  const keyMarker = ctx.query['key-marker'] ?? '';
  const uploadIdMarker = ctx.query['upload-id-marker'] ?? '';
  const r = await ctx.mp.listUploads(ctx.bucket, {
    prefix: ctx.query['prefix'], delimiter: ctx.query['delimiter'] || undefined, keyMarker: keyMarker || undefined,
    uploadIdMarker: uploadIdMarker || undefined, max,
  });
  const owner = ownerXml(ctx.identity.accessKey);
  const last = r.uploads[r.uploads.length - 1];
  return xmlReply(xmlDoc('ListMultipartUploadsResult', [
    x('Bucket', ctx.bucket), x('KeyMarker', keyMarker), x('UploadIdMarker', uploadIdMarker),
    x('NextKeyMarker', last ? last.key : ''), x('NextUploadIdMarker', last ? last.uploadId : ''),
    ctx.query['prefix'] !== undefined ? x('Prefix', ctx.query['prefix']) : undefined,
    ctx.query['delimiter'] ? x('Delimiter', ctx.query['delimiter']) : undefined,
    x('MaxUploads', max), x('IsTruncated', r.truncated),
    r.uploads.map((u) => x('Upload', [
      x('Key', u.key), x('UploadId', u.uploadId), x('Initiator', owner), x('Owner', owner), x('StorageClass', 'STANDARD'),
      x('Initiated', isoDate(u.initiated)), u.checksumAlgorithm ? x('ChecksumAlgorithm', u.checksumAlgorithm) : undefined,
    ])),
    r.commonPrefixes.map((p) => x('CommonPrefixes', x('Prefix', p))),
  ]));
}
