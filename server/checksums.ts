// Streaming implementations of the five S3 "flexible checksum" algorithms. Every digest is
// the base64 of the big-endian checksum bytes, which is exactly what clients send in
// x-amz-checksum-* headers and trailers, so callers compare strings (or decoded bytes).

import { createHash, type Hash } from 'node:crypto';
import * as zlib from 'node:zlib';

import { crc32c } from '../storage/native';

export type ChecksumAlgorithm = 'CRC32' | 'CRC32C' | 'CRC64NVME' | 'SHA1' | 'SHA256';

export const CHECKSUM_ALGORITHMS: readonly ChecksumAlgorithm[] = ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'];

export interface StreamingChecksum {
  update(b: Buffer): void;
  /** base64 of the big-endian value, as S3 sends x-amz-checksum-* */
  digest(): string;
}

const BYTE_LENGTH: Record<ChecksumAlgorithm, number> = { CRC32: 4, CRC32C: 4, CRC64NVME: 8, SHA1: 20, SHA256: 32 };

/** Raw digest size, so a malformed client value can be told apart (InvalidDigest) from a mismatch (BadDigest). */
export function checksumByteLength(alg: ChecksumAlgorithm): number {
  return BYTE_LENGTH[alg];
}

export function checksumHeaderName(alg: ChecksumAlgorithm): string {
  return `x-amz-checksum-${alg.toLowerCase()}`;
}

/** 'x-amz-checksum-crc32' (any case) → 'CRC32'; anything else → undefined. */
export function algorithmFromHeader(name: string): ChecksumAlgorithm | undefined {
  const lower = name.trim().toLowerCase();
  const prefix = 'x-amz-checksum-';
  return lower.startsWith(prefix) ? algorithmFromName(lower.slice(prefix.length)) : undefined;
}

/** 'crc32c' / 'CRC32C' (the x-amz-checksum-algorithm / x-amz-sdk-checksum-algorithm values) → 'CRC32C'. */
export function algorithmFromName(value: string): ChecksumAlgorithm | undefined {
  const upper = value.trim().toUpperCase();
  return (CHECKSUM_ALGORITHMS as readonly string[]).includes(upper) ? (upper as ChecksumAlgorithm) : undefined;
}

export function createChecksum(alg: ChecksumAlgorithm): StreamingChecksum {
  switch (alg) {
    case 'CRC32': return new Crc32Stream((b, prev) => zlib.crc32(b, prev));
    case 'CRC32C': return new Crc32Stream((b, prev) => crc32c(b, prev));
    case 'CRC64NVME': return new Crc64NvmeStream();
    case 'SHA1': return new HashStream(createHash('sha1'));
    case 'SHA256': return new HashStream(createHash('sha256'));
    default: throw new Error(`unknown checksum algorithm ${String(alg)}`);
  }
}

class Crc32Stream implements StreamingChecksum {
  private crc = 0;
  constructor(private readonly fn: (b: Buffer, prev: number) => number) {}
  update(b: Buffer): void {
    if (b.length > 0) this.crc = this.fn(b, this.crc) >>> 0;
  }
  digest(): string {
    const out = Buffer.allocUnsafe(4);
    out.writeUInt32BE(this.crc >>> 0, 0);
    return out.toString('base64');
  }
}

class HashStream implements StreamingChecksum {
  constructor(private readonly hash: Hash) {}
  update(b: Buffer): void { this.hash.update(b); }
  digest(): string { return this.hash.digest('base64'); }
}

// CRC-64/NVME: reflected polynomial 0x9a6c9329ac4bc9b5, init and xorout all ones.
// JS has no fast 64-bit integers, so the register is kept as two uint32 halves and the
// slice-by-8 tables are split the same way: T_LO[k*256+i] / T_HI[k*256+i].
const POLY_HI = 0x9a6c9329;
const POLY_LO = 0xac4bc9b5;
const T_LO = new Uint32Array(8 * 256);
const T_HI = new Uint32Array(8 * 256);

(function buildTables() {
  for (let i = 0; i < 256; i++) {
    let lo = i, hi = 0;
    for (let bit = 0; bit < 8; bit++) {
      const carry = lo & 1;
      lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
      hi = hi >>> 1;
      if (carry) { lo = (lo ^ POLY_LO) >>> 0; hi = (hi ^ POLY_HI) >>> 0; }
    }
    T_LO[i] = lo; T_HI[i] = hi;
  }
  // Table k advances a byte through k further zero bytes: T_k[i] = (T_{k-1}[i] >> 8) ^ T_0[T_{k-1}[i] & 0xff].
  for (let k = 1; k < 8; k++) {
    for (let i = 0; i < 256; i++) {
      const pLo = T_LO[(k - 1) * 256 + i], pHi = T_HI[(k - 1) * 256 + i];
      const idx = pLo & 0xff;
      T_LO[k * 256 + i] = (((pLo >>> 8) | (pHi << 24)) ^ T_LO[idx]) >>> 0;
      T_HI[k * 256 + i] = ((pHi >>> 8) ^ T_HI[idx]) >>> 0;
    }
  }
})();

/** Advances a (non-inverted) CRC64NVME register over `b`; returns [lo, hi]. */
export function crc64NvmeUpdate(lo: number, hi: number, b: Uint8Array): [number, number] {
  const n = b.length;
  let i = 0;
  const end8 = n - (n & 7);
  for (; i < end8; i += 8) {
    const a = (lo ^ (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24))) >>> 0;
    const c = (hi ^ (b[i + 4] | (b[i + 5] << 8) | (b[i + 6] << 16) | (b[i + 7] << 24))) >>> 0;
    const i7 = 7 * 256 + (a & 0xff), i6 = 6 * 256 + ((a >>> 8) & 0xff);
    const i5 = 5 * 256 + ((a >>> 16) & 0xff), i4 = 4 * 256 + (a >>> 24);
    const i3 = 3 * 256 + (c & 0xff), i2 = 2 * 256 + ((c >>> 8) & 0xff);
    const i1 = 256 + ((c >>> 16) & 0xff), i0 = c >>> 24;
    lo = T_LO[i7] ^ T_LO[i6] ^ T_LO[i5] ^ T_LO[i4] ^ T_LO[i3] ^ T_LO[i2] ^ T_LO[i1] ^ T_LO[i0];
    hi = T_HI[i7] ^ T_HI[i6] ^ T_HI[i5] ^ T_HI[i4] ^ T_HI[i3] ^ T_HI[i2] ^ T_HI[i1] ^ T_HI[i0];
  }
  for (; i < n; i++) {
    const idx = (lo ^ b[i]) & 0xff;
    lo = ((lo >>> 8) | (hi << 24)) ^ T_LO[idx];
    hi = (hi >>> 8) ^ T_HI[idx];
  }
  return [lo >>> 0, hi >>> 0];
}

class Crc64NvmeStream implements StreamingChecksum {
  private lo = 0xffffffff;
  private hi = 0xffffffff;
  update(b: Buffer): void {
    [this.lo, this.hi] = crc64NvmeUpdate(this.lo, this.hi, b);
  }
  digest(): string {
    const out = Buffer.allocUnsafe(8);
    out.writeUInt32BE((~this.hi) >>> 0, 0);
    out.writeUInt32BE((~this.lo) >>> 0, 4);
    return out.toString('base64');
  }
}
