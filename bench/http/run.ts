// `npm run bench`: Kiln over HTTP against the machine's ceilings and its peers, same client, same
// run. Every scenario runs on every target that can serve it; Kiln's figure is reported as a
// ratio of the reference named in the issue (nginx for reads, a minimal Node server for writes,
// s3rver for small PUTs and listing, the drive itself from dd).
//
//   node dist/bench/http/run.js [--quick] [--seconds N] [--targets kiln,nginx,node-file,node-mem,s3rver,moto]
//                               [--scenarios put-4k,get-4k,...] [--list-keys N] [--durability strict|relaxed] [--out FILE]
//                               [--kiln-cpus 0-3]   (taskset for the Kiln server: core scaling) [--rounds N]
//                               [--kiln-workers N]  (kiln server --workers N: HTTP worker processes)
//                               [--client-procs N] [--client-cpus 4-15]  (the load from N client processes, pinned)
//                               [--no-drive]        (skip the dd measurements of the drive) [--warmup SECONDS]
import { mkdtempSync, rmSync, writeFileSync, readFileSync, chmodSync } from 'node:fs';
import { tmpdir, cpus, totalmem, loadavg } from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { LoadClient } from './client';
import { spawn, ChildProcess } from 'node:child_process';
import { load, rawDrive, summarize, treeCpu, Raw, Result } from './measure';
import { opFor, objectKey, CellSpec, Scenario } from './cell';
import { fillList } from './listing';
import { BUCKET, Target, TargetName, startKiln, startNginx, startNodeFile, startS3rver, startMoto, nginxAvailable, motoAvailable } from './targets';
import { arg } from '../args';

const KiB = 1024;
const MiB = 1024 * KiB;

const QUICK = process.argv.includes('--quick');
const SECONDS = Number(arg('--seconds', QUICK ? '3' : '10'));
const LIST_KEYS = Number(arg('--list-keys', QUICK ? '5000' : '100000'));
const PEER_LIST_KEYS = Math.min(LIST_KEYS, 10000);
const TARGETS = arg('--targets', 'kiln,nginx,node-file,node-mem,s3rver,moto').split(',') as TargetName[];
const DURABILITY = arg('--durability', 'strict') as 'strict' | 'relaxed';
const OUT = arg('--out', '');
const KILN_CPUS = arg('--kiln-cpus', '');
const KILN_WORKERS = arg('--kiln-workers', '1');
const CLIENT_PROCS = Number(arg('--client-procs', '1'));
const CLIENT_CPUS = arg('--client-cpus', '');
const ROUNDS = Number(arg('--rounds', QUICK ? '1' : '2'));
const WARMUP = Number(arg('--warmup', QUICK ? '0.5' : '1'));


interface BenchScenario extends Scenario { ref: TargetName }

const SCENARIOS: BenchScenario[] = [
  { id: 'put-4k', what: 'PUT 4 KiB', kind: 'put', size: 4 * KiB, conc: 16, objects: 0, ref: 's3rver', maxOps: 200_000 },
  // Opt-in (--scenarios put-16b): a PUT that is nearly all index work, beside put-4k it shows what the body costs.
  { id: 'put-16b', what: 'PUT 16 B', kind: 'put', size: 16, conc: 16, objects: 0, ref: 's3rver', maxOps: 200_000, optIn: true },
  { id: 'get-4k', what: 'GET 4 KiB', kind: 'get', size: 4 * KiB, conc: 16, objects: 1000, ref: 'nginx', maxOps: 500_000 },
  { id: 'put-1m', what: 'PUT 1 MiB', kind: 'put', size: MiB, conc: 8, objects: 0, ref: 'node-file', maxOps: 20_000 },
  { id: 'get-1m', what: 'GET 1 MiB', kind: 'get', size: MiB, conc: 8, objects: 64, ref: 'nginx', maxOps: 100_000 },
  { id: 'put-64m', what: 'PUT 64 MiB', kind: 'put', size: 64 * MiB, conc: 4, objects: 0, ref: 'node-file', maxOps: QUICK ? 24 : 200 },
  { id: 'get-64m', what: 'GET 64 MiB (whole shard, MosaicML Streaming)', kind: 'get', size: 64 * MiB, conc: 4, objects: 4, ref: 'nginx', maxOps: 5000 },
  { id: 'range-8m', what: 'GET 8 MiB ranges of 64 MiB objects (Mountpoint, s3torchconnector)', kind: 'range', size: 64 * MiB, conc: 8, objects: 4, ref: 'nginx', maxOps: 20_000 },
  { id: 'list-1000', what: `ListObjectsV2, pages of 1000 (kiln: ${LIST_KEYS} keys; peers: ${PEER_LIST_KEYS})`, kind: 'list', size: 0, conc: 1, objects: 0, ref: 's3rver', maxOps: 100_000 },
  { id: 'mixed-1m', what: 'mixed 1 MiB: 70 % GET, 30 % PUT', kind: 'mixed', size: MiB, conc: 8, objects: 64, ref: 'node-file', maxOps: 50_000 },
];
const WANT = arg('--scenarios', SCENARIOS.filter((s) => !s.optIn).map((s) => s.id).join(',')).split(',');

