// What-if measurements behind the profile findings in bench/README.md. Each one runs storage/ as
// it is beside storage/ with one cost removed by patching at run time (nothing in storage/ is
// changed on disk), in alternating rounds, best round of each reported. These are upper bounds
// for a fix, not proposals to drop the work: bitrot verification and the MD5 ETag stay required.
//
//   node dist/bench/what-if.js get        64 MiB GET: as is / raw fs stream
//   node dist/bench/what-if.js put [durable]  64 MiB PUT: as is / no MD5 / raw fs
//   node dist/bench/what-if.js inline [durable]  4 KiB PUT+GET: as is / inline bytes kept out of the record JSON
//   node dist/bench/what-if.js md5-memory  peak RSS of 8 concurrent 1 GiB PUTs (--mib to change), with and without MD5
// Options: --dir DIR (default: the OS temp dir), --rounds N (default 3). md5-memory writes
// 2 × 8 × 1 GiB: mind the space, and use a tmpfs dir only if RAM allows.
import { execFileSync } from 'node:child_process';
import { createReadStream, promises as fsp, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ObjectStore, PutOptions } from '../storage';
import { arg } from './args';

if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = '16';

const MiB = 1024 * 1024;
const DIR = path.resolve(arg('--dir', tmpdir()));
const ROUNDS = Number(arg('--rounds', '3'));
const what = process.argv[2] ?? 'get';
const durable = process.argv[3] === 'true';

// CRC32C checks and frames now run in the native addon on the thread pool (storage/native.ts);
// the run-time patches of bitrot.ts that measured them on the event loop are gone with them.
// `KILN_NATIVE=off node dist/bench/what-if.js get` measures the JavaScript fallback instead.

async function* chunks(buf: Buffer, total = buf.length): AsyncGenerator<Buffer> {
  for (let o = 0; o < total; o += 64 * 1024) {
    const at = o % buf.length;
    yield buf.subarray(at, Math.min(at + 64 * 1024, buf.length));
  }
}
async function drain(s: AsyncIterable<Buffer>): Promise<void> { for await (const _ of s) { /* discard */ } }

/** ops/s and process CPU (1.0 = one core) of n ops over `conc` workers. */
async function timed(n: number, conc: number, op: (i: number) => Promise<unknown>): Promise<{ rate: number; cpu: number }> {
  let next = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: conc }, async () => { while (next < n) await op(next++); }));
  const s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { rate: n / s, cpu: (c.user + c.system) / 1e6 / s };
}

async function withStore<T>(fn: (store: ObjectStore, root: string) => Promise<T>): Promise<T> {
  const root = mkdtempSync(path.join(DIR, 'kiln-whatif-'));
  const store = await ObjectStore.open({ drives: [0, 1, 2, 3].map((i) => path.join(root, `drive${i}`)), parity: 2, durable });
  try {
    await store.createBucket('b');
    return await fn(store, root);
  } finally {
    await store.close();
    rmSync(root, { recursive: true, force: true });
  }
}

/** Run every variant ROUNDS times, alternating, and print the best round of each. */
async function compare(unit: string, scale: number, variants: [string, () => Promise<{ rate: number; cpu: number }>][], ref: string): Promise<void> {
  const best = new Map<string, { rate: number; cpu: number }>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, run] of variants) {
      const x = await run();
      if (!best.has(name) || x.rate > best.get(name)!.rate) best.set(name, x);
    }
  }
  const base = best.get(ref)!.rate;
  console.log(`| ${what} (durable=${durable}) | ${unit} | CPU | vs ${ref} |\n|---|---:|---:|---:|`);
  for (const [name, x] of best) console.log(`| ${name} | ${(x.rate * scale).toFixed(0)} | ${(x.cpu * 100).toFixed(0)}% | ${((x.rate / base) * 100).toFixed(0)}% |`);
}

async function get(): Promise<void> {
  const N = 8;
  await withStore(async (store, root) => {
    const payload = randomBytes(64 * MiB);
    const raw = (i: number) => path.join(root, `drive${i % 4}`, `raw${i}`);
    for (let i = 0; i < N; i++) {
      await store.putObject('b', `o${i}`, chunks(payload));
      await fsp.writeFile(raw(i), payload);
    }
    execFileSync('sync');
    const kiln = () => timed(N, 2, async (i) => drain((await store.getObject('b', `o${i}`)).stream));
    await compare('MiB/s', 64, [
      ['storage/ as is', kiln],
      ['raw fs, createReadStream 1 MiB', () => timed(N, 2, (i) => drain(createReadStream(raw(i), { highWaterMark: MiB }) as AsyncIterable<Buffer>))],
    ], 'raw fs, createReadStream 1 MiB');
  });
}

