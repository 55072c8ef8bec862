// Space is given back: after overwrites, multipart uploads (completed with parts left out,
// aborted, expired) and deleting everything, the drives hold no object data, no tmp or trash
// leftovers, and the index no object, upload, part or inline entries.
//
// Empty fan-out directories (<drive>/data/<2 hex>/) are allowed to remain: they are created on
// demand, bounded to 256 per drive, and removing them would race with concurrent commits.
import t, { Test } from 'tap';
import * as path from 'node:path';
import { ObjectStore, Multipart } from '../storage';
import { tempDrives, chunked } from './helpers/drives';
import { body, readObject, settle, filesUnder, dataDirsOn, entries } from './helpers/faults';
import { NS_BUCKET } from '../storage/records';
import { MetaIndex, IterateOptions } from '../storage/meta-index';

const KiB = 1024;
const MiB = 1024 * KiB;

async function checkEmpty(t: Test, store: ObjectStore, drives: string[], what: string): Promise<void> {
  for (const d of drives) {
    const name = path.basename(d);
    t.same(filesUnder(path.join(d, 'data')), [], `${what}: ${name} has no files under data/`);
    t.same(dataDirsOn(d), [], `${what}: ${name} has no data dirs`);
    t.same(entries(path.join(d, '.kiln', 'tmp')), [], `${what}: ${name} .kiln/tmp is empty`);
    t.same(entries(path.join(d, '.kiln', 'trash')), [], `${what}: ${name} .kiln/trash is empty`);
  }
  const stray: string[] = [];
  for await (const [k] of store.index.entries({})) {
    const ownKey = k[0] === 0; // the replica's sequence number and value-log marker
    if (!ownKey && k[0] !== NS_BUCKET) stray.push(`${String.fromCharCode(k[0])}:${k.subarray(1).toString('utf8').replace(/\0/g, '/')}`);
  }
  t.same(stray, [], `${what}: index holds only bucket records and the sequence key`);
  // Inline bodies live in each replica's value log: nothing there is referenced any more.
  for (const u of (store.index as MetaIndex).valueLogUsage()) t.equal(u.live, 0, `${what}: value log on ${path.basename(u.drive)} holds no live bytes`);
}

t.test('everything deleted: no data, no tmp/trash, no index entries left', async (t) => {
  const tmp = tempDrives(4, 'kiln-space');
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  await store.createBucket('b');
  await store.createBucket('c');
  const mp = new Multipart(store, 1024);
  const keys = new Set<string>();
  let seed = 0;
  const put = async (bucket: string, k: string, size: number) => {
    const b = body(size, ++seed);
    await store.putObject(bucket, k, chunked(b, 50000));
    keys.add(`${bucket}\0${k}`);
    return b;
  };

  // Plain objects, inline and erasure-coded.
  const sizes = [0, 1, 1000, 128 * KiB, 128 * KiB + 1, 700 * KiB, MiB, 2.5 * MiB + 3];
  for (const [i, size] of sizes.entries()) {
    await put('b', `p/${i}`, size);
    await put('c', `p/${i}`, size);
  }
  // Overwrites: big over small, small over big, big over big, inline over inline.
  for (const [i, size] of [[0, 2 * MiB], [5, 10], [6, 1.5 * MiB], [2, 50 * KiB], [7, 300 * KiB]] as const) {
    const b = await put('b', `p/${i}`, size);
    t.ok((await readObject(store, 'b', `p/${i}`)).equals(b), `overwrite p/${i} reads back`);
  }
  // Overwrite while a reader holds the old object: the old data outlives the overwrite until
  // the reader is done.
  const old = body(1.2 * MiB, 900);
  await store.putObject('b', 'pinned', chunked(old));
  keys.add('b\0pinned');
  const reading = await store.getObject('b', 'pinned');
  await put('b', 'pinned', 1.3 * MiB);
  t.ok(store.pendingRemovals > 0, 'removal of the old data waits for the reader');
  const chunks: Buffer[] = [];
  for await (const c of reading.stream) chunks.push(c as Buffer);
  t.ok(Buffer.concat(chunks).equals(old), 'the pinned reader got the old object whole');

  // Multipart: completed with parts left out (inline and coded), replaced parts, aborted, expired.
  const parts = async (k: string, uploadId: string, plan: number[], bucket = 'b') => {
    const out = [];
    for (const [i, size] of plan.entries()) out.push(await mp.uploadPart(bucket, k, uploadId, i + 1, chunked(body(size, ++seed))));
    return out;
  };
  {
    const up = await mp.create('b', 'mp/complete-some');
    const r = await parts('mp/complete-some', up.uploadId, [1.1 * MiB, 2000, 600 * KiB, 3000, 1.5 * MiB]);
    // Part 2 uploaded again: the first copy must be freed too.
    r[1] = await mp.uploadPart('b', 'mp/complete-some', up.uploadId, 2, chunked(body(1.3 * MiB, ++seed)));
    await mp.complete('b', 'mp/complete-some', up.uploadId, [1, 2, 4].map((n) => ({ number: n, etag: r[n - 1].etag })));
    keys.add('b\0mp/complete-some');
  }
  {
    const up = await mp.create('b', 'mp/complete-all');
    const r = await parts('mp/complete-all', up.uploadId, [200 * KiB, 1.2 * MiB, 10]);
    await mp.complete('b', 'mp/complete-all', up.uploadId, r.map((p) => ({ number: p.number, etag: p.etag })));
    keys.add('b\0mp/complete-all');
    // Overwrite a multipart object with a plain one.
    await put('b', 'mp/complete-all', 1.7 * MiB);
  }
  {
    const up = await mp.create('b', 'mp/aborted');
    await parts('mp/aborted', up.uploadId, [1.4 * MiB, 4000, 700 * KiB]);
    await mp.abort('b', 'mp/aborted', up.uploadId);
  }
  for (let i = 0; i < 3; i++) {
    const up = await mp.create('c', `mp/expired-${i}`);
    await parts(`mp/expired-${i}`, up.uploadId, [1.05 * MiB, 100 + i], 'c');
  }
  t.equal(await mp.expire(Date.now() + 1), 3, 'three uploads expired');
  t.same((await mp.listUploads('c', { max: 100 })).uploads, [], 'no uploads left');

  // Delete everything that is listed, then everything we ever wrote (deleting twice is harmless).
  for (const bucket of ['b', 'c']) {
    const list = await store.listObjects(bucket, { maxKeys: 10000 });
    for (const o of list.objects) await store.deleteObject(bucket, o.key);
  }
  for (const bk of keys) {
    const [bucket, k] = bk.split('\0');
    await store.deleteObject(bucket, k);
    await t.rejects(store.headObject(bucket, k), { code: 'NoSuchKey' });
  }
  await settle(store);
  t.equal(store.pendingRemovals, 0, 'no removals pending');
  await checkEmpty(t, store, tmp.drives, 'after deleting everything');
  // The buckets are empty, so they can go too.
  await store.deleteBucket('b');
  await store.deleteBucket('c');
  t.same(await store.listBuckets(), []);
});

