// Inline bodies live in a value log beside each index replica (storage/value-log.ts). Faults and
// upkeep: values flipped on some replicas read from the others (never wrong bytes) and are
// rewritten where they were bad, a lost log
// makes its replica rebuilt, deleted and overwritten values are compacted away with small
// segments, and a replica written before the log existed is moved into it at open.
import t, { Test } from 'tap';
import { cpSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Level } from 'level';
import { ObjectStore } from '../storage';
import type { StoreOptions } from '../storage/object-store';
import { MetaIndex } from '../storage/meta-index';
import { NS_INLINE } from '../storage/records';
import { readPointer, POINTER_BYTES } from '../storage/value-log';
import { tempDrives, chunked } from './helpers/drives';
import { body, readObject, waitUntil } from './helpers/faults';
import { dumpReplica } from './helpers/replica';

const SEGMENT = 64 * 1024;

function index(store: ObjectStore): MetaIndex { return store.index as MetaIndex; }

function usage(store: ObjectStore): { drive: string; segments: number; bytes: number; live: number }[] {
  return index(store).valueLogUsage();
}

/** Four drives in a temp dir (removed after the test) and a store on them with bucket `b`. */
async function setup(t: Test, opts: Partial<StoreOptions> = {}): Promise<{ tmp: { drives: string[] }; store: ObjectStore }> {
  const tmp = tempDrives(4, 'kiln-vlog');
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives, ...opts });
  await store.createBucket('b');
  return { tmp, store };
}

/** Every replica has applied what was acknowledged, and no compaction or repair is under way. */
function quiet(store: ObjectStore): Promise<boolean> { return waitUntil(() => !index(store).busy); }

/** Forget the index's cached values, so reads go to the logs again. */
function dropReadCache(store: ObjectStore): void { (store.index as unknown as { cache: { clear(): void } }).cache.clear(); }

function liveFile(drive: string): string { return path.join(drive, '.kiln', 'vlog', 'live.json'); }

/** Remove the saved live counts, as a crash leaves the drives. */
function forgetCounts(drives: string[]): void { for (const d of drives) rmSync(liveFile(d)); }

/** Reopen as after a crash (no saved counts) and wait for the count from the index's pointers. */
async function reopenCounted(drives: string[], opts: Partial<StoreOptions> = {}): Promise<ObjectStore> {
  forgetCounts(drives);
  const store = await ObjectStore.open({ drives, ...opts });
  await index(store).counted();
  return store;
}

type Saved = { batches: string; segments: [number, number, number][] };
function readLive(drive: string): Saved | undefined {
  try { return JSON.parse(readFileSync(liveFile(drive), 'utf8')) as Saved; } catch { return undefined; }
}

function segmentFiles(drive: string): string[] {
  return readdirSync(path.join(drive, '.kiln', 'vlog')).filter((n) => n.endsWith('.seg')).map((n) => path.join(drive, '.kiln', 'vlog', n));
}

/** Invert every byte of a drive's value-log segments: every value there fails its CRC. */
function corruptLog(drive: string): void {
  for (const f of segmentFiles(drive)) {
    const b = readFileSync(f);
    for (let i = 0; i < b.length; i++) b[i] ^= 0xff;
    writeFileSync(f, b);
  }
}

/** n objects of `size` bytes, 4 at a time (small groups: the values spread over several records). */
async function putMany(store: ObjectStore, n: number, size: number, seed: number): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (let i = 0; i < n; i += 4) {
    await Promise.all(Array.from({ length: Math.min(4, n - i) }, async (_, j) => {
      const b = body(size, seed * 1000 + i + j);
      await store.putObject('b', `k${i + j}`, chunked(b));
      out.set(`k${i + j}`, b);
    }));
  }
  return out;
}

