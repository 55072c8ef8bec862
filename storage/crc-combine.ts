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