t.test('orphan sweep frees data dirs the index does not know', async (t) => {
  const tmp = tempDrives(4, 'kiln-space-orphan');
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  await store.createBucket('b');
  // A body written to shards but never committed to the index (as after a crash).
  const w = await store.writeBody(store.set.layoutFor('b', 'x'), chunked(body(1.5 * MiB, 3)), {}, 1);
  t.notOk(w.inline);
  for (const d of tmp.drives) t.same(dataDirsOn(d), [w.dataDir], 'shards were written');
  await store.putObject('b', 'kept', chunked(body(1.1 * MiB, 4)));
  const kept = (await store.headObject('b', 'kept')).parts[0].dataDir;
  t.equal(await store.collectOrphans(Date.now() + 1), 4, 'one orphan dir per drive removed');
  for (const d of tmp.drives) t.same(dataDirsOn(d), [kept], 'only the live dir remains');
  await store.deleteObject('b', 'kept');
  await settle(store);
  await checkEmpty(t, store, tmp.drives, 'after the sweep and delete');
});

// The sweep must see every record as of one moment. Reading namespace by namespace, an upload
// completed between the object records and the part records (its parts moved from one to the
// other) was in neither: its parts, written before the crash, were removed as orphans.
t.test('the orphan sweep reads the index as of one moment: a multipart upload completed during it keeps its parts', async (t) => {
  const tmp = tempDrives(4, 'kiln-space-orphan-race');
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  await store.createBucket('b');
  for (let i = 0; i < 3; i++) await store.putObject('b', `other${i}`, chunked(body(300 * KiB, 10 + i)));
  const mp = new Multipart(store, 100 * KiB);
  const up = await mp.create('b', 'big');
  const parts = [body(400 * KiB, 21), body(300 * KiB, 22)];
  const etags: string[] = [];
  for (const [i, p] of parts.entries()) etags.push((await mp.uploadPart('b', 'big', up.uploadId, i + 1, chunked(p))).etag);
  // The upload is completed right after the sweep's first page of records comes back.
  const index = store.index as MetaIndex;
  const iterator = index.iterator.bind(index);
  let completed: Promise<unknown> | undefined;
  index.iterator = (opts: IterateOptions) => {
    const it = iterator(opts);
    return {
      nextv: async (n: number) => {
        const page = await it.nextv(n);
        if (!completed) {
          index.iterator = iterator; // the completion reads the index too
          completed = mp.complete('b', 'big', up.uploadId, etags.map((etag, i) => ({ number: i + 1, etag })));
          await completed;
        }
        return page;
      },
      seek: (k: Buffer) => it.seek(k),
      close: () => it.close(),
    };
  };
  const removed = await store.collectOrphans(Date.now() + 1);
  t.ok(completed, 'the upload was completed during the sweep');
  t.equal(removed, 0, 'no data dir was taken for an orphan');
  t.ok((await readObject(store, 'b', 'big')).equals(Buffer.concat(parts)), 'the completed object reads back whole');
  for (let i = 0; i < 3; i++) t.ok((await readObject(store, 'b', `other${i}`)).equals(body(300 * KiB, 10 + i)), `other${i} reads back`);
});
