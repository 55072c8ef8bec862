// Turns a request body into the byte stream storage/ stores, and the checks that must hold
// before anything is committed. The stored bytes are always the decoded payload: aws-chunked
// framing is removed by the decoder, which verifies chunk signatures and trailing checksums
// before it ends. Everything else (payload SHA-256, Content-MD5, x-amz-checksum-* headers,
// lengths) is verified in `beforeCommit`, after the last byte and before the index commit.
import { createHash } from 'node:crypto';
import { crc32c } from '../storage/native';
import { crcBase64 } from '../storage';
import { pipeline, Readable } from 'node:stream';
import type { Ctx } from './context';
import { header } from './context';
import { S3Error } from './errors';
import { createChunkedDecoder } from './auth/chunked';
import { algorithmFromHeader, ChecksumAlgorithm, createChecksum, StreamingChecksum } from './checksums';

export interface Digests { size: number; md5: Buffer; crc32c: number }

export interface BodyPlan {
  body: AsyncIterable<Buffer>;
  /** Declared payload length when known (Content-Length, or x-amz-decoded-content-length). */
  length?: number;
  beforeCommit: (d: Digests) => Promise<Record<string, string>>;
}

const CHECKSUM_ALGS: ChecksumAlgorithm[] = ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'];

/**
 * `checksumHeadersDescribeBody: false` is for CompleteMultipartUpload, whose x-amz-checksum-*
 * header is the object's checksum, not the XML body's.
 */
export function objectBody(ctx: Ctx, maxSize: number, checksumHeadersDescribeBody = true): BodyPlan {
  const mode = ctx.auth.payload;
  const streaming = mode.startsWith('STREAMING-');
  const te = header(ctx, 'transfer-encoding');
  const cl = header(ctx, 'content-length');
  const decodedHeader = header(ctx, 'x-amz-decoded-content-length');
  if (cl === undefined && !te) throw new S3Error('MissingContentLength');
  const length = streaming
    ? (decodedHeader !== undefined ? Number(decodedHeader) : undefined)
    : (cl !== undefined ? Number(cl) : undefined);
  if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) throw new S3Error('InvalidArgument', 'invalid content length');
  if (length !== undefined && length > maxSize) throw new S3Error('EntityTooLarge');
  if (streaming && decodedHeader === undefined && mode === 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD') throw new S3Error('MissingContentLength');

  // A checksum declared in a header (x-amz-checksum-<alg>) is computed over the payload here.
  let declared: { alg: ChecksumAlgorithm; value: string } | undefined;
  for (const alg of checksumHeadersDescribeBody ? CHECKSUM_ALGS : []) {
    const v = header(ctx, `x-amz-checksum-${alg.toLowerCase()}`);
    if (v !== undefined) {
      if (declared) throw new S3Error('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
      declared = { alg, value: v };
    }
  }
  const trailerNames = (header(ctx, 'x-amz-trailer') ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (declared && trailerNames.length) throw new S3Error('InvalidRequest', 'x-amz-trailer and x-amz-checksum-* may not be sent together');
  const sdkAlg = header(ctx, 'x-amz-sdk-checksum-algorithm');
  if (sdkAlg && !CHECKSUM_ALGS.includes(sdkAlg.toUpperCase() as ChecksumAlgorithm)) throw new S3Error('InvalidRequest', `Checksum algorithm ${sdkAlg} is not supported`);
  if (declared && sdkAlg && sdkAlg.toUpperCase() !== declared.alg) throw new S3Error('InvalidRequest', 'Value for x-amz-sdk-checksum-algorithm header is invalid.');

  const md5Header = header(ctx, 'content-md5');
  if (md5Header !== undefined && !/^[A-Za-z0-9+/]{22}==$/.test(md5Header)) throw new S3Error('InvalidDigest');

  let source: AsyncIterable<Buffer> = ctx.raw;
  let decoder: ReturnType<typeof createChunkedDecoder> | undefined;
  if (streaming) {
    decoder = createChunkedDecoder({ mode, ctx: ctx.auth, decodedLength: length, trailerNames });
    pipeline(ctx.raw, decoder, () => undefined);
    source = decoder;
  }
  let sha: ReturnType<typeof createHash> | undefined;
  if (mode === 'SHA256') sha = createHash('sha256');
  let sum: StreamingChecksum | undefined;
  if (declared && declared.alg !== 'CRC32C') sum = createChecksum(declared.alg);

  async function* measured(): AsyncGenerator<Buffer> {
    let n = 0;
    for await (const chunk of source) {
      n += chunk.length;
      ctx.bytesIn += chunk.length;
      if (n > maxSize) throw new S3Error('EntityTooLarge');
      sha?.update(chunk);
      sum?.update(chunk);
      yield chunk;
    }
    if (length !== undefined && n !== length) throw new S3Error('IncompleteBody');
    // Checked here, before the generator finishes, so storage never sees a clean end.
    if (sha && sha.digest('hex') !== ctx.auth.payloadSha256) throw new S3Error('XAmzContentSHA256Mismatch');
  }

  return {
    body: sha || sum || streaming || length !== undefined ? measured() : (ctx.raw as Readable),
    length,
    beforeCommit: async (d) => {
      if (md5Header !== undefined && d.md5.length === 16 && d.md5.toString('base64') !== md5Header) throw new S3Error('BadDigest');
      const out: Record<string, string> = {};
      if (declared) {
        const got = declared.alg === 'CRC32C' ? crcBase64(d.crc32c) : sum!.digest();
        if (got !== declared.value) {
          throw new S3Error('BadDigest', `The ${declared.alg} you specified did not match the calculated checksum.`);
        }
        out[declared.alg] = got;
      }
      if (decoder?.checksum) out[decoder.checksum.algorithm] = decoder.checksum.value;
      return out;
    },
  };
}

/** Read a small request body (XML documents) whole, with a bound, verifying what the auth mode promises. */
export async function readSmallBody(ctx: Ctx, max: number, checksumHeadersDescribeBody = true): Promise<Buffer> {
  // A request with neither Content-Length nor Transfer-Encoding has no body (RFC 9112 §6.3).
  if (header(ctx, 'content-length') === undefined && header(ctx, 'transfer-encoding') === undefined) return Buffer.alloc(0);
  const plan = objectBody(ctx, max, checksumHeadersDescribeBody);
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of plan.body) {
    n += c.length;
    if (n > max) throw new S3Error('MalformedXML', 'request body too large');
    parts.push(c);
  }
  const buf = Buffer.concat(parts);
  // beforeCommit checks Content-MD5 and any declared checksum against these digests.
  await plan.beforeCommit({ size: buf.length, md5: createHash('md5').update(buf).digest(), crc32c: crc32c(buf) });
  return buf;
}

export function algorithmOf(name: string): ChecksumAlgorithm | undefined { return algorithmFromHeader(name); }
