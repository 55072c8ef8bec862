// Index replicas group-commit on their own: each applies its queue in order, a batch is
// acknowledged once a write quorum has it, and reads go to the most advanced replica. A slow
// replica must neither hold back acknowledgements nor make an acknowledged write unreadable,
// and must end up identical; a replica that fails drops out without losing acknowledged writes.
import t from 'tap';
import { dumpReplica } from './helpers/replica';
import { ObjectStore } from '../storage';
import { tempDrives } from './helpers/drives';

type Db = { _batch: (ops: unknown[], o: unknown) => Promise<void> };
interface Rep { db: Db; drive: { root: string }; applied: bigint }

function replicas(store: ObjectStore): Rep[] {
  return (store.index as unknown as { replicas: Rep[] }).replicas;
}

const empty = async function* (): AsyncGenerator<Buffer> { /* no bytes */ };

t.test('a slow replica does not hold back acknowledgements, and acknowledged writes read back at once', async (t) => {
  const tmp = tempDrives(4, 'kiln-idxrep');
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  await store.createBucket('b');
  // Make the replica reads start on the slow one: every batch on it waits until released, so
  // reads must move to a replica that has the acknowledged batches.
  const slow = replicas(store)[0];
  const held: (() => void)[] = [];
  const real = slow.db._batch.bind(slow.db);
  slow.db._batch = (ops, o) => new Promise<void>((resolve, reject) => held.push(() => real(ops, o).then(resolve, reject)));

  for (let i = 0; i < 20; i++) {
    await store.putObject('b', `k${i}`, empty()); // would hang if the slow replica were waited for
    const rec = await store.headObject('b', `k${i}`);
    t.equal(rec.key, `k${i}`, `k${i} is readable as soon as it is acknowledged`);
  }
  t.ok(held.length > 0, 'the slow replica has batches outstanding');
  const listed = (await store.listObjects('b', { maxKeys: 100 })).objects.length;
  t.equal(listed, 20, 'listing (from the most advanced replica) has every acknowledged object');

  // Release the slow replica: it catches up in order and ends identical to the others.
  slow.db._batch = real;
  while (held.length) held.shift()!();
  await store.close();
  const dumps = await Promise.all(tmp.drives.map(async (d) => [...(await dumpReplica(`${d}/.kiln/index`))].map(([k, v]) => `${k}=${v}`)));
  for (let i = 1; i < dumps.length; i++) t.same(dumps[i], dumps[0], `replica ${i + 1} equals replica 1 after catching up`);
});

t.test('a replica whose writes fail is dropped; acknowledged writes survive a reopen', async (t) => {
  const tmp = tempDrives(4, 'kiln-idxrep-fail');
  t.teardown(tmp.cleanup);
  let store = await ObjectStore.open({ drives: tmp.drives });
  await store.createBucket('b');
  await store.putObject('b', 'before', empty());
  const bad = replicas(store)[1];
  bad.db._batch = () => Promise.reject(Object.assign(new Error('EIO: simulated'), { code: 'EIO' }));
  for (let i = 0; i < 10; i++) await store.putObject('b', `after${i}`, empty());
  t.equal(replicas(store).length, 3, 'the failing replica dropped out');
  await store.close();
  store = await ObjectStore.open({ drives: tmp.drives });
  const keys = (await store.listObjects('b', { maxKeys: 100 })).objects.map((o) => o.key).sort();
  t.same(keys, ['after0', 'after1', 'after2', 'after3', 'after4', 'after5', 'after6', 'after7', 'after8', 'after9', 'before'], 'every acknowledged object is there after a reopen');
  await store.close();
});

t.test('two failing replicas of four: writes are refused, nothing half-visible', async (t) => {
  const tmp = tempDrives(4, 'kiln-idxrep-quorum');
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  await store.createBucket('b');
  for (const r of replicas(store).slice(0, 2)) r.db._batch = () => Promise.reject(new Error('EIO: simulated'));
  await t.rejects(store.putObject('b', 'x', empty()), { code: 'InsufficientWriteQuorum' }, 'below the write quorum the PUT fails');
  await t.rejects(store.putObject('b', 'y', empty()), { code: 'InsufficientWriteQuorum' }, 'and keeps failing');
  await store.close();
});

t.test('drives whose index another store holds are refused whole, and the holder keeps serving', async (t) => {
  const tmp = tempDrives(4, 'kiln-idxlock');
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  await store.createBucket('b');
  // A PUT of the holder in flight, its shard files in tmp/: the refused open must not touch them.
  let go!: () => void;
  const gate = new Promise<void>((r) => (go = r));
  let started!: () => void;
  const writing = new Promise<void>((r) => (started = r));
  const first = Buffer.alloc(1536 * 1024, 1);
  async function* slow(): AsyncGenerator<Buffer> { yield first; started(); await gate; yield Buffer.from('end'); }
  const put = store.putObject('b', 'slow', slow());
  await writing;
  await t.rejects(ObjectStore.open({ drives: tmp.drives }), { code: 'InvalidArgument', message: /locked: is another Kiln already running/ }, 'the second open is refused');
  go();
  t.equal((await put).size, first.length + 3, "the holder's PUT in flight completed");
  t.ok(store.drives.every((d) => d.online), 'no drive of the holder was marked faulty');
  await store.putObject('b', 'k', (async function* () { yield Buffer.from('still here'); })());
  t.equal((await store.headObject('b', 'k')).size, 10, 'the holder still writes and reads');
});
