// PUT and GET throughput through storage/ alone (ObjectStore, no HTTP), each beside a raw
// file-system reference measured in the same run on the same drive directories:
//   storage/  2+2 erasure set on 4 drive directories (bitrot framing and verification always on;
//             ETag MD5 and whole-object CRC32C computed as on a real PUT)
//   raw fs    the same bytes, one plain file per object, spread over the same 4 directories.
//             PUT: durable → open, write, fsync, close; not durable → fs.writeFile.
//             GET: measured two ways, the faster is the reference: the whole file with fs
//             (open, read into one buffer, close; fastest for small files) and createReadStream
//             with 1 MiB chunks (fastest for large ones: one fresh 64 MiB buffer costs a page
//             fault per 4 KiB page).
// Rounds: a scenario runs ROUNDS rounds of PUTs, each round alternating storage/ and raw fs on
// new objects, then ROUNDS rounds of GETs, each reading one round's objects once per reader.
// The best round of each side is reported: the machine this runs on is shared, and the best
// round is the one least disturbed. Reads are page-cache hot for both sides (dropping the cache
// needs root). `sync` runs, untimed, after every write phase so that one phase's dirty pages are
// not written back on the next phase's clock.
// Bounded: every phase stops at its object count or its share of the scenario's time cap.
//
// Run: npm run build && node dist/bench/storage.js [--dir DIR] [--seconds 20]
//      [--sizes 4KiB,1MiB,64MiB] [--durable true,false] [--rounds 3]
import { execFileSync } from 'node:child_process';
import { createReadStream, promises as fsp, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ObjectStore } from '../storage';
import { DEFAULT_INLINE_THRESHOLD } from '../storage/constants';
import { arg } from './args';

// The server (server/kiln.cjs) runs with 16 libuv threads; so do both sides here. Must be set
// before the pool's first use, which happens after this line.
if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = '16';

const KiB = 1024;
const MiB = 1024 * KiB;

interface Scenario { name: string; size: number; count: number; concurrency: number }
const ALL: Scenario[] = [
  { name: '4KiB', size: 4 * KiB, count: 2000, concurrency: 16 },
  { name: '1MiB', size: MiB, count: 200, concurrency: 8 },
  { name: '64MiB', size: 64 * MiB, count: 8, concurrency: 2 },
];
const DIR = path.resolve(arg('--dir', tmpdir()));
const CAP_S = Number(arg('--seconds', process.env.BENCH_SECONDS ?? '20'));
const ROUNDS = Math.max(1, Number(arg('--rounds', '3')));
const SIZES = arg('--sizes', ALL.map((s) => s.name).join(',')).split(',');
const DURABLE = arg('--durable', 'true,false').split(',').map((s) => s === 'true');
const SCENARIOS = ALL.filter((s) => SIZES.includes(s.name));
/** Shares of the scenario's time cap: all PUT phases together, all GET phases together. */
const PUT_SHARE = 0.7;
const GET_SHARE = 0.3;
/** Body chunk size handed to putObject, as a socket would deliver it. */
const CHUNK = 64 * KiB;

interface Phase { done: number; secs: number; cpu: number }
const rate = (p: Phase) => p.done / p.secs;
const best = (a: Phase | undefined, b: Phase) => (a && rate(a) >= rate(b) ? a : b);

/** Run op(0..count-1) with `concurrency` workers until all are done or `capS` seconds pass. */
async function phase(count: number, concurrency: number, capS: number, op: (i: number) => Promise<void>): Promise<Phase> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + capS * 1000;
  let next = 0;
  let done = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count && performance.now() < deadline) {
      const i = next++;
      await op(i);
      done++;
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(cpu0);
  return { done, secs, cpu: (c.user + c.system) / 1e6 / secs };
}

async function* chunks(buf: Buffer): AsyncGenerator<Buffer> {
  for (let o = 0; o < buf.length; o += CHUNK) yield buf.subarray(o, Math.min(o + CHUNK, buf.length));
}

async function drain(s: AsyncIterable<Buffer>): Promise<number> {
  let n = 0;
  for await (const c of s) n += c.length;
  return n;
}

async function rawWrite(file: string, buf: Buffer, durable: boolean): Promise<void> {
  if (!durable) return fsp.writeFile(file, buf);
  const h = await fsp.open(file, 'w');
  try {
    await h.writeFile(buf);
    await h.sync();
  } finally {
    await h.close();
  }
}

async function rawReadWhole(file: string, size: number): Promise<number> {
  const h = await fsp.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const { bytesRead } = await h.read(buf, off, size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return off;
  } finally {
    await h.close();
  }
}

function rawReadStream(file: string): Promise<number> {
  return drain(createReadStream(file, { highWaterMark: MiB }) as AsyncIterable<Buffer>);
}

function syncAll(): void { execFileSync('sync'); }

interface Row { sc: Scenario; durable: boolean; op: 'PUT' | 'GET'; kiln: Phase; raw: Phase; how: string }

