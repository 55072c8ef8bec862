// What a restart costs with many objects: the time until ObjectStore.open returns (the server
// serves only then), the count of each index log's live bytes from every inline pointer after an
// unclean stop (beside serving; after a clean one the counts the close saved are taken) and the
// start-up orphan sweep (beside serving), after a clean stop (the drives are marked:
// clean-mark.ts, the sweep is skipped) and after an unclean one (the marks and saved counts
// removed, as a crash leaves them). Objects of 100 bytes (inline; `--size` above 128 KiB makes
// them shard files, one data dir per drive each), 2+2 on 4 drive directories.
//
//   node dist/bench/restart.js [--objects 300000] [--size 100] [--rounds 2] [--dir DIR]
//
// Filling takes a while (about 5,000 PUTs/s here, durability relaxed for the fill only); a --dir
// that was filled before is reused (delete it to refill).
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ObjectStore } from '../storage';
import { MetaIndex } from '../storage/meta-index';
import { arg, median } from './args';

const OBJECTS = Number(arg('--objects', '300000'));
const ROUNDS = Number(arg('--rounds', '2'));
const SIZE = Number(arg('--size', '100'));
const DIR = arg('--dir', path.join(tmpdir(), `kiln-restart-${OBJECTS}${SIZE === 100 ? '' : `-${SIZE}`}`));
const drives = [1, 2, 3, 4].map((i) => path.join(DIR, `d${i}`));
const SKIPPED = 'orphan sweep skipped: the last run shut down clean';

async function fill(): Promise<void> {
  const filled = path.join(DIR, 'filled');
  if (existsSync(filled)) return;
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  const store = await ObjectStore.open({ drives, durable: false });
  await store.createBucket('b');
  const body = Buffer.alloc(SIZE, 7);
  const one = async function* (): AsyncGenerator<Buffer> { yield body; };
  const step = SIZE > 65536 ? 16 : 500;
  for (let i = 0; i < OBJECTS; i += step) {
    await Promise.all(Array.from({ length: Math.min(step, OBJECTS - i) }, (_, j) => store.putObject('b', `k/${String(i + j).padStart(9, '0')}`, one())));
  }
  await store.sweepFinished();
  await store.close();
  writeFileSync(filled, '');
}

async function start(): Promise<{ open: number; count: number; sweep: number; rss: number; skipped: boolean }> {
  const logs: string[] = [];
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const store = await ObjectStore.open({ drives, log: (m) => logs.push(m) });
  const t1 = performance.now();
  // Side by side, as in a server: the live count after a crash and the orphan sweep.
  let tc = t1;
  const counted = (store.index as MetaIndex).counted().then(() => { tc = performance.now(); });
  await Promise.all([store.sweepFinished(), counted]);
  const t2 = performance.now();
  const rss = process.memoryUsage().rss - rss0;
  await store.close();
  return { open: t1 - t0, count: tc - t1, sweep: t2 - t1, rss, skipped: logs.includes(SKIPPED) };
}

async function main(): Promise<void> {
  await fill();
  const res: Record<'clean' | 'unclean', Awaited<ReturnType<typeof start>>[]> = { clean: [], unclean: [] };
  // A first start marks the drives (its own sweep finished); then the two kinds alternate.
  await start();
  for (let r = 0; r < ROUNDS; r++) {
    for (const kind of ['unclean', 'clean'] as const) {
      // What a crash leaves: no marks, no saved live counts (each open removes both).
      if (kind === 'unclean') for (const d of drives) for (const f of ['clean', 'vlog/live.json']) rmSync(path.join(d, '.kiln', f), { force: true });
      const got = await start();
      if (got.skipped !== (kind === 'clean')) throw new Error(`${kind} start: the sweep was ${got.skipped ? 'skipped' : 'run'}`);
      res[kind].push(got);
    }
  }
  const ms = (xs: number[]) => `${(median(xs) / 1000).toFixed(2)} s`;
  console.log(`\n### Restart with ${OBJECTS.toLocaleString('en')} objects of ${SIZE.toLocaleString('en')} B (${new Date().toISOString()}, medians of ${ROUNDS})\n`);
  console.log('| previous stop | open (before serving) | live count (beside serving) | orphan sweep and count done | RSS after them |\n|---|---:|---:|---:|---:|');
  for (const kind of ['clean', 'unclean'] as const) {
    const r = res[kind];
    console.log(`| ${kind} | ${ms(r.map((x) => x.open))} | ${kind === 'clean' ? 'saved counts' : ms(r.map((x) => x.count))} | ${kind === 'clean' ? 'skipped' : ms(r.map((x) => x.sweep))} | +${(median(r.map((x) => x.rss)) / 2 ** 20).toFixed(0)} MiB |`);
  }
}

void main().catch((e) => { console.error(e); process.exit(1); });
