// Listing A/B over one populated bucket: N empty objects are PUT once (through the first server),
// then each server in turn is started on the same drive directories and walks the bucket in
// pages of 1000 by continuation tokens (ListObjectsV2, as a training job lists its dataset before
// an epoch). Kiln's on-disk format is shared across these builds, so a million keys are written
// once, not once per server. Reports, per server, the median over rounds of pages/s, the first
// page's latency and p50/p99 of a page.
//
//   node dist/bench/http/list-ab.js --servers /tmp/base,. [--keys 1000000] [--rounds 2] [--seconds 10] [--wait 40]
//
// --wait: seconds between a server's start and its listing. A start runs the orphan sweep (it
// reads every record once), which shares the event loop with the first listings.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { LoadClient } from './client';
import { startKiln, Target } from './targets';
import { fillList, listPage } from './listing';
import { arg, median } from '../args';

const SERVERS = arg('--servers', '.').split(',');
const KEYS = Number(arg('--keys', '1000000'));
const ROUNDS = Number(arg('--rounds', '2'));
const SECONDS = Number(arg('--seconds', '10'));
const WAIT = Number(arg('--wait', '40'));
const MAX_PAGES = 100_000;

interface Walk { pages: number; seconds: number; first: number; p50: number; p99: number }

async function walk(t: Target): Promise<Walk> {
  const client = new LoadClient(t.port, 1, t.creds);
  const lat: number[] = [];
  let token: string | undefined;
  const t0 = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - t0) / 1e9;
  try {
    while (elapsed() < SECONDS && lat.length < MAX_PAGES) {
      const s = process.hrtime.bigint();
      const r = await listPage(client, token);
      if (r.status !== 200) throw new Error(`list: HTTP ${r.status}`);
      lat.push(Number(process.hrtime.bigint() - s) / 1e6);
      token = r.next;
    }
  } finally {
    client.close();
  }
  const sorted = [...lat].sort((a, b) => a - b);
  return { pages: lat.length, seconds: elapsed(), first: lat[0], p50: sorted[sorted.length >> 1], p99: sorted[Math.floor(sorted.length * 0.99)] };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-list-ab-'));
  const kiln = (spec: string, bucketExists: boolean) => startKiln(dir, { root: path.resolve(spec), durability: 'relaxed', bucketExists });
  const walks = new Map<string, Walk[]>(SERVERS.map((s) => [s, []]));
  try {
    const first = await kiln(SERVERS[0], false);
    const t0 = Date.now();
    try { await fillList(first, KEYS, 64); } finally { await first.stop(); }
    process.stderr.write(`${KEYS} keys PUT in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    for (let r = 0; r < ROUNDS; r++) {
      for (const spec of r % 2 ? [...SERVERS].reverse() : SERVERS) {
        const t = await kiln(spec, true);
        try {
          await new Promise((res) => setTimeout(res, WAIT * 1000));
          const w = await walk(t);
          walks.get(spec)!.push(w);
          process.stderr.write(`${spec}: ${(w.pages / w.seconds).toFixed(1)} pages/s, first ${w.first.toFixed(1)} ms\n`);
        } finally {
          await t.stop();
        }
      }
    }
    process.stdout.write(`ListObjectsV2 pages of 1000 over ${KEYS} keys, ${ROUNDS} rounds of ${SECONDS} s, listing ${WAIT} s after each start (medians)\n\n| server | pages/s | first page ms | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|\n`);
    for (const [spec, ws] of walks) {
      const m = (f: (w: Walk) => number) => median(ws.map(f));
      process.stdout.write(`| ${spec} | ${m((w) => w.pages / w.seconds).toFixed(1)} | ${m((w) => w.first).toFixed(1)} | ${m((w) => w.p50).toFixed(2)} | ${m((w) => w.p99).toFixed(2)} |\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main().catch((e) => { process.stderr.write(`${(e as Error).message}\n`); process.exit(1); });
