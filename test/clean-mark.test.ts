// A clean shutdown marks the drives so the next start skips the orphan sweep (clean-mark.ts).
// The mark must never outlive the run that takes it (a crash then finds none), and a run that
// may have left an orphan — a write or removal in flight or failed, a heal, a drive out — must
// not write one. Without a mark on every drive, naming exactly the index's batches, the start sweeps.
import t from 'tap';
import { existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ObjectStore } from '../storage';
import { tempDrives, chunked } from './helpers/drives';
import { body, dataDirsOn, readObject, settle } from './helpers/faults';

const MiB = 1024 * 1024;
const SKIPPED = 'orphan sweep skipped: the last run shut down clean';
const markOf = (d: string) => path.join(d, '.kiln', 'clean');

/** A data dir no record names, an hour old: what a crash between shard and index commit leaves. */
function plantOrphan(drives: string[]): string {
  const id = randomBytes(16).toString('hex');
  const hourAgo = new Date(Date.now() - 3600_000);
  for (const d of drives) {
    const dir = path.join(d, 'data', id.slice(0, 2), id);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'shard'), 'x');
    utimesSync(dir, hourAgo, hourAgo);
  }
  return id;
}

async function open(drives: string[]): Promise<{ store: ObjectStore; logs: string[] }> {
  const logs: string[] = [];
  const store = await ObjectStore.open({ drives, log: (m) => logs.push(m) });
  return { store, logs };
}

t.test('a clean shutdown marks every drive; the next start skips the sweep and drops the marks at once', async (t) => {
  const tmp = tempDrives(4, 'kiln-clean');
  t.teardown(tmp.cleanup);
  let { store, logs } = await open(tmp.drives);
  t.notOk(logs.includes(SKIPPED), 'a first start sweeps');
  await store.createBucket('b');
  const big = body(1.5 * MiB, 1);
  const small = body(1000, 2);
  await store.putObject('b', 'big', chunked(big));
  await store.putObject('b', 'small', chunked(small));
  await store.deleteObject('b', 'small');
  await store.putObject('b', 'small', chunked(small));
  await settle(store);
  await store.sweepFinished();
  await store.close();
  for (const d of tmp.drives) {
    const mark = JSON.parse(readFileSync(markOf(d), 'utf8')) as { deployment: string; batches: string };
    t.equal(mark.deployment, store.deploymentId, `${path.basename(d)}: marked for this deployment`);
    t.match(mark.batches, /^[1-9]\d*$/, `${path.basename(d)}: at the index's batch count`);
  }
  ({ store, logs } = await open(tmp.drives));
  t.ok(logs.includes(SKIPPED), 'the next start skips the sweep');
  for (const d of tmp.drives) t.notOk(existsSync(markOf(d)), `${path.basename(d)}: the mark is gone before anything is written (a crash of this run finds none)`);
  t.ok((await readObject(store, 'b', 'big')).equals(big), 'objects read back');
  t.ok((await readObject(store, 'b', 'small')).equals(small), 'inline objects read back');
  await store.close();
  ({ store, logs } = await open(tmp.drives));
  t.ok(logs.includes(SKIPPED), 'a run that skipped the sweep and shut down clean marks the drives again');
  await store.close();
});

t.test('without a mark on every drive naming exactly the index, the start sweeps', async (t) => {
  const tmp = tempDrives(4, 'kiln-clean-bad');
  t.teardown(tmp.cleanup);
  let { store, logs } = await open(tmp.drives);
  await store.createBucket('b');
  await store.sweepFinished();
  await store.close();
  type Mark = { deployment: string; batches: string };
  const rewrite = (f: (m: Mark) => Mark) => { for (const d of tmp.drives) writeFileSync(markOf(d), JSON.stringify(f(JSON.parse(readFileSync(markOf(d), 'utf8')) as Mark))); };
  const cases: [string, () => void][] = [
    ['a drive without its mark', () => rmSync(markOf(tmp.drives[2]))],
    ['marks of another batch count (written since)', () => rewrite((m) => ({ ...m, batches: String(BigInt(m.batches) + 1n) }))],
    ['marks of another deployment', () => rewrite((m) => ({ ...m, deployment: 'elsewhere' }))],
    ['an unreadable mark', () => writeFileSync(markOf(tmp.drives[0]), '{')],
  ];
  for (const [what, spoil] of cases) {
    t.ok(tmp.drives.every((d) => existsSync(markOf(d))), `${what}: the last run marked every drive`);
    spoil();
    const orphan = plantOrphan(tmp.drives);
    ({ store, logs } = await open(tmp.drives));
    t.notOk(logs.includes(SKIPPED), `${what}: the sweep runs`);
    for (const d of tmp.drives) t.notOk(existsSync(markOf(d)), `${what}: ${path.basename(d)} holds no mark`);
    await store.sweepFinished(); // close() would cut it short (and then not mark the drives)
    t.ok(tmp.drives.every((d) => !dataDirsOn(d).includes(orphan)), `${what}: the orphan was removed`);
    await store.close();
  }
});

t.test('a run that may have left an orphan does not mark the drives', async (t) => {
  const tmp = tempDrives(4, 'kiln-clean-unclean');
  t.teardown(tmp.cleanup);
  let { store } = await open(tmp.drives);
  await store.createBucket('b');
  await store.putObject('b', 'x', chunked(body(2.5 * MiB, 3)));
  await store.close();
  const unmarked = () => tmp.drives.every((d) => !existsSync(markOf(d)));

  // A PUT still writing when the store closes (its commit then fails, and it cleans up).
  ({ store } = await open(tmp.drives));
  let go!: () => void;
  const gate = new Promise<void>((r) => (go = r));
  let started!: () => void;
  const writing = new Promise<void>((r) => (started = r));
  async function* slow(): AsyncGenerator<Buffer> { yield body(1.5 * MiB, 4); started(); await gate; yield body(10, 5); }
  const put = store.putObject('b', 'slow', slow()).then(() => 'stored', (e: Error) => e.message);
  await writing;
  await store.close();
  go();
  t.not(await put, 'stored', 'the PUT in flight did not commit');
  t.ok(unmarked(), 'a write in flight at close: no marks');

  // A heal ran (a heal racing a delete can recreate a data dir).
  ({ store } = await open(tmp.drives));
  const rec = await store.headObject('b', 'x');
  rmSync(store.set.driveFor(rec.ec, 0).shardFile(rec.parts[0].dataDir));
  await readObject(store, 'b', 'x');
  await settle(store);
  t.ok(store.healer.stats.healed > 0, 'the degraded read was healed');
  await store.close();
  t.ok(unmarked(), 'a heal ran: no marks');

  // A drive out of the set.
  ({ store } = await open(tmp.drives));
  store.drives[1].fail(new Error('test: drive pulled'));
  await store.close();
  t.ok(unmarked(), 'a drive offline at close: no marks');

  // The runs above left the drives unmarked; a quiet run (its sweep finished) marks them again.
  ({ store } = await open(tmp.drives));
  await store.sweepFinished();
  await store.close();
  t.ok(tmp.drives.every((d) => existsSync(markOf(d))), 'a quiet run marks every drive');
});
