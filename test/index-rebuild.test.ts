// The index is a LevelDB replica on every drive. Losing one replica, or the whole drive that held
// the first one, loses nothing; a stale replica put back never wins over a fresher one.
import t, { Test } from 'tap';
import { cpSync, existsSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { dumpReplica } from './helpers/replica';
import { ObjectStore, Multipart, KvArea } from '../storage';
import { tempDrives, chunked } from './helpers/drives';
import { body, readObject, settle, shardPath } from './helpers/faults';

const KiB = 1024;
const MiB = 1024 * KiB;

type Expected = Map<string, Buffer>;

async function writeSome(store: ObjectStore, expected: Expected, tag: string, seed: number): Promise<void> {
  const sizes = [0, 100, 5 * KiB, 128 * KiB, 128 * KiB + 1, 900 * KiB, 2 * MiB + 17];
  for (const [i, size] of sizes.entries()) {
    const k = `${tag}/obj-${i}`;
    const b = body(size, seed * 100 + i);
    await store.putObject('b', k, chunked(b));
    expected.set(k, b);
  }
  const mp = new Multipart(store, 1024);
  const k = `${tag}/multipart`;
  const up = await mp.create('b', k);
  const p1 = body(1.1 * MiB, seed * 100 + 50), p2 = body(3 * KiB, seed * 100 + 51);
  const r1 = await mp.uploadPart('b', k, up.uploadId, 1, chunked(p1));
  const r2 = await mp.uploadPart('b', k, up.uploadId, 2, chunked(p2));
  await mp.complete('b', k, up.uploadId, [{ number: 1, etag: r1.etag }, { number: 2, etag: r2.etag }]);
  expected.set(k, Buffer.concat([p1, p2]));
}

async function checkAll(t: Test, store: ObjectStore, expected: Expected, what: string): Promise<void> {
  const listed = (await store.listObjects('b', { maxKeys: 10000 })).objects.map((o) => o.key).sort();
  t.same(listed, [...expected.keys()].sort(), `${what}: listing has exactly the written objects`);
  for (const [k, b] of expected) t.ok((await readObject(store, 'b', k)).equals(b), `${what}: ${k} reads back`);
}

async function sameReplicas(t: Test, drives: string[], what: string): Promise<void> {
  const ref = await dumpReplica(path.join(drives[0], '.kiln', 'index'));
  t.ok(ref.size > 10, `${what}: replica holds entries`);
  for (const d of drives.slice(1)) t.same(await dumpReplica(path.join(d, '.kiln', 'index')), ref, `${what}: replica on ${path.basename(d)} equals the first`);
}

async function codedDirs(store: ObjectStore, expected: Expected): Promise<string[]> {
  const dirs: string[] = [];
  for (const k of expected.keys()) for (const p of (await store.headObject('b', k)).parts) if (!p.inline) dirs.push(p.dataDir);
  return dirs;
}

t.test('(a) one replica deleted while closed is rebuilt', async (t) => {
  for (const victim of [0, 2]) {
    const tmp = tempDrives(4, 'kiln-idx-a');
    t.teardown(tmp.cleanup);
    const expected: Expected = new Map();
    let store = await ObjectStore.open({ drives: tmp.drives });
    await store.createBucket('b');
    await writeSome(store, expected, 'one', 1);
    await settle(store);
    await store.close();
    const before = await dumpReplica(path.join(tmp.drives[victim], '.kiln', 'index'));
    rmSync(path.join(tmp.drives[victim], '.kiln', 'index'), { recursive: true, force: true });

    store = await ObjectStore.open({ drives: tmp.drives });
    await checkAll(t, store, expected, `replica ${victim} deleted`);
    await settle(store);
    await store.close();
    t.same(await dumpReplica(path.join(tmp.drives[victim], '.kiln', 'index')), before, `replica ${victim} rebuilt with the same entries`);
    await sameReplicas(t, tmp.drives, `after rebuilding ${victim}`);
  }
});

t.test('(b) the whole first drive deleted while closed: objects come back, shards healed', async (t) => {
  const tmp = tempDrives(4, 'kiln-idx-b');
  t.teardown(tmp.cleanup);
  const expected: Expected = new Map();
  let store = await ObjectStore.open({ drives: tmp.drives });
  await store.createBucket('b');
  await writeSome(store, expected, 'b', 2);
  const first = store.drives[0].root;
  t.equal(first, path.resolve(tmp.drives[0]), 'drives[0] holds the first replica');
  const dirs = await codedDirs(store, expected);
  await settle(store);
  await store.close();
  rmSync(tmp.drives[0], { recursive: true, force: true });

  store = await ObjectStore.open({ drives: tmp.drives });
  await checkAll(t, store, expected, 'drive 0 deleted');
  await settle(store);
  for (const d of dirs) t.ok(existsSync(shardPath(tmp.drives[0], d)), `shard of ${d} healed onto the replacement`);
  // Writes keep working and land on every replica.
  await writeSome(store, expected, 'after', 3);
  await checkAll(t, store, expected, 'after more writes');
  await settle(store);
  await store.close();
  await sameReplicas(t, tmp.drives, 'after replacing drive 0');
});

t.test('(c) a stale replica put back does not win over fresher ones', async (t) => {
  for (const victim of [0, 3]) {
    const tmp = tempDrives(4, 'kiln-idx-c');
    t.teardown(tmp.cleanup);
    const expected: Expected = new Map();
    let store = await ObjectStore.open({ drives: tmp.drives });
    await store.createBucket('b');
    await writeSome(store, expected, 'old', 4);
    await settle(store);
    await store.close();
    const idx = path.join(tmp.drives[victim], '.kiln', 'index');
    const aside = path.join(tmp.root, 'index-aside');
    rmSync(aside, { recursive: true, force: true });
    cpSync(idx, aside, { recursive: true });

    store = await ObjectStore.open({ drives: tmp.drives });
    await writeSome(store, expected, 'new', 5);
    // Overwrite and delete some of the old ones, so the stale copy disagrees in every way.
    const b = body(333 * KiB, 77);
    await store.putObject('b', 'old/obj-1', chunked(b));
    expected.set('old/obj-1', b);
    await store.deleteObject('b', 'old/obj-5');
    expected.delete('old/obj-5');
    await settle(store);
    await store.close();

    rmSync(idx, { recursive: true, force: true });
    cpSync(aside, idx, { recursive: true });
    store = await ObjectStore.open({ drives: tmp.drives });
    await checkAll(t, store, expected, `stale replica on drive ${victim}`);
    await settle(store);
    await store.close();
    await sameReplicas(t, tmp.drives, `stale replica ${victim} replaced by the freshest`);
  }
});

t.test('(d) replicas failing while running: writes go on at quorum, the right replicas are dropped', async (t) => {
  // 6 drives (3+3): the write quorum is 4, so two replicas may fail.
  const tmp = tempDrives(6, 'kiln-idx-d');
  t.teardown(tmp.cleanup);
  const expected: Expected = new Map();
  let store = await ObjectStore.open({ drives: tmp.drives });
  await store.createBucket('b');
  await writeSome(store, expected, 'before', 6);
  // Inject: the LevelDB of the first two replicas stops working (closed under the index).
  const replicas = (store.index as unknown as { replicas: { drive: { root: string; online: boolean }; db: { close(): Promise<void> } }[] }).replicas;
  const failing = replicas.slice(0, 2);
  for (const r of failing) await r.db.close();
  // A batch straight to the index (no read first, which would find the failures on its own).
  const kv = new KvArea<{ v: number }>(store, 'test');
  await kv.put('x', { v: 1 });
  await writeSome(store, expected, 'during', 7);
  t.equal(store.index.online, 4, 'exactly the two failed replicas were dropped');
  for (const r of failing) t.notOk(r.drive.online, `${path.basename(r.drive.root)} marked failed`);
  await writeSome(store, expected, 'still', 8);
  await checkAll(t, store, expected, 'two replicas failed');
  await settle(store);
  await store.close();
  store = await ObjectStore.open({ drives: tmp.drives });
  await checkAll(t, store, expected, 'after restart');
  t.same(await new KvArea<{ v: number }>(store, 'test').get('x'), { v: 1 }, 'the batch written while replicas failed is there');
  await settle(store);
  await store.close();
  await sameReplicas(t, tmp.drives, 'stale replicas rebuilt');
});
