// PUT and GET through storage/ alone (no HTTP), each beside the raw file system writing and
// reading the same bytes on the same drive directories in the same run; reported as ratios.
// Run: node dist/bench/storage.js [--dir DIR]. Bounded: every scenario stops after its object
// count or BENCH_SECONDS seconds, whichever comes first.
import { mkdtempSync, rmSync, promises as fsp, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ObjectStore } from '../storage';

const MiB = 1024 * 1024;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const argDir = process.argv.indexOf('--dir') >= 0 ? process.argv[process.argv.indexOf('--dir') + 1] : tmpdir();

interface Scenario { name: string; size: number; count: number; concurrency: number }
const SCENARIOS: Scenario[] = [
  { name: '4 KiB', size: 4 * 1024, count: 2000, concurrency: 16 },
  { name: '1 MiB', size: MiB, count: 200, concurrency: 8 },
  { name: '64 MiB', size: 64 * MiB, count: 8, concurrency: 2 },
];

async function run(count: number, concurrency: number, op: (i: number) => Promise<void>): Promise<{ done: number; secs: number }> {
  const start = performance.now();
  const deadline = start + SECONDS * 1000;
  let next = 0;
  let done = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count && performance.now() < deadline) { const i = next++; await op(i); done++; }
  }));
  return { done, secs: (performance.now() - start) / 1000 };
}

function body(buf: Buffer): Readable {
  // Deliver in 64 KiB chunks, as a socket would.
  const chunks: Buffer[] = [];
  for (let o = 0; o < buf.length; o += 65536) chunks.push(buf.subarray(o, o + 65536));
  return Readable.from(chunks);
}

async function rawWrite(file: string, buf: Buffer, durable: boolean): Promise<void> {
  const h = await fsp.open(file, 'w');
  try {
    await h.writeFile(buf);
    if (durable) await h.sync();
  } finally { await h.close(); }
}

async function drain(s: AsyncIterable<Buffer>): Promise<number> {
  let n = 0;
  for await (const c of s) n += c.length;
  return n;
}

async function main(): Promise<void> {
  const rows: string[] = [];
  for (const durable of [true, false]) {
    for (const sc of SCENARIOS) {
      const root = mkdtempSync(path.join(argDir, 'kiln-bench-'));
      try {
        const drives = [1, 2, 3, 4].map((i) => path.join(root, `d${i}`));
        const rawDir = path.join(root, 'raw');
        mkdirSync(rawDir);
        const store = await ObjectStore.open({ drives, durable });
        await store.createBucket('bench');
        const payload = randomBytes(sc.size);
        const put = await run(sc.count, sc.concurrency, async (i) => { await store.putObject('bench', `o${i}`, body(payload)); });
        const get = await run(put.done, sc.concurrency, async (i) => { await drain((await store.getObject('bench', `o${i}`)).stream); });
        const rawPut = await run(sc.count, sc.concurrency, async (i) => rawWrite(path.join(rawDir, `o${i}`), payload, durable));
        const rawGet = await run(rawPut.done, sc.concurrency, async (i) => { await fsp.readFile(path.join(rawDir, `o${i}`)); });
        await store.close();
        const rate = (r: { done: number; secs: number }) => r.done / r.secs;
        const mib = (r: { done: number; secs: number }) => (r.done * sc.size) / MiB / r.secs;
        const fmt = (r: { done: number; secs: number }) => `${rate(r).toFixed(0)} ops/s, ${mib(r).toFixed(0)} MiB/s`;
        rows.push(`| ${sc.name} | ${durable ? 'strict' : 'relaxed'} | PUT | ${fmt(put)} | ${fmt(rawPut)} | ${(rate(put) / rate(rawPut)).toFixed(2)} |`);
        rows.push(`| ${sc.name} | ${durable ? 'strict' : 'relaxed'} | GET | ${fmt(get)} | ${fmt(rawGet)} | ${(rate(get) / rate(rawGet)).toFixed(2)} |`);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    }
  }
  console.log('\n### storage/ (2+2 on 4 drive directories, bitrot on) vs raw files on the same disk\n');
  console.log('| object | durability | op | storage/ | raw fs | ratio |\n|---|---|---|---|---|---|');
  console.log(rows.join('\n'));
}

void main();
