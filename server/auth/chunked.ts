// Decoder for `Content-Encoding: aws-chunked` request bodies (SigV4 streaming uploads).
// Payload bytes are passed downstream as slices of the input buffers; only the short
// framing lines are copied and parsed. Every integrity check (chunk signatures, trailer
// signature, checksum trailer, decoded length) fails the stream before it can end, so a
// consumer that commits only on a clean end never commits a corrupt or forged body.

import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { S3Error } from '../errors';
import { algorithmFromHeader, checksumByteLength, createChecksum, type ChecksumAlgorithm, type StreamingChecksum } from '../checksums';
import { EMPTY_SHA256, hmacHex, signaturesEqual, type AuthContext } from './sigv4';

export interface ChunkedOptions {
  /** one of the three STREAMING-* modes */
  mode: AuthContext['payload'];
  /** required for the signed modes */
  ctx?: AuthContext;
  /** x-amz-decoded-content-length */
  decodedLength?: number;
  /** from the x-amz-trailer header (comma-separated values are split) */
  trailerNames?: readonly string[];
}

export interface ComputedChecksum { algorithm: ChecksumAlgorithm; value: string }

export type ChunkedDecoder = Transform & { trailers: Record<string, string>; checksum?: ComputedChecksum };

export const MAX_LINE = 4096;
const MAX_TRAILER_BYTES = 16 * 1024;
/** Signed chunks are held until their signature verifies; this bounds that buffer. */
export const MAX_SIGNED_CHUNK = 64 * 1024 * 1024;
const HEX64 = /^[0-9a-fA-F]{64}$/;

type State = 'size' | 'data' | 'dataEnd' | 'trailer' | 'done';

const invalid = (m: string) => new S3Error('InvalidRequest', `Malformed aws-chunked body: ${m}`);

class AwsChunkedDecoder extends Transform {
  trailers: Record<string, string> = {};
  checksum?: ComputedChecksum;

  private readonly signed: boolean;
  private readonly trailerMode: boolean;
  private readonly signedTrailer: boolean;
  private readonly declared: Set<string>;
  private readonly sum?: StreamingChecksum;
  private readonly sumAlg?: ChecksumAlgorithm;

  private state: State = 'size';
  private line: Buffer[] = [];
  private lineLen = 0;
  private remaining = 0;
  private total = 0;
  private held: Buffer[] = [];
  private chunkHash?: Hash;
  private chunkSig = '';
  private prevSig = '';
  private trailerText = '';
  private trailerBytes = 0;
  private trailerSig?: string;
  private strayBytes = 0;