/** Peers are slow: fewer operations, so one scenario does not take minutes. */
function budget(t: TargetName, s: Scenario): number {
  if (t === 'moto') return Math.min(s.maxOps, s.size >= 64 * MiB ? 4 : 400);
  if (t === 's3rver') return Math.min(s.maxOps, s.size >= 64 * MiB ? 8 : 2000);
  return s.maxOps;
}

function serves(t: Target, s: Scenario): boolean {
  if (s.kind === 'list') return t.canList;
  if (s.kind === 'put' || s.kind === 'mixed') return t.canPut;
  return true;
}


async function prepare(t: Target, s: Scenario, body: Buffer, done: Set<string>): Promise<void> {
  const n = s.kind === 'get' || s.kind === 'range' || s.kind === 'mixed' ? s.objects : 0;
  const tag = `${s.kind === 'range' ? 'get-64m' : s.id}`;
  if (n === 0 || done.has(tag)) return;
  done.add(tag);
  const keys = Array.from({ length: n }, (_, i) => objectKey(s, i));
  let next = 0;
  await Promise.all(Array.from({ length: 4 }, async () => { while (next < keys.length) await t.place(keys[next++], body.subarray(0, s.size)); }));
}

async function run(t: Target, s: Scenario, body: Buffer, runId: string): Promise<Result> {
  const warm = { seconds: WARMUP, maxOps: Math.max(1, Math.floor(budget(t.name, s) / 4)) };
  // Listing follows one continuation chain: one connection, one process.
  if (CLIENT_PROCS > 1 && s.kind !== 'list') return runInChildren(t, s, runId, warm);
  const client = new LoadClient(t.port, s.kind === 'list' ? 1 : s.conc, t.creds);
  try {
    const { op, reset } = opFor(client, s, body, runId);
    return await load(t.pid, s.kind === 'list' ? 1 : s.conc, budget(t.name, s), SECONDS, op, { ...warm, reset });
  } finally {
    client.close();
  }
}

/** The cell from CLIENT_PROCS processes (pinned to --client-cpus), each with its share of the connections and ops. */
/** The next message from a client process, or its exit as an error. */
function nextMessage<T>(child: ChildProcess): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    child.once('message', (m) => resolve(m as T));
    child.once('exit', (code) => reject(new Error(`client process exited with ${code}`)));
  });
}

