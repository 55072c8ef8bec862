// The index keeps recently read values in memory (MetaIndex's ReadCache) and the store shares
// one decoded, frozen record per value. Invariant: a read that starts after a write was
// acknowledged never returns what that write replaced — not a cached record, not cached inline
// bytes, not a cached "absent" — even when reads move to another replica.
import t from 'tap';
import { ObjectStore } from '../storage';
import { tempDrives } from './helpers/drives';
import { waitUntil } from './helpers/faults';

async function* bodyOf(b: Buffer): AsyncGenerator<Buffer> { yield b; }

async function read(store: ObjectStore, k: string): Promise<Buffer> {
  const got = await store.getObject('b', k);
  if (got.bytes) return Buffer.from(got.bytes);
  const chunks: Buffer[] = [];
  for await (const c of got.stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

type Db = { _batch: (ops: unknown[], o: unknown) => Promise<void> };
function replicas(store: ObjectStore): { db: Db }[] {
  return (store.index as unknown as { replicas: { db: Db }[] }).replicas;
}

t.test('overwrites, deletes and creates are seen by the next read, never a cached older value', async (t) => {
  const tmp = tempDrives(4, 'kiln-readcache');
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  await store.createBucket('b');

  // Absent, read (and remembered as absent), then created: the create is seen.
  await t.rejects(store.headObject('b', 'k'), { code: 'NoSuchKey' });
  await store.putObject('b', 'k', bodyOf(Buffer.from('v0')));
  t.equal((await read(store, 'k')).toString(), 'v0', 'a key read as absent, then created, reads back');

  // Reads racing overwrites: each read sees the last acknowledged value or one newer.
  let acked = 0;
  let stale = 0;
  const readers = (async () => {
    for (let i = 0; i < 300 && acked < 100; i++) {
      const floor = acked;
      const n = Number((await read(store, 'k')).toString().slice(1));
      if (n < floor) stale++;
      await new Promise((r) => setImmediate(r));
    }
  })();
  for (let n = 1; n <= 100; n++) {
    await store.putObject('b', 'k', bodyOf(Buffer.from(`v${n}`)), { meta: { n: String(n) } });
    acked = n;
    t.equal((await store.headObject('b', 'k')).meta.n, String(n), `record ${n} is read right after its put`);
  }
  await readers;
  t.equal(stale, 0, 'no read returned a value older than the last acknowledged write');
  t.equal((await read(store, 'k')).toString(), 'v100');

  // A large (not inline) overwrite of an inline object, and back.
  const big = Buffer.alloc(300 * 1024, 9);
  await store.putObject('b', 'k', bodyOf(big));
  t.ok((await read(store, 'k')).equals(big), 'the shard-stored overwrite reads back');
  await store.putObject('b', 'k', bodyOf(Buffer.from('small')));
  t.equal((await read(store, 'k')).toString(), 'small', 'and the inline one after it');

  await store.deleteObject('b', 'k');
  await t.rejects(store.getObject('b', 'k'), { code: 'NoSuchKey' }, 'a delete is seen at once');
});

t.test('records are shared frozen; metadata updates still apply and are seen', async (t) => {
  const tmp = tempDrives(4, 'kiln-readcache-frozen');
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  await store.createBucket('b');
  await store.putObject('b', 'k', bodyOf(Buffer.from('x')), { meta: { a: '1' } });
  // Once every replica has the write (the slowest may still be syncing when the put returns),
  // reads come from the cache and share one decoded record.
  let r1 = await store.headObject('b', 'k');
  for (let i = 0; i < 200 && (await store.headObject('b', 'k')) !== r1; i++) {
    await new Promise((r) => setTimeout(r, 10));
    r1 = await store.headObject('b', 'k');
  }
  t.equal(await store.headObject('b', 'k'), r1, 'two reads of an unchanged record share one object');
  t.ok(Object.isFrozen(r1) && Object.isFrozen(r1.meta) && Object.isFrozen(r1.parts[0]), 'and it is frozen, deeply');
  t.throws(() => { (r1.meta as Record<string, string>).a = '2'; }, TypeError, 'a reader cannot change what others read');
  await store.updateObject('b', 'k', (r) => { r.tags = { t: 'v' }; });
  const r2 = await store.headObject('b', 'k');
  t.same(r2.tags, { t: 'v' }, 'an update through updateObject is applied and read back');
  t.equal(r1.tags, undefined, 'the earlier reader\'s record is untouched');
});

t.test('reads that move to another replica (the one cached from failed) stay correct', async (t) => {
  const tmp = tempDrives(4, 'kiln-readcache-drop');
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  await store.createBucket('b');
  await store.putObject('b', 'k', bodyOf(Buffer.from('one')));
  t.equal((await read(store, 'k')).toString(), 'one');
  // Every replica's next write fails on one of them: it is dropped, the cache is cleared, and
  // the write still reaches quorum on the other three.
  const victim = replicas(store)[0];
  victim.db._batch = () => Promise.reject(new Error('injected write failure'));
  await store.putObject('b', 'k', bodyOf(Buffer.from('two')));
  // Acknowledged at the quorum of the other three: the victim fails once its log write returns.
  t.ok(await waitUntil(() => replicas(store).length === 3), 'the failing replica is out');
  t.equal((await read(store, 'k')).toString(), 'two', 'the acknowledged write is read from the remaining replicas');
  await store.putObject('b', 'k2', bodyOf(Buffer.from('three')));
  t.equal((await read(store, 'k2')).toString(), 'three');
});

t.test('shard-stored objects overwritten while being read: every read is one whole version', async (t) => {
  const tmp = tempDrives(4, 'kiln-readcache-big');
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  await store.createBucket('b');
  const size = 256 * 1024;
  await store.putObject('b', 'big', bodyOf(Buffer.alloc(size, 0)));
  let writing = true;
  const bad: string[] = [];
  let reads = 0;
  const readers = Array.from({ length: 4 }, async () => {
    for (let i = 0; i < 200 && writing; i++) {
      try {
        const got = await read(store, 'big');
        reads++;
        if (got.length !== size || got.some((b) => b !== got[0])) bad.push(`read ${reads}: ${got.length} bytes, mixed`);
      } catch (e) {
        bad.push((e as Error).message);
      }
    }
  });
  for (let n = 1; n <= 30; n++) await store.putObject('b', 'big', bodyOf(Buffer.alloc(size, n)));
  writing = false;
  await Promise.all(readers);
  t.ok(reads > 0, `${reads} reads raced the overwrites`);
  t.same(bad, [], 'none failed or mixed versions');
  t.ok((await read(store, 'big')).every((b) => b === 30), 'the last write is what reads back');
});