  constructor(private readonly opts: ChunkedOptions) {
    super();
    const { mode, ctx } = opts;
    if (!mode.startsWith('STREAMING-')) throw new Error(`aws-chunked decoder needs a STREAMING-* mode, got ${mode}`);
    this.signed = mode.startsWith('STREAMING-AWS4-HMAC-SHA256');
    this.trailerMode = mode.endsWith('-TRAILER');
    this.signedTrailer = this.signed && this.trailerMode;
    if (this.signed) {
      if (!ctx || ctx.anonymous) throw new S3Error('AccessDenied', 'A signed streaming payload requires a signed request.');
      this.prevSig = ctx.seedSignature;
    }
    this.declared = new Set((opts.trailerNames ?? []).flatMap((n) => n.split(',')).map((n) => n.trim().toLowerCase()).filter(Boolean));
    const algs = [...this.declared].map(algorithmFromHeader).filter((a): a is ChecksumAlgorithm => a !== undefined);
    if (algs.length > 1) throw new S3Error('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
    if (this.trailerMode && algs.length === 1) {
      this.sumAlg = algs[0];
      this.sum = createChecksum(algs[0]);
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.consume(chunk);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (this.state === 'trailer') {
        // Lenient: some clients end after the last trailer line, without the closing blank line.
        if (this.lineLen > 0) this.onLine(this.takeLine());
        if (this.state === 'trailer') this.finish();
      }
      if (this.state !== 'done') throw new S3Error('IncompleteBody', 'The aws-chunked body ended before its final chunk.');
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  private consume(buf: Buffer): void {
    let pos = 0;
    while (pos < buf.length) {
      if (this.state === 'data') {
        const n = Math.min(this.remaining, buf.length - pos);
        this.accept(buf.subarray(pos, pos + n));
        pos += n;
        this.remaining -= n;
        if (this.remaining === 0) this.endChunk(false);
        continue;
      }
      if (this.state === 'done') {
        // Tolerate a stray CRLF or two after the terminator, nothing else.
        for (; pos < buf.length; pos++) {
          if ((buf[pos] !== 0x0d && buf[pos] !== 0x0a) || ++this.strayBytes > 4) throw invalid('data after the final chunk');
        }
        break;
      }
      const nl = buf.indexOf(0x0a, pos);
      const end = nl < 0 ? buf.length : nl;
      if (this.lineLen + (end - pos) > MAX_LINE) throw invalid('line too long');
      // Copy partial lines so a tiny remnant does not pin a large input buffer.
      if (end > pos) this.line.push(nl < 0 ? Buffer.from(buf.subarray(pos, end)) : buf.subarray(pos, end));
      this.lineLen += end - pos;
      if (nl < 0) break;
      pos = nl + 1;
      this.onLine(this.takeLine());
    }
  }

  private takeLine(): string {
    let text = Buffer.concat(this.line, this.lineLen).toString('latin1');
    this.line = [];
    this.lineLen = 0;
    if (text.endsWith('\r')) text = text.slice(0, -1);
    return text;
  }

  private onLine(text: string): void {
    switch (this.state) {
      case 'size': return this.onSizeLine(text);
      case 'dataEnd':
        if (text !== '') throw invalid('chunk data longer than its declared size');
        this.state = 'size';
        return;
      case 'trailer': return this.onTrailerLine(text);
      default: throw invalid(`unexpected line in state ${this.state}`);
    }
  }

  private onSizeLine(text: string): void {
    const [sizeStr, ...exts] = text.split(';');
    const hex = sizeStr.trim();
    if (!/^[0-9a-fA-F]{1,13}$/.test(hex)) throw invalid(`bad chunk size "${hex.slice(0, 32)}"`);
    const size = parseInt(hex, 16);
    if (this.signed) {
      const sig = exts.map((e) => e.trim()).find((e) => e.startsWith('chunk-signature='))?.slice('chunk-signature='.length);
      if (sig === undefined || !HEX64.test(sig)) throw new S3Error('SignatureDoesNotMatch', 'Missing or malformed chunk-signature.');
      if (size > MAX_SIGNED_CHUNK) throw invalid(`signed chunk larger than ${MAX_SIGNED_CHUNK} bytes`);
      this.chunkSig = sig.toLowerCase();
      this.chunkHash = createHash('sha256');
    }
    const { decodedLength } = this.opts;
    if (decodedLength !== undefined && this.total + size > decodedLength) {
      throw new S3Error('IncompleteBody', 'The aws-chunked body is longer than x-amz-decoded-content-length.');
    }
    this.remaining = size;
    if (size === 0) this.endChunk(true);
    else this.state = 'data';
  }

  private accept(slice: Buffer): void {
    this.total += slice.length;
    this.sum?.update(slice);
    if (this.signed) {
      this.chunkHash!.update(slice);
      this.held.push(slice);
    } else {
      this.push(slice);
    }
  }

  /** All bytes of a chunk are in: verify its signature, then release it downstream. */
  private endChunk(last: boolean): void {
    if (this.signed) {
      const ctx = this.opts.ctx!;
      const sts = `AWS4-HMAC-SHA256-PAYLOAD\n${ctx.amzDate}\n${ctx.scope}\n${this.prevSig}\n${EMPTY_SHA256}\n${this.chunkHash!.digest('hex')}`;
      if (!signaturesEqual(hmacHex(ctx.signingKey, sts), this.chunkSig)) {
        throw new S3Error('SignatureDoesNotMatch', 'The chunk signature does not match.');
      }
      this.prevSig = this.chunkSig;
      for (const b of this.held) this.push(b);
      this.held = [];
    }
    // The zero-length chunk has no data line; what follows is the trailer section (maybe empty).
    this.state = last ? 'trailer' : 'dataEnd';
  }

  private onTrailerLine(text: string): void {
    if (text === '') return this.finish();
    this.trailerBytes += text.length + 1;
    if (this.trailerBytes > MAX_TRAILER_BYTES) throw invalid('trailer section too large');
    const colon = text.indexOf(':');
    if (colon <= 0) throw invalid('bad trailer line');
    const name = text.slice(0, colon).trim().toLowerCase();
    const value = text.slice(colon + 1).trim();
    if (this.trailerSig !== undefined) throw invalid('trailer after x-amz-trailer-signature');
    if (name === 'x-amz-trailer-signature') {
      if (!this.signedTrailer) throw invalid('unexpected x-amz-trailer-signature');
      if (!HEX64.test(value)) throw new S3Error('SignatureDoesNotMatch', 'Malformed x-amz-trailer-signature.');
      this.trailerSig = value.toLowerCase();
      return;
    }
    if (!this.trailerMode) throw invalid('trailers are not allowed for this x-amz-content-sha256');
    if (!this.declared.has(name)) throw new S3Error('InvalidRequest', `Trailer ${name} was not declared in x-amz-trailer.`);
    if (name in this.trailers) throw invalid(`duplicate trailer ${name}`);
    this.trailers[name] = value;
    // The trailer signature covers each line as the client sent it, newline-terminated.
    this.trailerText += `${text}\n`;
  }

  private finish(): void {
    this.state = 'done';
    if (this.signedTrailer) {
      const ctx = this.opts.ctx!;
      if (this.trailerSig === undefined) throw new S3Error('SignatureDoesNotMatch', 'Missing x-amz-trailer-signature.');
      const sts = `AWS4-HMAC-SHA256-TRAILER\n${ctx.amzDate}\n${ctx.scope}\n${this.prevSig}\n${createHash('sha256').update(this.trailerText, 'latin1').digest('hex')}`;
      if (!signaturesEqual(hmacHex(ctx.signingKey, sts), this.trailerSig)) {
        throw new S3Error('SignatureDoesNotMatch', 'The trailer signature does not match.');
      }
    }
    const { decodedLength } = this.opts;
    if (decodedLength !== undefined && this.total !== decodedLength) {
      throw new S3Error('IncompleteBody', `Decoded ${this.total} bytes, x-amz-decoded-content-length says ${decodedLength}.`);
    }
    if (this.sum && this.sumAlg) {
      const value = this.sum.digest();
      this.checksum = { algorithm: this.sumAlg, value };
      const name = `x-amz-checksum-${this.sumAlg.toLowerCase()}`;
      const sent = this.trailers[name];
      if (sent === undefined) throw new S3Error('InvalidRequest', `Declared trailer ${name} was not sent.`);
      const sentBytes = Buffer.from(sent, 'base64');
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(sent) || sentBytes.length !== checksumByteLength(this.sumAlg)) {
        throw new S3Error('InvalidDigest', `Value for ${name} is not a valid ${this.sumAlg} checksum.`);
      }
      if (!sentBytes.equals(Buffer.from(value, 'base64'))) {
        throw new S3Error('BadDigest', `The ${this.sumAlg} you specified did not match the calculated checksum.`);
      }
    }
  }
}

export function createChunkedDecoder(opts: ChunkedOptions): ChunkedDecoder {
  return new AwsChunkedDecoder(opts);
}
