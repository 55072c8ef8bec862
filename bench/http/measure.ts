// Bounded load loops and what they report: ops/s, MiB/s, latency percentiles, errors, and the CPU
// seconds of the server's process tree (from /proc) and of this client process.
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

export interface Result {
  ops: number;
  seconds: number;
  bytes: number;
  errors: number;
  p50: number;
  p90: number;
  p99: number;
  /** Latency of the first operation (listing: the first page), ms. */
  first: number;
  serverCpu: number;
  clientCpu: number;
}

const TICK = 100; // USER_HZ on Linux

function cpuOf(pid: number, tid?: number): number {
  try {
    const f = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICK; // utime + stime
  } catch { return 0; }
}

/** CPU seconds used so far by a process's main thread (its event loop, for Node). */
export function mainThreadCpu(pid: number): number { return cpuOf(pid, pid); }

/** Bytes a process has caused to be written to disk so far (page-cache write-back included). */
export function diskWritten(pid: number): number {
  try {
    return Number(/write_bytes: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
  } catch { return 0; }
}

/** CPU seconds used so far by pid and all its descendants (nginx workers, node worker threads are in-process). */
export function treeCpu(root: number): number {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const f = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(f.slice(f.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(d));
      children.set(ppid, list);
    } catch { /* gone */ }
  }
  let total = 0;
  const stack = [root];
  while (stack.length) {
    const p = stack.pop()!;
    total += cpuOf(p);
    stack.push(...(children.get(p) ?? []));
  }
  return total;
}

/** What one client process measured in one cell, before percentiles (several processes merge). */
export interface Raw { lat: number[]; bytes: number; errors: number; first: number; seconds: number; clientCpu: number }

/**
 * Warm-up: the same operations, not recorded (JIT, caches, keep-alive connections), with
 * indices far from the measured ones so keys written do not collide.
 */
export async function warmUp(concurrency: number, op: (i: number) => Promise<number>, warm: { seconds: number; maxOps: number; reset?: () => void }): Promise<void> {
  if (warm.seconds <= 0) return;
  let w = 0;
  const until = performance.now() + warm.seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (w < warm.maxOps && performance.now() < until) await op(1_000_000_000 + w++).catch(() => -1);
  }));
  warm.reset?.();
}

/** Run `op` from `concurrency` loops until `maxOps` operations or `seconds` have passed, whichever first. */
export async function measure(concurrency: number, maxOps: number, seconds: number, op: (i: number) => Promise<number>): Promise<Raw> {
  const lat: number[] = [];
  let next = 0;
  let bytes = 0;
  let errors = 0;
  let first = -1;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < maxOps && performance.now() < deadline) {
      const i = next++;
      const a = performance.now();
      let n = -1;
      try { n = await op(i); } catch { n = -1; }
      const ms = performance.now() - a;
      if (i === 0) first = ms;
      if (n < 0) errors++;
      else { bytes += n; lat.push(ms); }
    }
  }));
  const c = process.cpuUsage(c0);
  return { lat, bytes, errors, first, seconds: (performance.now() - t0) / 1000, clientCpu: (c.user + c.system) / 1e6 };
}

/** One result from the raw figures of every client process (they ran side by side). */
export function summarize(raws: Raw[], serverCpu: number): Result {
  const lat = raws.flatMap((r) => r.lat).sort((x, y) => x - y);
  const pct = (q: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * q))] : NaN);
  const sum = (f: (r: Raw) => number) => raws.reduce((a, r) => a + f(r), 0);
  return {
    ops: lat.length, seconds: Math.max(...raws.map((r) => r.seconds)), bytes: sum((r) => r.bytes), errors: sum((r) => r.errors),
    p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), first: raws[0].first, serverCpu, clientCpu: sum((r) => r.clientCpu),
  };
}

/** Warm up, then measure, in this process. */
export async function load(serverPid: number, concurrency: number, maxOps: number, seconds: number, op: (i: number) => Promise<number>,
  warm: { seconds: number; maxOps: number; reset?: () => void } = { seconds: 0, maxOps: 0 }): Promise<Result> {
  await warmUp(concurrency, op, warm);
  const s0 = treeCpu(serverPid);
  const raw = await measure(concurrency, maxOps, seconds, op);
  return summarize([raw], treeCpu(serverPid) - s0);
}

/** The drive itself, with dd: sequential 64 MiB writes (direct, buffered+fsync) and 4 KiB writes each made durable. */
export function rawDrive(dir: string): { direct: number; fsync: number; syncWrites: number } {
  const file = path.join(dir, 'dd.bin');
  const dd = (args: string[]): number => {
    const t0 = performance.now();
    execFileSync('dd', ['if=/dev/zero', `of=${file}`, ...args], { stdio: 'ignore' });
    return (performance.now() - t0) / 1000;
  };
  const direct = 256 / dd(['bs=1M', 'count=256', 'oflag=direct']);
  const fsync = 256 / dd(['bs=1M', 'count=256', 'conv=fsync']);
  const syncWrites = 2000 / dd(['bs=4k', 'count=2000', 'oflag=dsync']);
  execFileSync('rm', ['-f', file]);
  return { direct, fsync, syncWrites };
}