t.test('values corrupt on some replicas are read from the others; corrupt on all, the read fails', async (t) => {
  const { tmp, store } = await setup(t);
  t.teardown(() => store.close());
  const want = await putMany(store, 20, 3000, 1);
  // A PUT is acknowledged at the write quorum: let the last replica finish writing first.
  t.ok(await quiet(store), 'every replica applied the writes');
  for (const d of tmp.drives.slice(0, 3)) corruptLog(d);
  for (const [k, b] of want) t.ok((await readObject(store, 'b', k)).equals(b), `${k} reads back with three of four logs corrupt`);
  // Each bad copy met by a read was rewritten from a good one: the primary's log holds them again.
  t.ok(await quiet(store), 'repairs done');
  const primary = (index(store) as unknown as { primary: { drive: { root: string } } }).primary.drive.root;
  t.not(primary, tmp.drives[3], 'reads went to a replica with a corrupt log first');
  corruptLog(tmp.drives[3]);
  dropReadCache(store);
  for (const [k, b] of want) t.ok((await readObject(store, 'b', k)).equals(b), `${k} reads back from the repaired copy with the last good log now corrupt too`);
  const fresh = await putMany(store, 5, 2000, 2); // new keys, not in any read cache
  t.ok(await quiet(store), 'every replica applied the writes');
  for (const d of tmp.drives) corruptLog(d);
  for (const k of fresh.keys()) await t.rejects(readObject(store, 'b', k), { code: 'FileCorrupt' }, `${k}: corrupt everywhere fails, no wrong bytes`);
});

t.test('the heal sweep checks every body in every log and rewrites the bad copies', async (t) => {
  const { tmp, store } = await setup(t);
  t.teardown(() => store.close());
  const want = await putMany(store, 30, 2500, 8);
  t.ok(await quiet(store), 'every replica applied the writes');
  corruptLog(tmp.drives[0]);
  corruptLog(tmp.drives[1]);
  const queued = await store.healer.sweep();
  t.equal(queued, 60, 'the sweep found the 30 bodies bad on each of two replicas');
  t.ok(await quiet(store), 'repairs done');
  // The copies the sweep rewrote are all that is left once the other two logs go bad.
  corruptLog(tmp.drives[2]);
  corruptLog(tmp.drives[3]);
  dropReadCache(store);
  for (const [k, b] of want) t.ok((await readObject(store, 'b', k)).equals(b), `${k} reads back from a rewritten copy`);
  t.equal(await store.healer.sweep(), 60, 'the next sweep finds the two logs corrupted since');
});

t.test('a lost value log: its replica is rebuilt from the others at open', async (t) => {
  const { tmp, store: first } = await setup(t);
  let store = first;
  const want = await putMany(store, 30, 5000, 3);
  await store.close();
  rmSync(path.join(tmp.drives[0], '.kiln', 'vlog'), { recursive: true });
  store = await ObjectStore.open({ drives: tmp.drives });
  for (const [k, b] of want) t.ok((await readObject(store, 'b', k)).equals(b), `${k} reads back`);
  await store.close();
  const ref = await dumpReplica(path.join(tmp.drives[1], '.kiln', 'index'));
  t.same(await dumpReplica(path.join(tmp.drives[0], '.kiln', 'index')), ref, 'the rebuilt replica holds the same entries and values');
});

t.test('deleted and overwritten values are compacted away; live values move and read back', async (t) => {
  const { tmp, store: first } = await setup(t, { valueLogSegmentBytes: SEGMENT });
  let store = first;
  const want = await putMany(store, 120, 4000, 4);
  const full = usage(store)[0];
  t.ok(full.segments > 4, `the values span several segments (${full.segments})`);
  // Overwrite a third, delete a third: most bytes in the early segments become garbage.
  for (let i = 0; i < 120; i++) {
    if (i % 3 === 0) { const b = body(3500, 5000 + i); await store.putObject('b', `k${i}`, chunked(b)); want.set(`k${i}`, b); }
    else if (i % 3 === 1) { await store.deleteObject('b', `k${i}`); want.delete(`k${i}`); }
  }
  const compacted = await waitUntil(() => !index(store).busy && usage(store).every((u) => u.bytes <= 2 * u.live + 2 * SEGMENT));
  t.ok(compacted, `each log shrank to at most twice its live bytes plus two segments: ${JSON.stringify(usage(store))}`);
  for (const u of usage(store)) t.equal(segmentFiles(u.drive).length, u.segments, `${path.basename(u.drive)}: removed segments are gone from disk`);
  for (const [k, b] of want) t.ok((await readObject(store, 'b', k)).equals(b), `${k} reads back after compaction`);
  const live = usage(store).map((u) => u.live);
  await store.close();
  // Without the counts the clean close saved: counted from the index's pointers.
  store = await reopenCounted(tmp.drives, { valueLogSegmentBytes: SEGMENT });
  t.same(usage(store).map((u) => u.live), live, 'live bytes counted again at open match');
  for (const [k, b] of want) t.ok((await readObject(store, 'b', k)).equals(b), `${k} reads back after reopening`);
  await store.close();
  const ref = await dumpReplica(path.join(tmp.drives[0], '.kiln', 'index'));
  for (const d of tmp.drives.slice(1)) t.same(await dumpReplica(path.join(d, '.kiln', 'index')), ref, `${path.basename(d)} holds the same entries and values`);
});