/** The cell from CLIENT_PROCS processes (pinned to --client-cpus), each with its share of the connections and ops. */
async function runInChildren(t: Target, s: Scenario, runId: string, warm: { seconds: number; maxOps: number }): Promise<Result> {
  const n = Math.min(CLIENT_PROCS, s.conc);
  const cell = path.join(__dirname, 'cell.js');
  const kids = Array.from({ length: n }, (_, k) => {
    const [cmd, argv] = CLIENT_CPUS ? ['taskset', ['-c', CLIENT_CPUS, process.execPath, cell]] : [process.execPath, [cell]];
    const child = spawn(cmd, argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const conc = Math.floor(s.conc / n) + (k < s.conc % n ? 1 : 0);
    const spec: CellSpec = {
      port: t.port, creds: t.creds, scenario: s, conc, seconds: SECONDS, runId: `${runId}-c${k}`,
      maxOps: Math.ceil(budget(t.name, s) / n), warm: { seconds: warm.seconds, maxOps: Math.ceil(warm.maxOps / n) },
    };
    const ready = nextMessage<{ ready: true }>(child);
    child.send(spec);
    return { child, ready };
  });
  try {
    await Promise.all(kids.map((k) => k.ready));
    const s0 = treeCpu(t.pid);
    const done = kids.map((k) => nextMessage<{ raw: Raw }>(k.child));
    for (const k of kids) k.child.send('go');
    const raws = (await Promise.all(done)).map((m) => m.raw);
    return summarize(raws, treeCpu(t.pid) - s0);
  } finally {
    for (const k of kids) if (k.child.exitCode === null) k.child.kill();
  }
}

/** Issue 5's targets, checked on this run's figures (a target whose reference did not run is skipped). */
function verdicts(results: Map<string, Map<TargetName, Result>>, raw: ReturnType<typeof rawDrive> | undefined): string[] {
  const rate = (id: string, t: TargetName) => { const r = results.get(id)?.get(t); return r ? r.ops / r.seconds : undefined; };
  const ratio = (id: string, ref: TargetName) => { const k = rate(id, 'kiln'), b = rate(id, ref); return k !== undefined && b ? k / b : undefined; };
  const out = ['| target (issue 5) | this run | verdict |', '|---|---|---|'];
  const row = (what: string, got: string | undefined, ok: boolean | undefined) => {
    if (got !== undefined) out.push(`| ${what} | ${got} | ${ok ? 'met' : 'NOT met'} |`);
  };
  const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
  const r64 = ratio('get-64m', 'nginx');
  row('64 MiB GET ≥ 60 % of nginx', r64 === undefined ? undefined : pct(r64), r64 !== undefined && r64 >= 0.6);
  const r8 = ratio('range-8m', 'nginx');
  row('8 MiB ranged GET ≥ 60 % of nginx', r8 === undefined ? undefined : pct(r8), r8 !== undefined && r8 >= 0.6);
  const rp = ratio('put-64m', 'node-file');
  row('64 MiB PUT ≥ 50 % of the Node write+fsync server', rp === undefined ? undefined : pct(rp), rp !== undefined && rp >= 0.5);
  const g4 = results.get('get-4k')?.get('kiln');
  const rg = ratio('get-4k', 'nginx');
  if (g4 && rg !== undefined) row('4 KiB GET ≥ 50 % of nginx, p50 < 1 ms, p99 < 5 ms', `${pct(rg)}, p50 ${fmt(g4.p50, 2)} ms, p99 ${fmt(g4.p99, 2)} ms`, rg >= 0.5 && g4.p50 < 1 && g4.p99 < 5);
  const p4 = rate('put-4k', 'kiln');
  const rs = ratio('put-4k', 's3rver');
  if (p4 !== undefined && rs !== undefined && raw) row('durable 4 KiB PUT ≥ 5x s3rver and above the drive\'s O_DSYNC rate', `${rs.toFixed(2)}x s3rver, ${(p4 / raw.syncWrites).toFixed(2)}x the drive`, DURABILITY === 'strict' && rs >= 5 && p4 > raw.syncWrites);
  const l = results.get('list-1000')?.get('kiln');
  if (l) row(`listing ≥ 100 pages/s, first page < 50 ms (1M keys; this run: ${LIST_KEYS})`, `${fmt(l.ops / l.seconds)} pages/s, first ${fmt(l.first, 1)} ms`, l.ops / l.seconds >= 100 && l.first < 50 && LIST_KEYS >= 1_000_000);
  return out.length > 2 ? out : [];
}

const STARTERS: Record<TargetName, (dir: string) => Promise<Target>> = {
  kiln: (d) => startKiln(d, { durability: DURABILITY, cpus: KILN_CPUS || undefined, workers: KILN_WORKERS }), nginx: startNginx, 'node-file': (d) => startNodeFile(d), 'node-mem': (d) => startNodeFile(d, true), s3rver: startS3rver, moto: () => startMoto(),
};

function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return '—';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

// An interrupted run must not leave a server (nginx's workers, moto) behind.
const running: Target[] = [];
let workDir: string | undefined;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    void Promise.all(running.splice(0).map((t) => t.stop())).finally(() => {
      if (workDir) rmSync(workDir, { recursive: true, force: true });
      process.exit(130);
    });
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(arg('--dir', tmpdir()), 'kiln-bench-'));
  chmodSync(dir, 0o755); // nginx's workers run as another user and must read the files
  workDir = dir;
  const notes: string[] = [];
  const results = new Map<string, Map<TargetName, Result>>();
  const body = randomBytes(64 * MiB);
  const scenarios = SCENARIOS.filter((s) => WANT.includes(s.id));
  const load0 = loadavg()[0];
  const started = new Date();
  let raw: ReturnType<typeof rawDrive> | undefined;
  try {
    if (!process.argv.includes('--no-drive')) raw = rawDrive(dir);
    // Every target runs for the whole run and each scenario visits them one after the other,
    // ROUNDS times, best round kept: the cells compared in a ratio are minutes apart at most.
    for (const name of TARGETS) {
      if (name === 'nginx' && !nginxAvailable()) { notes.push('nginx: not installed (`apt-get install -y nginx-light`), skipped'); continue; }
      if (name === 'moto' && !motoAvailable()) { notes.push('moto: python3 -m moto.server not available, skipped'); continue; }
      process.stderr.write(`${name}: starting\n`);
      try { running.push(await STARTERS[name](dir)); } catch (e) { notes.push(`${name}: did not start (${(e as Error).message}), skipped`); }
    }
    const placed = new Map<Target, Set<string>>(running.map((t) => [t, new Set<string>()]));
    for (const s of scenarios) {
      const targets = running.filter((t) => serves(t, s));
      for (const t of targets) {
        if (s.kind === 'list') await fillList(t, t.name === 'kiln' ? LIST_KEYS : PEER_LIST_KEYS, 32);
        else await prepare(t, s, body, placed.get(t)!);
      }
      for (let round = 0; round < ROUNDS; round++) {
        for (const t of targets) {
          const r = await run(t, s, body, `${Date.now()}`);
          if (!results.has(s.id)) results.set(s.id, new Map());
          const best = results.get(s.id)!.get(t.name);
          if (!best || r.ops / r.seconds > best.ops / best.seconds) results.get(s.id)!.set(t.name, r);
          process.stderr.write(`${t.name} ${s.id}: ${fmt(r.ops / r.seconds)} ops/s, ${fmt(r.bytes / MiB / r.seconds)} MiB/s, p50 ${fmt(r.p50, 2)} ms, errors ${r.errors}\n`);
        }
      }
    }
  } finally {
    await Promise.all(running.splice(0).map((t) => t.stop()));
    rmSync(dir, { recursive: true, force: true });
  }

  const lines: string[] = [];
  const cpu = cpus();
  const meminfo = readFileSync('/proc/meminfo', 'utf8').split('\n')[0];
  lines.push(`### HTTP benchmark — ${started.toISOString()}`, '',
    `Machine: ${cpu.length} × ${cpu[0]?.model ?? '?'}, ${fmt(totalmem() / 2 ** 30)} GiB (${meminfo.replace(/\s+/g, ' ')}); node ${process.version}; ` +
    `load average ${load0.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after. Command: \`node dist/bench/http/run.js ${process.argv.slice(2).join(' ')}\`. ` +
    `Kiln: 2+2 on 4 drive directories of one disk, bitrot on, durability ${DURABILITY}${KILN_CPUS ? `, pinned to CPUs ${KILN_CPUS}` : ''}${KILN_WORKERS !== '1' ? `, --workers ${KILN_WORKERS}` : ''}. ${SECONDS} s or the op budget per cell, best of ${ROUNDS} round(s) after ${WARMUP} s of unrecorded warm-up, targets interleaved per scenario; client and servers share the machine.`, '');
  if (raw) lines.push(`Drive (dd, same dir): ${fmt(raw.direct)} MiB/s direct, ${fmt(raw.fsync)} MiB/s buffered + fsync, ${fmt(raw.syncWrites)} 4 KiB writes/s with O_DSYNC.`, '');
  lines.push('| scenario | target | ops/s | MiB/s | p50 ms | p90 ms | p99 ms | errors | server CPU s | client CPU s |', '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const s of scenarios) {
    for (const [name, r] of results.get(s.id) ?? []) {
      const first = s.kind === 'list' ? ` (first page ${fmt(r.first, 1)} ms)` : '';
      lines.push(`| ${s.what}${first} | ${name} | ${fmt(r.ops / r.seconds)} | ${fmt(r.bytes / MiB / r.seconds, 1)} | ${fmt(r.p50, 2)} | ${fmt(r.p90, 2)} | ${fmt(r.p99, 2)} | ${r.errors} | ${fmt(r.serverCpu, 1)} | ${fmt(r.clientCpu, 1)} |`);
    }
  }
  lines.push('', '| scenario | Kiln vs reference | ratio |', '|---|---|---:|');
  for (const s of scenarios) {
    const row = results.get(s.id);
    const k = row?.get('kiln');
    if (!k) continue;
    const r = row?.get(s.ref);
    if (r) lines.push(`| ${s.what} | kiln / ${s.ref} ops/s | ${fmt((k.ops / k.seconds) / (r.ops / r.seconds), 2)} |`);
    // How far Node's HTTP layer alone gets, and how close Kiln comes to that ceiling (reads and
    // small PUTs: node-mem discards PUT bodies, so a large PUT there measures nothing useful).
    const mem = s.kind === 'get' || s.kind === 'range' || s.id === 'put-4k' ? row?.get('node-mem') : undefined;
    if (mem) lines.push(`| ${s.what} | kiln / node-mem ops/s | ${fmt((k.ops / k.seconds) / (mem.ops / mem.seconds), 2)} |`);
    if (mem && r && s.ref !== 'node-mem') lines.push(`| ${s.what} | node-mem / ${s.ref} ops/s (Node's ceiling) | ${fmt((mem.ops / mem.seconds) / (r.ops / r.seconds), 2)} |`);
    if (s.id === 'put-4k' && raw) lines.push(`| ${s.what} | kiln ops/s / drive's O_DSYNC 4 KiB writes/s | ${fmt((k.ops / k.seconds) / raw.syncWrites, 2)} |`);
  }
  lines.push('', ...verdicts(results, raw));
  if (notes.length) lines.push('', ...notes.map((n) => `- ${n}`));
  const md = lines.join('\n') + '\n';
  process.stdout.write(md);
  if (OUT) writeFileSync(OUT, md);
}

main().catch((e) => { console.error(e); process.exit(1); });