async function scenario(sc: Scenario, durable: boolean): Promise<Row[]> {
  const root = mkdtempSync(path.join(DIR, 'kiln-bench-'));
  try {
    const drives = [0, 1, 2, 3].map((i) => path.join(root, `drive${i}`));
    const store = await ObjectStore.open({ drives, parity: 2, durable });
    const rawDirs = drives.map((d) => path.join(d, 'raw-reference'));
    for (const d of rawDirs) mkdirSync(d, { recursive: true });
    try {
      await store.createBucket('bench');
      const payload = randomBytes(sc.size);
      const c = sc.concurrency;
      const name = (r: number, i: number) => `r${r}-o${i}`;
      const rawFile = (r: number, i: number) => path.join(rawDirs[i % rawDirs.length], name(r, i));
      const putCap = (CAP_S * PUT_SHARE) / (2 * ROUNDS);
      const getCap = (CAP_S * GET_SHARE) / (3 * ROUNDS);
      syncAll();

      let kPut: Phase | undefined;
      let rPut: Phase | undefined;
      const kDone: number[] = [];
      const rDone: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const k = await phase(sc.count, c, putCap, async (i) => { await store.putObject('bench', name(r, i), chunks(payload)); });
        syncAll();
        const w = await phase(sc.count, c, putCap, (i) => rawWrite(rawFile(r, i), payload, durable));
        syncAll();
        kPut = best(kPut, k);
        rPut = best(rPut, w);
        kDone.push(k.done);
        rDone.push(w.done);
      }

      // Sanity, untimed: what storage/ returns is what was written.
      const got: Buffer[] = [];
      for await (const b of (await store.getObject('bench', name(0, 0))).stream) got.push(b as Buffer);
      if (!Buffer.concat(got).equals(payload)) throw new Error('storage/ returned different bytes');

      let kGet: Phase | undefined;
      let rWhole: Phase | undefined;
      let rStream: Phase | undefined;
      const check = (n: number) => { if (n !== sc.size) throw new Error(`short read: ${n} of ${sc.size}`); };
      for (let r = 0; r < ROUNDS; r++) {
        kGet = best(kGet, await phase(kDone[r], c, getCap, async (i) => check(await drain((await store.getObject('bench', name(r, i))).stream))));
        rWhole = best(rWhole, await phase(rDone[r], c, getCap, async (i) => check(await rawReadWhole(rawFile(r, i), sc.size))));
        rStream = best(rStream, await phase(rDone[r], c, getCap, async (i) => check(await rawReadStream(rawFile(r, i)))));
      }
      const streamWins = rate(rStream!) > rate(rWhole!);
      return [
        { sc, durable, op: 'PUT', kiln: kPut!, raw: rPut!, how: durable ? 'write+fsync' : 'writeFile' },
        { sc, durable, op: 'GET', kiln: kGet!, raw: streamWins ? rStream! : rWhole!, how: streamWins ? 'stream 1 MiB' : 'whole file' },
      ];
    } finally {
      await store.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const load0 = loadavg();
  const started = performance.now();
  const rows: Row[] = [];
  for (const durable of DURABLE) {
    for (const sc of SCENARIOS) {
      rows.push(...await scenario(sc, durable));
      process.stderr.write(`done: ${sc.name} durable=${durable}\n`);
    }
  }
  const load1 = loadavg();
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
  const out = [
    '### storage/ (2+2 on 4 drive directories, bitrot on) vs raw fs, same disk, same run',
    '',
    `${new Date().toISOString()}; dir ${DIR}; UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE}; body chunks ${CHUNK / KiB} KiB; ` +
      `best of ${ROUNDS} rounds per cell; cap ${CAP_S} s per scenario (whole run ${((performance.now() - started) / 1000).toFixed(0)} s); ` +
      `load average ${load0[0].toFixed(2)} before, ${load1[0].toFixed(2)} after. ` +
      `Objects ≤ ${DEFAULT_INLINE_THRESHOLD / KiB} KiB are stored inline in the index (no shard files). ` +
      'CPU: process CPU time over wall time in the best round (100% = one core busy).',
    '',
    '| object | objects × concurrency | durable | op | storage/ ops/s | storage/ MiB/s | raw fs ops/s | raw fs MiB/s | raw fs how | storage/raw | CPU storage/ · raw |',
    '|---|---|---|---|---:|---:|---:|---:|---|---:|---|',
  ];
  for (const r of rows) {
    const mib = (p: Phase) => (p.done * r.sc.size) / MiB / p.secs;
    const partial = r.kiln.done < r.sc.count ? ` (${r.kiln.done} in cap)` : '';
    out.push(`| ${r.sc.name} | ${r.sc.count} × ${r.sc.concurrency}${partial} | ${r.durable} | ${r.op} | ` +
      `${f(rate(r.kiln))} | ${f(mib(r.kiln))} | ${f(rate(r.raw))} | ${f(mib(r.raw))} | ${r.how} | ${(rate(r.kiln) / rate(r.raw)).toFixed(2)} | ` +
      `${(r.kiln.cpu * 100).toFixed(0)}% · ${(r.raw.cpu * 100).toFixed(0)}% |`);
  }
  const big = rows.filter((r) => r.sc.name === '64MiB');
  if (big.length) out.push('');
  for (const r of big) {
    const ratio = rate(r.kiln) / rate(r.raw);
    const target = r.op === 'GET' ? 0.7 : 0.5;
    out.push(`Target 64 MiB ${r.op} ≥ ${target * 100}% of raw (durable=${r.durable}): ${(ratio * 100).toFixed(0)}% — ${ratio >= target ? 'met' : 'NOT met'}.  `);
  }
  console.log(out.join('\n'));
}

main().catch((e) => { console.error(e); process.exit(1); });