t.test('live counts saved at a clean close are taken at the next open only if the log is as saved, and equal a count', async (t) => {
  const { tmp, store: first } = await setup(t, { valueLogSegmentBytes: SEGMENT });
  let store = first;
  const open = async () => { store = await ObjectStore.open({ drives: tmp.drives, valueLogSegmentBytes: SEGMENT }); await index(store).counted(); };
  const want = await putMany(store, 90, 4000, 6);
  for (let i = 0; i < 90; i += 3) { await store.deleteObject('b', `k${i}`); want.delete(`k${i}`); }
  for (let i = 1; i < 90; i += 3) { const b = body(3000, 7000 + i); await store.putObject('b', `k${i}`, chunked(b)); want.set(`k${i}`, b); }
  await quiet(store);
  const live = usage(store).map((u) => u.live);
  await store.close();
  const saved = tmp.drives.map(readLive);
  t.ok(saved.every((f) => f && f.segments.length > 2), 'every replica saved its counts, segment by segment');

  await open();
  t.same(tmp.drives.map(readLive), [undefined, undefined, undefined, undefined], 'taken: removed at open, before any write');
  t.same(usage(store).map((u) => u.live), live, 'the live bytes of the run before');
  for (const [k, b] of want) t.ok((await readObject(store, 'b', k)).equals(b), `${k} reads back`);
  await store.close();

  // The same logs counted from the index's pointers instead: the same counts, segment by segment
  // (the open in between started one more, empty, segment).
  const taken = tmp.drives.map(readLive)!;
  forgetCounts(tmp.drives);
  await open();
  await store.close();
  const nonEmpty = (f: Saved | undefined) => f?.segments.filter(([, size]) => size > 0);
  t.same(tmp.drives.map((d) => nonEmpty(readLive(d))), taken.map(nonEmpty), 'saved counts equal a count from the index');
  const truth = tmp.drives.map(readLive)!;

  // A file that does not describe the log as it is now is not taken; its counts (zeroed here, so
  // taking them would show) are counted again. Only the last case matches: taken as it stands.
  const cases: [string, (f: Saved) => void, boolean][] = [
    ['another batch count', (f) => { f.batches = String(BigInt(f.batches) + 1n); }, false],
    ['a segment size that changed', (f) => { f.segments[0][1] += 1; }, false],
    ['a segment it does not name', (f) => { f.segments.pop(); }, false],
    ['a segment that is gone', (f) => { f.segments.push([f.segments[f.segments.length - 1][0] + 1, 0, 0]); }, false],
    ['the log exactly as saved', () => undefined, true],
  ];
  for (const [what, change, trusted] of cases) {
    const now = tmp.drives.map(readLive)!;
    for (const [i, d] of tmp.drives.entries()) {
      const f = structuredClone(now[i]!);
      change(f);
      for (const seg of f.segments) seg[2] = 0;
      writeFileSync(liveFile(d), JSON.stringify(f));
    }
    await open();
    const expect = trusted ? [0, 0, 0, 0] : truth.map((f) => f!.segments.reduce((a, [, , l]) => a + l, 0));
    t.same(usage(store).map((u) => u.live), expect, `${what}: ${trusted ? 'taken' : 'counted again'}`);
    await store.close();
    if (trusted) forgetCounts(tmp.drives); // the zeroed counts were saved again: count at the next open
  }
  await open();
  for (const [k, b] of want) t.ok((await readObject(store, 'b', k)).equals(b), `${k} reads back at the end`);
  await store.close();
});

