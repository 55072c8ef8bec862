// A/B: two (or more) built Kiln checkouts side by side, the same load alternating between them in
// short rounds, so that a change's effect shows through this machine's drift (±20 % from minute
// to minute). Reports, per server, the median over rounds of ops/s, the server's CPU per
// operation (its whole process tree, from /proc), p50 and p99.
//
//   node dist/bench/http/ab.js --servers /tmp/base,. [--op get|put] [--rounds 8] [--seconds 2] [--size 4096] [--conc 16]
//
// A server is a checkout's root (built, `npm ci` done there), optionally followed by node flags:
// '.|--single-threaded-gc'. The first round of each is a warm-up and not counted.
import { spawn, ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { LoadClient } from './client';
import { treeCpu } from './measure';
import { freePort, BUCKET } from './targets';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const SERVERS = arg('--servers', '.').split(',');
const OP = arg('--op', 'get');
const ROUNDS = Number(arg('--rounds', '8'));
const SECONDS = Number(arg('--seconds', '2'));
const SIZE = Number(arg('--size', '4096'));
const CONC = Number(arg('--conc', '16'));
const OBJECTS = 1000;
const creds = { accessKeyId: 'abadmin', secretAccessKey: 'ab-secret-key', region: 'us-east-1' };

interface Round { ops: number; cpuUs: number; p50: number; p99: number }
interface Server { spec: string; child: ChildProcess; client: LoadClient; rounds: Round[] }

async function start(spec: string, dir: string, i: number): Promise<Server> {
  const [root, ...flags] = spec.split('|');
  const port = await freePort();
  const drives = [1, 2, 3, 4].map((d) => path.join(dir, `s${i}`, `d${d}`)).join(',');
  const child = spawn(process.execPath, [...flags, path.resolve(root, 'server', 'kiln.cjs'), 'server', '--address', `127.0.0.1:${port}`, '--drives', drives, '--log-level', 'error'], {
    env: { ...process.env, KILN_ROOT_USER: creds.accessKeyId, KILN_ROOT_PASSWORD: creds.secretAccessKey }, stdio: ['ignore', 'ignore', 'inherit'],
  });
  const probe = new LoadClient(port, 1);
  try {
    for (let k = 0; ; k++) {
      try { if ((await probe.request('GET', '/health/ready')).status === 200) break; } catch { /* not up yet */ }
      if (k > 150 || child.exitCode !== null) throw new Error(`${spec} did not start`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (e) {
    child.kill('SIGKILL'); // never leave a server behind
    throw e;
  } finally {
    probe.close();
  }
  const client = new LoadClient(port, CONC, creds);
  await client.request('PUT', `/${BUCKET}`);
  const body = Buffer.alloc(SIZE, 7);
  for (let k = 0; k < OBJECTS; k += CONC) await Promise.all(Array.from({ length: CONC }, (_, j) => client.request('PUT', `/${BUCKET}/o${k + j}`, { body })));
  return { spec, child, client, rounds: [] };
}

async function round(s: Server, seq: { n: number }): Promise<Round> {
  const body = Buffer.alloc(SIZE, 7);
  const lat: number[] = [];
  const c0 = treeCpu(s.child.pid!);
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  await Promise.all(Array.from({ length: CONC }, async () => {
    while (performance.now() < end) {
      const a = performance.now();
      const r = OP === 'get' ? await s.client.request('GET', `/${BUCKET}/o${(Math.random() * OBJECTS) | 0}`)
        : await s.client.request('PUT', `/${BUCKET}/p${seq.n++}`, { body });
      if (r.status !== 200) throw new Error(`${s.spec}: HTTP ${r.status}`);
      lat.push(performance.now() - a);
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  lat.sort((x, y) => x - y);
  return { ops: lat.length / secs, cpuUs: ((treeCpu(s.child.pid!) - c0) * 1e6) / lat.length, p50: lat[lat.length >> 1], p99: lat[Math.floor(lat.length * 0.99)] };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-ab-'));
  const servers: Server[] = [];
  try {
    for (const [i, spec] of SERVERS.entries()) servers.push(await start(spec, dir, i));
    const seq = { n: 0 };
    for (let r = 0; r <= ROUNDS; r++) {
      // Alternate the order so neither side always follows the other.
      for (const s of r % 2 ? [...servers].reverse() : servers) {
        const res = await round(s, seq);
        if (r > 0) s.rounds.push(res);
      }
    }
    process.stdout.write(`${OP} ${SIZE} B, ${CONC} connections, ${ROUNDS} rounds of ${SECONDS} s (medians)\n\n| server | ops/s | server CPU µs/op | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|\n`);
    for (const s of servers) {
      const m = (f: (x: Round) => number) => median(s.rounds.map(f));
      process.stdout.write(`| ${s.spec} | ${m((x) => x.ops).toFixed(0)} | ${m((x) => x.cpuUs).toFixed(0)} | ${m((x) => x.p50).toFixed(2)} | ${m((x) => x.p99).toFixed(2)} |\n`);
    }
  } finally {
    for (const s of servers) { s.client.close(); s.child.kill('SIGTERM'); }
    await new Promise((r) => setTimeout(r, 500));
    rmSync(dir, { recursive: true, force: true });
  }
}

void main().catch((e) => { process.stderr.write(`${(e as Error).message}\n`); process.exit(1); });
