// Temporary drive directories for tests: real directories on the real file system.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import { Readable } from 'node:stream';

export function tempDrives(n: number, tag = 'kiln'): { root: string; drives: string[]; cleanup: () => void } {
  const root = mkdtempSync(path.join(tmpdir(), `${tag}-`));
  const drives = Array.from({ length: n }, (_, i) => path.join(root, `d${i + 1}`));
  return { root, drives, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** Deterministic pseudo-random bytes (seeded), so failures reproduce. */
export function bytes(n: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(n);
  let off = 0;
  let counter = 0;
  while (off < n) {
    const h = createHash('sha256').update(`${seed}:${counter++}`).digest();
    off += h.copy(out, off);
  }
  return out;
}

export function randomBody(n: number): Buffer { return randomBytes(n); }

/** A body delivered in uneven chunks, as a socket would. */
export function chunked(buf: Buffer, chunk = 65536): Readable {
  let off = 0;
  return new Readable({
    read() {
      if (off >= buf.length) { this.push(null); return; }
      const n = Math.min(chunk, buf.length - off);
      this.push(buf.subarray(off, off + n));
      off += n;
    },
  });
}

export async function collect(s: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c);
  return Buffer.concat(parts);
}

export function md5hex(b: Buffer): string { return createHash('md5').update(b).digest('hex'); }
