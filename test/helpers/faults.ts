// Helpers for the fault-injection suites: where shards live, how to damage them, how to read a
// whole object back, and how to wait (bounded, by condition) for background work to settle.
import { promises as fsp, openSync, readSync, writeSync, closeSync, existsSync, readdirSync, statSync, chmodSync } from 'node:fs';
import * as path from 'node:path';
import { createHash, createCipheriv } from 'node:crypto';
import { ObjectStore } from '../../storage';
import { collect } from './drives';

/** Shard file of `dataDir` under a drive root: <drive>/data/<first 2 chars>/<dataDir>/shard. */
export function shardPath(driveRoot: string, dataDir: string): string {
  return path.join(driveRoot, 'data', dataDir.slice(0, 2), dataDir, 'shard');
}

/** Read a whole object (or [start, end)) into memory. */
export async function readObject(store: ObjectStore, bucket: string, key: string, range?: { start: number; end: number }): Promise<Buffer> {
  const got = await store.getObject(bucket, key, range);
  return collect(got.stream);
}

/** Deterministic pseudo-random bytes (AES-128-CTR keystream of the seed): fast for MiB-sized bodies. */
export function body(n: number, seed: number): Buffer {
  const k = createHash('sha256').update(`kiln-body:${seed}`).digest();
  const c = createCipheriv('aes-128-ctr', k.subarray(0, 16), k.subarray(16, 32));
  return Buffer.concat([c.update(Buffer.alloc(n)), c.final()]);
}

export function md5(b: Buffer): string { return createHash('md5').update(b).digest('hex'); }

/** XOR one byte of a file in place (0xff flips every bit, so the byte always changes). */
export function flipByte(file: string, offset: number): void {
  const fd = openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    if (readSync(fd, b, 0, 1, offset) !== 1) throw new Error(`offset ${offset} beyond end of ${file}`);
    b[0] ^= 0xff;
    writeSync(fd, b, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

/**
 * Wait until `cond()` holds, yielding to the event loop between checks. The bound is on the number
 * of checks, not on wall-clock time; reaching it is a failure reported by the caller.
 */
export async function waitUntil(cond: () => boolean | Promise<boolean>, maxChecks = 2000): Promise<boolean> {
  for (let i = 0; i < maxChecks; i++) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return cond();
}

/** Let heals and deferred data-dir removals finish. */
export async function settle(store: ObjectStore): Promise<void> {
  await store.healer.drain();
  const ok = await waitUntil(() => store.pendingRemovals === 0);
  if (!ok) throw new Error(`${store.pendingRemovals} data-dir removals still pending`);
}

/** Every file (not directory) below `dir`, as paths relative to it. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out;
}

/** Every data dir (by id) present on a drive: <drive>/data/<fan>/<id>. */
export function dataDirsOn(driveRoot: string): string[] {
  const root = path.join(driveRoot, 'data');
  if (!existsSync(root)) return [];
  const out: string[] = [];
  for (const fan of readdirSync(root)) {
    const f = path.join(root, fan);
    if (!statSync(f).isDirectory()) continue;
    for (const id of readdirSync(f)) out.push(id);
  }
  return out;
}

/** Entries of a directory, [] when it does not exist. */
export function entries(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}

/**
 * Does chmod 000 actually stop this process from reading? Not when running as root (or with
 * CAP_DAC_OVERRIDE), which is common in containers and CI.
 */
export async function chmodBlocksReads(scratchDir: string): Promise<boolean> {
  const probe = path.join(scratchDir, `chmod-probe-${process.pid}`);
  await fsp.writeFile(probe, 'x');
  chmodSync(probe, 0o000);
  try {
    await fsp.readFile(probe);
    return false;
  } catch {
    return true;
  } finally {
    chmodSync(probe, 0o600);
    await fsp.rm(probe, { force: true });
  }
}

/** Every combination of k items out of 0..n-1, in lexicographic order. */
export function combinations(n: number, k: number): number[][] {
  const out: number[][] = [];
  const cur: number[] = [];
  const rec = (from: number) => {
    if (cur.length === k) { out.push([...cur]); return; }
    for (let i = from; i < n; i++) { cur.push(i); rec(i + 1); cur.pop(); }
  };
  rec(0);
  return out;
}

/** A small seeded PRNG (mulberry32), so random schedules reproduce from the printed seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
