// CRC of a concatenation from the CRCs of its pieces (GF(2) matrix method): appends and
// multipart uploads get a full-object CRC32/CRC32C without reading the data again.

function times(mat: Uint32Array, vec: number): number {
  let sum = 0;
  for (let i = 0; vec !== 0; i++, vec >>>= 1) if (vec & 1) sum ^= mat[i];
  return sum >>> 0;
}

function square(out: Uint32Array, mat: Uint32Array): void {
  for (let n = 0; n < 32; n++) out[n] = times(mat, mat[n]);
}

/** CRC of A‖B given crc(A), crc(B) and |B|, for a reflected 32-bit polynomial. */
export function crcCombine(crcA: number, crcB: number, lenB: number, reflectedPoly: number): number {
  if (lenB <= 0) return crcA >>> 0;
  const even = new Uint32Array(32);
  const odd = new Uint32Array(32);
  odd[0] = reflectedPoly;
  for (let n = 1, row = 1; n < 32; n++, row <<= 1) odd[n] = row;
  square(even, odd); // 2 zero bits
  square(odd, even); // 4 zero bits
  let crc = crcA >>> 0;
  let len = lenB;
  // Apply len zero bytes to crcA, one bit of len at a time, squaring the operator each step.
  for (;;) {
    square(even, odd);
    if (len % 2) crc = times(even, crc);
    len = Math.floor(len / 2);
    if (len === 0) break;
    square(odd, even);
    if (len % 2) crc = times(odd, crc);
    len = Math.floor(len / 2);
    if (len === 0) break;
  }
  return (crc ^ crcB) >>> 0;
}

export const CRC32_POLY = 0xedb88320;
export const CRC32C_POLY = 0x82f63b78;

export const CRC64NVME_POLY = 0x9a6c9329ac4bc9b5n;
const MASK64 = (1n << 64n) - 1n;

function times64(mat: bigint[], vec: bigint): bigint {
  let sum = 0n;
  for (let i = 0; vec !== 0n; i++, vec >>= 1n) if (vec & 1n) sum ^= mat[i];
  return sum;
}

function square64(mat: bigint[]): bigint[] {
  return mat.map((row) => times64(mat, row));
}

/** The operator "append `len` zero bytes" for a reflected 64-bit CRC, cached per length. */
const ops64 = new Map<string, bigint[]>();
function zeros64(len: number, poly: bigint): bigint[] {
  const k = `${poly}:${len}`;
  const hit = ops64.get(k);
  if (hit) return hit;
  // One zero bit, then square up to one zero byte (8 bits).
  let op: bigint[] = [poly];
  for (let n = 1; n < 64; n++) op.push(1n << BigInt(n - 1));
  for (let i = 0; i < 3; i++) op = square64(op);
  let result: bigint[] | undefined;
  for (let n = len; n > 0; n = Math.floor(n / 2)) {
    if (n % 2) result = result ? result.map((row) => times64(op, row)) : op;
    if (n > 1) op = square64(op);
  }
  const out = result ?? Array.from({ length: 64 }, (_, i) => 1n << BigInt(i));
  if (ops64.size > 64) ops64.clear();
  ops64.set(k, out);
  return out;
}

/** CRC64 of A‖B from crc(A), crc(B) and |B| (values as unsigned 64-bit bigints). */
export function crc64Combine(crcA: bigint, crcB: bigint, lenB: number, poly = CRC64NVME_POLY): bigint {
  if (lenB <= 0) return crcA & MASK64;
  return (times64(zeros64(lenB, poly), crcA) ^ crcB) & MASK64;
}