// After a crash the live bytes are counted beside serving, from a snapshot taken at open: writes
// that delete or replace counted values race the count and must leave it exact, since the
// counts decide which segments compaction removes.
t.test('after a crash the live bytes are counted beside serving; deletes and overwrites racing the count leave it exact', async (t) => {
  const { tmp, store: first } = await setup(t, { valueLogSegmentBytes: SEGMENT });
  let store = first;
  const n = 3000;
  for (let i = 0; i < n; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => store.putObject('b', `k${i + j}`, chunked(body(200, i + j)))));
  await store.close();
  forgetCounts(tmp.drives); // as a crash leaves it
  MetaIndex.countPage = 7; // ~430 steps per replica: the writes below land between them
  t.teardown(() => { MetaIndex.countPage = 1000; });
  store = await ObjectStore.open({ drives: tmp.drives, valueLogSegmentBytes: SEGMENT });
  t.ok(index(store).busy, 'the count runs after open returns');
  const want = new Map<string, Buffer>();
  // From both ends of the key range at once: some pointers go before the count reaches them, some after.
  await Promise.all([0, 1].map(async (side) => {
    for (let m = 0; m < 600; m++) {
      const i = side ? n - 1 - m : m;
      if (m % 2) { await store.deleteObject('b', `k${i}`); want.set(`k${i}`, Buffer.alloc(0)); }
      else { const b = body(300, 50000 + i); await store.putObject('b', `k${i}`, chunked(b)); want.set(`k${i}`, b); }
    }
  }));
  t.ok(index(store).busy, 'the writes were done before the count was');
  await index(store).counted();
  t.ok(await quiet(store), 'count and compaction done');
  MetaIndex.countPage = 1000;
  const live = usage(store).map((u) => u.live);
  await store.close();
  store = await reopenCounted(tmp.drives, { valueLogSegmentBytes: SEGMENT });
  t.same(usage(store).map((u) => u.live), live, 'the count that raced the writes equals a count of the index at rest');
  for (const [k, b] of want) {
    if (b.length === 0) await t.rejects(store.headObject('b', k), { code: 'NoSuchKey' });
    else t.ok((await readObject(store, 'b', k)).equals(b), `${k} reads back`);
  }
  t.ok((await readObject(store, 'b', 'k1500')).equals(body(200, 1500)), 'an untouched one reads back');
  await store.close();
});

