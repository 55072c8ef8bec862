// Where should small objects stop living in the index and start being erasure-coded shard
// files? PUT and GET rates for sizes around the threshold, stored inline and stored as shards,
// on 2+2 over 4 drive directories, durable. Run: node dist/bench/inline-threshold.js
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ObjectStore } from '../storage';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const SIZES = [4, 32, 64, 128, 256].map((k) => k * 1024);
const CONCURRENCY = 8;
const MAX_OPS = 3000;

async function rate(op: (i: number) => Promise<void>, limit = MAX_OPS): Promise<number> {
  const start = performance.now();
  const deadline = start + SECONDS * 1000;
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
        const put = await rate(async (i) => { await store.putObject('b', `k${i}`, Readable.from([body])); written = Math.max(written, i + 1); });
        const get = await rate(async (i) => { for await (const _ of (await store.getObject('b', `k${i % written}`)).stream) { /* drain */ } });
        await store.close();
        cells.push(`${put.toFixed(0)} / ${get.toFixed(0)}`);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    }
    rows.push(`| ${size / 1024} KiB | ${cells[0]} | ${cells[1]} |`);
  }
  console.log('\n### Inline vs shard files: PUT / GET ops/s (2+2, durable, 8 in flight)\n');
  console.log('| size | inline in the index | erasure-coded shard files |\n|---|---|---|');
  console.log(rows.join('\n'));
}

void main();
