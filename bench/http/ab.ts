// A/B: two (or more) built Kiln checkouts side by side, the same load alternating between them in
// short rounds, so that a change's effect shows through this machine's drift (±20 % from minute
// to minute). Reports, per server, the median over rounds of ops/s, the server's CPU per
// operation (its whole process tree, from /proc), the part of it on the event loop (main
// thread: the rest is LevelDB's compaction, the thread pool, GC), the bytes it had written to
// disk per operation, p50 and p99.
//
//   node dist/bench/http/ab.js --servers /tmp/base,. [--op get|put] [--rounds 8] [--seconds 2] [--size 4096] [--conc 16] [--workers N] [--objects 1000] [--range BYTES]
//
// With --workers N (> 1) the event-loop column is the primary's: the index owner's share.
//
// A server is a checkout's root (built, `npm ci` done there), optionally followed by its worker
// count, `kiln server` flags and node flags: '.@2' (kiln server --workers 2),
// '.^--inline-threshold^128', '.|--single-threaded-gc'. The first round of each is a warm-up and
// not counted.
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { LoadClient } from './client';
import { measure, summarize, treeCpu, mainThreadCpu, diskWritten, Result } from './measure';
import { startKiln, BUCKET, Target } from './targets';
import { arg, median } from '../args';

const SERVERS = arg('--servers', '.').split(',');
const OP = arg('--op', 'get');
const ROUNDS = Number(arg('--rounds', '8'));
const SECONDS = Number(arg('--seconds', '2'));
const SIZE = Number(arg('--size', '4096'));
const CONC = Number(arg('--conc', '16'));
const WORKERS = arg('--workers', '1');
const OBJECTS = Number(arg('--objects', '1000'));
// --range N: each GET asks for N bytes at a random multiple of N (8 MiB ranges of 64 MiB shards, as loaders do).
const RANGE = Number(arg('--range', '0'));
// Random bytes, as in run.js: constant bytes would flatter LevelDB's block compression of inline bodies.
const BODY = randomBytes(SIZE);

interface Round extends Result { mainCpu: number; written: number }
interface Server { spec: string; target: Target; client: LoadClient; rounds: Round[] }

async function start(spec: string, dir: string): Promise<Server> {
  const [where, ...nodeFlags] = spec.split('|');
  const [server, ...kilnArgs] = where.split('^');
  const [root, workers = WORKERS] = server.split('@');
  const target = await startKiln(dir, { root: path.resolve(root), nodeFlags, workers, kilnArgs });
  const client = new LoadClient(target.port, CONC, target.creds);
  const body = BODY;
  try {
    // Objects to GET (a PUT run writes keys of its own: filling 1000 x 64 MiB first filled the disk).
    if (OP === 'get') for (let k = 0; k < OBJECTS; k += CONC) await Promise.all(Array.from({ length: CONC }, (_, j) => client.request('PUT', `/${BUCKET}/o${k + j}`, { body })));
  } catch (e) {
    // Not in the caller's list yet: stopped here, or it outlives this process.
    client.close();
    await target.stop();
    throw e;
  }
  return { spec, target, client, rounds: [] };
}

async function round(s: Server, seq: { n: number }): Promise<Round> {
  const body = BODY;
  const op = async (): Promise<number> => {
    const at = RANGE ? RANGE * Math.floor(Math.random() * Math.floor(SIZE / RANGE)) : 0;
    const r = OP === 'get' ? await s.client.request('GET', `/${BUCKET}/o${(Math.random() * OBJECTS) | 0}`, RANGE ? { headers: { range: `bytes=${at}-${at + RANGE - 1}` } } : {})
      : await s.client.request('PUT', `/${BUCKET}/p${seq.n++}`, { body });
    return r.status === (RANGE ? 206 : 200) ? RANGE || SIZE : -1;
  };
  const pid = s.target.pid;
  const [c0, m0, w0] = [treeCpu(pid), mainThreadCpu(pid), diskWritten(pid)];
  const raw = await measure(CONC, Number.MAX_SAFE_INTEGER, SECONDS, op);
  return { ...summarize([raw], treeCpu(pid) - c0), mainCpu: mainThreadCpu(pid) - m0, written: diskWritten(pid) - w0 };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-ab-'));
  const servers: Server[] = [];
  try {
    for (const [i, spec] of SERVERS.entries()) servers.push(await start(spec, path.join(dir, `s${i}`)));
    const seq = { n: 0 };
    for (let r = 0; r <= ROUNDS; r++) {
      // Alternate the order so neither side always follows the other.
      for (const s of r % 2 ? [...servers].reverse() : servers) {
        const res = await round(s, seq);
        if (res.errors > 0) throw new Error(`${s.spec}: ${res.errors} failed requests`);
        if (r > 0) s.rounds.push(res);
      }
    }
    process.stdout.write(`${OP} ${SIZE} B, ${CONC} connections, ${ROUNDS} rounds of ${SECONDS} s (medians)\n\n| server | ops/s | server CPU µs/op | of it on the event loop | disk written KiB/op | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|---:|\n`);
    for (const s of servers) {
      const m = (f: (x: Round) => number) => median(s.rounds.map(f));
      process.stdout.write(`| ${s.spec} | ${m((x) => x.ops / x.seconds).toFixed(0)} | ${m((x) => (x.serverCpu * 1e6) / x.ops).toFixed(0)} | ${m((x) => (x.mainCpu * 1e6) / x.ops).toFixed(0)} | ${m((x) => x.written / 1024 / x.ops).toFixed(1)} | ${m((x) => x.p50).toFixed(2)} | ${m((x) => x.p99).toFixed(2)} |\n`);
    }
  } finally {
    for (const s of servers) s.client.close();
    await Promise.all(servers.map((s) => s.target.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

void main().catch((e) => { process.stderr.write(`${(e as Error).message}\n`); process.exit(1); });