async function put(): Promise<void> {
  const N = 8;
  await withStore(async (store, root) => {
    const payload = randomBytes(64 * MiB);
    let seq = 0;
    const round = (op: (id: number) => Promise<unknown>) => async () => {
      execFileSync('sync');
      const base = seq;
      seq += N;
      return timed(N, 2, (i) => op(base + i));
    };
    const kiln = (opts: PutOptions) => round((id) => store.putObject('b', `o${id}`, chunks(payload), opts));
    await compare('MiB/s', 64, [
      ['storage/ as is', kiln({})],
      ['storage/, no MD5 (etag random)', kiln({ etag: 'random' })],
      [durable ? 'raw fs, write + fsync' : 'raw fs, writeFile', round(async (id) => {
        const file = path.join(root, `drive${id % 4}`, `raw${id}`);
        if (!durable) return fsp.writeFile(file, payload);
        const h = await fsp.open(file, 'w');
        try { await h.writeFile(payload); await h.sync(); } finally { await h.close(); }
      })],
    ], 'storage/ as is');
  });
}

async function inline(): Promise<void> {
  const N = 2000;
  await withStore(async (store) => {
    const payload = randomBytes(4096);
    const proto = ObjectStore.prototype as unknown as { writeBody: (...a: unknown[]) => Promise<{ inlineBytes?: Buffer }> };
    const orig = proto.writeBody;
    // The fix under test: the part record handed to commitObject no longer carries inlineBytes
    // into the JSON (a non-enumerable property is skipped by JSON.stringify).
    const fixed = async function (this: unknown, ...a: unknown[]) {
      const r = await orig.apply(this, a);
      if (r.inlineBytes) Object.defineProperty(r, 'inlineBytes', { value: r.inlineBytes, enumerable: false });
      return r;
    };
    let seq = 0;
    const pair = (wb: typeof orig): [() => Promise<{ rate: number; cpu: number }>, () => Promise<{ rate: number; cpu: number }>] => {
      let base = 0;
      return [async () => {
        proto.writeBody = wb;
        base = seq;
        seq += N;
        try { return await timed(N, 16, (i) => store.putObject('b', `o${base + i}`, chunks(payload))); } finally { proto.writeBody = orig; }
      }, () => timed(N, 16, async (i) => drain((await store.getObject('b', `o${base + i}`)).stream))];
    };
    const [putAsIs, getAsIs] = pair(orig);
    const [putFixed, getFixed] = pair(fixed);
    await compare('ops/s', 1, [['PUT as is', putAsIs], ['GET as is', getAsIs], ['PUT, inline bytes out of the record', putFixed], ['GET, inline bytes out of the record', getFixed]], 'PUT as is');
    const rec = async (k: string) => (await store.index.get(Buffer.concat([Buffer.from('o'), Buffer.from(`b\0${k}`)])))?.length;
    console.log(`\nobject record: ${await rec('o0')} bytes as is, ${await rec(`o${seq - 1}`)} bytes with the fix (4096-byte object)`);
  });
}

async function md5Memory(): Promise<void> {
  // Each variant in its own process: RSS does not shrink after a run, so sharing one would hide the second peak.
  if (!process.argv.includes('--variant')) {
    for (const v of ['md5', 'random']) {
      execFileSync(process.execPath, [__filename, ...process.argv.slice(2), '--variant', v], { stdio: 'inherit' });
    }
    return;
  }
  const opts: PutOptions = arg('--variant', 'md5') === 'random' ? { etag: 'random' } : {};
  const C = 8;
  const size = Number(arg('--mib', '1024')) * MiB;
  await withStore(async (store) => {
    const src = randomBytes(64 * MiB);
    let peak = 0;
    const t = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: C }, (_, j) => store.putObject('b', `o${j}`, chunks(src, size), opts)));
    clearInterval(t);
    const s = (performance.now() - t0) / 1000;
    console.log(`${C} × ${size / MiB} MiB PUT ${opts.etag ? 'without MD5' : 'with MD5 (as is)'}: ${((C * size) / MiB / s).toFixed(0)} MiB/s, RSS ${(rss0 / MiB).toFixed(0)} MiB before, peak ${(peak / MiB).toFixed(0)} MiB`);
  });
}

const cases: Record<string, () => Promise<void>> = { get, put, inline, 'md5-memory': md5Memory };
if (!cases[what]) {
  console.error(`usage: node dist/bench/what-if.js ${Object.keys(cases).join('|')} [true|false (durable)] [--dir DIR] [--rounds N]`);
  process.exit(2);
}
cases[what]().catch((e) => { console.error(e); process.exit(1); });
