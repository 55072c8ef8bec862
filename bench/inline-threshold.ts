// Where should small objects stop living in the index and start being erasure-coded shard
// files? PUT and GET rates for sizes around the threshold, stored inline and stored as shards,
// on 2+2 over 4 drive directories, durable, with the bytes written to disk and the CPU per PUT.
// PUTs run long enough (BENCH_SECONDS, default 20) for LevelDB's compaction to catch up with
// them: in the first seconds an index takes writes into its memtable and owes the compaction
// (a 4-second run showed inline 128 KiB PUTs twice as fast as shard files; sustained, they ran
// at half the shard rate). Run: node dist/bench/inline-threshold.js [sizes in KiB, e.g. 4,64]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ObjectStore } from '../storage';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const SIZES = (process.argv[2] ?? '4,16,32,64,128,256').split(',').map((k) => Number(k) * 1024);
const CONCURRENCY = 8;
const MAX_OPS = 200_000;
const GET_SECONDS = 4;

/** Bytes this process has had written to disk (page cache write-back included). */
const diskWritten = (): number => Number(/write_bytes: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? 0);

async function rate(op: (i: number) => Promise<void>, seconds: number, limit = MAX_OPS): Promise<number> {
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let next = 0;
  let done = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < limit && performance.now() < deadline) { await op(next++); done++; }
  }));
  return done / ((performance.now() - start) / 1000);
}

async function main(): Promise<void> {
  const rows: string[] = [];
  for (const size of SIZES) {
    const cells: string[] = [];
    for (const inline of [true, false]) {
      const root = mkdtempSync(path.join(tmpdir(), 'kiln-inline-'));
      try {
        const store = await ObjectStore.open({ drives: [1, 2, 3, 4].map((i) => path.join(root, `d${i}`)), inlineThreshold: inline ? 1024 * 1024 : 0 });
        await store.createBucket('b');
        const body = randomBytes(size);
        let written = 0;
        const cpu0 = process.cpuUsage();
        const disk0 = diskWritten();
        const put = await rate(async (i) => { await store.putObject('b', `k${i}`, Readable.from([body])); written = Math.max(written, i + 1); }, SECONDS);
        const cpu = process.cpuUsage(cpu0);
        const perPut = (x: number) => x / (put * SECONDS);
        const disk = perPut(diskWritten() - disk0) / size;
        const get = await rate(async (i) => { for await (const _ of (await store.getObject('b', `k${i % written}`)).stream) { /* drain */ } }, GET_SECONDS);
        await store.close();
        cells.push(`${put.toFixed(0)} / ${get.toFixed(0)} | ${disk.toFixed(1)}x | ${(perPut(cpu.user + cpu.system) / 1000).toFixed(2)} ms`);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    }
    rows.push(`| ${size / 1024} KiB | ${cells[0]} | ${cells[1]} |`);
  }
  console.log(`\n### Inline vs shard files (2+2, durable, 8 in flight, PUTs for ${SECONDS} s, then GETs for ${GET_SECONDS} s)\n`);
  console.log('PUT / GET ops/s, bytes written to disk per byte PUT, CPU per PUT (all threads)\n');
  console.log('| size | inline: PUT / GET | written | CPU | shard files: PUT / GET | written | CPU |\n|---|---|---:|---:|---|---:|---:|');
  console.log(rows.join('\n'));
}

void main();