t.test('after a crash, values a replica\'s cut log lacks are rewritten there from the others while it serves', async (t) => {
  const { tmp, store: first } = await setup(t, { valueLogSegmentBytes: SEGMENT });
  let store = first;
  const want = await putMany(store, 60, 4000, 11);
  await store.close();
  // Cut the first segment of one replica's log in half (the drive lost its tail), as after a crash.
  const seg = segmentFiles(tmp.drives[1])[0];
  const size = statSync(seg).size;
  writeFileSync(seg, readFileSync(seg).subarray(0, size >> 1));
  forgetCounts(tmp.drives);
  store = await ObjectStore.open({ drives: tmp.drives, valueLogSegmentBytes: SEGMENT });
  for (const [k, b] of want) t.ok((await readObject(store, 'b', k)).equals(b), `${k} reads back while the count runs`);
  await index(store).counted();
  t.ok(await quiet(store), 'repairs done');
  const live = usage(store).map((u) => u.live);
  await store.close();
  store = await reopenCounted(tmp.drives, { valueLogSegmentBytes: SEGMENT });
  t.same(usage(store).map((u) => u.live), live, 'the counts kept through the repairs equal a count at rest');
  await store.close();
  // Every replica now has every value in its own log.
  for (const d of tmp.drives) {
    const db = new Level<Buffer, Buffer>(path.join(d, '.kiln', 'index'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    let missing = 0;
    for await (const [, p] of db.iterator({ gte: Buffer.from([NS_INLINE]), lt: Buffer.from([NS_INLINE + 1]) })) if (!readPointer(path.join(d, '.kiln', 'vlog'), p)) missing++;
    await db.close();
    t.equal(missing, 0, `${path.basename(d)}: every inline value intact in its own log`);
  }
});

t.test('restarts without writes do not add segments; the next write lands in the reused one and reads back', async (t) => {
  const { tmp, store: first } = await setup(t);
  let store = first;
  const want = await putMany(store, 8, 3000, 9);
  await store.close();
  const count = () => tmp.drives.map((d) => segmentFiles(d).length);
  store = await ObjectStore.open({ drives: tmp.drives });
  await store.close();
  const before = count();
  for (let i = 0; i < 3; i++) { store = await ObjectStore.open({ drives: tmp.drives }); await store.close(); }
  t.same(count(), before, 'three quiet restarts: as many segments as before');
  // After a crash (no saved counts) too: the empty last segment holds no record a crash could cut.
  forgetCounts(tmp.drives);
  store = await ObjectStore.open({ drives: tmp.drives });
  t.same(count(), before, 'a start after a crash reuses it as well');
  const b = body(3000, 99);
  await store.putObject('b', 'after', chunked(b));
  await store.close();
  store = await ObjectStore.open({ drives: tmp.drives });
  t.ok((await readObject(store, 'b', 'after')).equals(b), 'a write into the reused segment reads back after a restart');
  for (const [k, v] of want) t.ok((await readObject(store, 'b', k)).equals(v), `${k} reads back`);
  await store.close();
});

t.test('a replica from before the value log has its inline bodies moved into it at open', async (t) => {
  const { tmp, store: first } = await setup(t);
  let store = first;
  const want = await putMany(store, 25, 6000, 6);
  await store.close();
  // Rewrite every replica the old way: raw bytes under `i`, no marker, no log.
  for (const d of tmp.drives) {
    const vlog = path.join(d, '.kiln', 'vlog');
    const db = new Level<Buffer, Buffer>(path.join(d, '.kiln', 'index'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    const ops: { type: 'put' | 'del'; key: Buffer; value?: Buffer }[] = [{ type: 'del', key: Buffer.from([0, 0x76]) }];
    for await (const [k, v] of db.iterator({ gte: Buffer.from([NS_INLINE]), lt: Buffer.from([NS_INLINE + 1]) })) ops.push({ type: 'put', key: k, value: readPointer(vlog, v)! });
    t.ok(ops.length > 25 && ops.every((o) => o.type === 'del' || o.value), `${path.basename(d)}: old-format replica written`);
    await db.batch(ops as never);
    await db.close();
    rmSync(vlog, { recursive: true });
  }
  store = await ObjectStore.open({ drives: tmp.drives });
  for (const [k, b] of want) t.ok((await readObject(store, 'b', k)).equals(b), `${k} reads back after the move`);
  t.ok(usage(store).every((u) => u.live >= 25 * 6000), 'every replica\'s log holds the bodies');
  await store.close();
  const db = new Level<Buffer, Buffer>(path.join(tmp.drives[2], '.kiln', 'index'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  let pointers = 0;
  for await (const [, v] of db.iterator({ gte: Buffer.from([NS_INLINE]), lt: Buffer.from([NS_INLINE + 1]) })) if (v.length === POINTER_BYTES) pointers++;
  await db.close();
  t.equal(pointers, 25, 'the index holds pointers, not bodies');
  t.ok(statSync(path.join(tmp.drives[2], '.kiln', 'vlog')).isDirectory(), 'the log exists');
});

t.test('LevelDB losing its unsynced writes (power loss) loses nothing: the log replays them', async (t) => {
  const { tmp, store: first } = await setup(t);
  let store = first;
  const want = await putMany(store, 20, 3000, 7);
  await store.close();
  // LevelDB as it stands now is what survives; everything after is written to it unsynced.
  for (const d of tmp.drives) cpSync(path.join(d, '.kiln', 'index'), path.join(d, 'index-then'), { recursive: true });
  store = await ObjectStore.open({ drives: tmp.drives });
  for (let i = 0; i < 20; i++) {
    if (i % 2 === 0) { await store.deleteObject('b', `k${i}`); want.delete(`k${i}`); }
  }
  for (const [k, n] of [['big', 100000], ['small', 10], ['k1', 2500]] as const) {
    const b = body(n, n);
    await store.putObject('b', k, chunked(b));
    want.set(k, b);
  }
  await store.createBucket('later');
  await store.close();
  for (const d of tmp.drives) {
    rmSync(path.join(d, '.kiln', 'index'), { recursive: true });
    renameSync(path.join(d, 'index-then'), path.join(d, '.kiln', 'index'));
  }
  store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  t.same((await store.listObjects('b', { maxKeys: 1000 })).objects.map((o) => o.key).sort(), [...want.keys()].sort(), 'the listing is the one written last');
  for (const [k, b] of want) t.ok((await readObject(store, 'b', k)).equals(b), `${k} reads back`);
  t.ok((await store.listBuckets()).some((b) => b.name === 'later'), 'the bucket created last exists');
});
