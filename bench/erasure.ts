// Erasure-coding and hashing throughput per core on 1 MiB blocks (the PUT/GET kernels).
// Run: npm run bench:storage (or node dist/bench/erasure.js). UV_THREADPOOL_SIZE=1 pins the
// native Reed-Solomon work to one libuv thread, so "1 in flight" is a per-core figure.
import { createHash, randomBytes } from 'node:crypto';
import { Erasure } from '../storage/erasure';
import { crc } from '../storage/bitrot';

const MiB = 1024 * 1024;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);

async function timed(label: string, bytesPerOp: number, inflight: number, op: () => Promise<void> | void): Promise<string> {
  const deadline = performance.now() + SECONDS * 1000;
  let ops = 0;
  const start = performance.now();
  const worker = async () => {
    while (performance.now() < deadline && ops < 1_000_000) { await op(); ops++; }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  const secs = (performance.now() - start) / 1000;
  const mbps = (ops * bytesPerOp) / secs / 1e6;
  return `| ${label} | ${inflight} | ${mbps.toFixed(0)} |`;
}

async function main(): Promise<void> {
  const rows: string[] = [];
  for (const [d, p] of [[4, 2], [8, 4]] as const) {
    const er = new Erasure(d, p, MiB);
    const S = er.shardSize(MiB);
    const data = randomBytes(S * d);
    const parity = Buffer.alloc(S * p);
    await er.encode(data, parity, S);
    for (const inflight of [1, 2]) {
      rows.push(await timed(`RS ${d}+${p} encode`, MiB, inflight, () => er.encode(data, Buffer.alloc(S * p), S)));
    }
    for (const lost of [1, p]) {
      const missing = Array.from({ length: lost }, (_, i) => i);
      rows.push(await timed(`RS ${d}+${p} rebuild ${lost} data shard(s)`, MiB, 1, async () => {
        const dd = Buffer.from(data);
        await er.reconstruct(dd, Buffer.from(parity), S, missing);
      }));
    }
  }
  const block = randomBytes(MiB);
  rows.push(await timed('CRC32C (fast-crc32c)', MiB, 1, () => { crc(block); }));
  rows.push(await timed('MD5 (node:crypto)', MiB, 1, () => { createHash('md5').update(block).digest(); }));
  console.log(`\n### Kernels, 1 MiB blocks, MB/s of data (UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 'default'})\n`);
  console.log('| kernel | in flight | MB/s |\n|---|---|---|');
  console.log(rows.join('\n'));
}

void main();
