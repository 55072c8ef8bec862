// Concurrent writers to one key: last commit wins, never a mix. A read started before or
// during an overwrite returns the old or the new object whole.
import t from 'tap';
import { ObjectStore } from '../storage';
import { tempDrives, chunked, collect } from './helpers/drives';
import { body, md5, readObject, settle, dataDirsOn, prng } from './helpers/faults';

const MiB = 1024 * 1024;

t.test('8 concurrent PUTs to one key: exactly one body wins, ETag matches', async (t) => {
  const tmp = tempDrives(4, 'kiln-conc');
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  await store.createBucket('b');
  for (let round = 0; round < 3; round++) {
    const bodies = Array.from({ length: 8 }, (_, i) => body(MiB + ((i * 277 + round * 131) % 2048) * 1024 + i, round * 10 + i));
    const sums = bodies.map(md5);
    const recs = await Promise.all(bodies.map((b, i) => store.putObject('b', 'k', chunked(b, 32768 + i * 1000))));
    recs.forEach((r, i) => t.equal(r.etag, sums[i], `round ${round}: writer ${i} ETag is its body's MD5`));
    const head = await store.headObject('b', 'k');
    const got = await readObject(store, 'b', 'k');
    const winner = sums.indexOf(md5(got));
    t.ok(winner >= 0, `round ${round}: the object is one of the bodies (writer ${winner})`);
    t.equal(head.etag, md5(got), `round ${round}: ETag matches the bytes`);
    t.equal(head.size, got.length);
    await settle(store);
    // Every loser's data was freed: one data dir per drive remains.
    for (const d of tmp.drives) t.same(dataDirsOn(d), [head.parts[0].dataDir], `round ${round}: only the winner's data remains on ${d}`);
  }
});

t.test('reads racing overwrites return the old or the new object whole', async (t) => {
  const tmp = tempDrives(4, 'kiln-conc-read');
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  await store.createBucket('b');
  const rnd = prng(20240611);
  let current = body(2 * MiB + 5, 1);
  await store.putObject('b', 'k', chunked(current));

  // Deterministic interleaving: the reader opens (and reads part of) the object, the overwrite
  // commits completely, then the reader finishes. The old data must still be there.
  for (let i = 0; i < 6; i++) {
    const next = body(MiB + Math.floor(rnd() * 2 * MiB), 100 + i);
    const got = await store.getObject('b', 'k');
    const it = got.stream[Symbol.asyncIterator]();
    const first: Buffer[] = [];
    if (i % 2 === 1) { const r = await it.next(); if (!r.done) first.push(r.value as Buffer); }
    await store.putObject('b', 'k', chunked(next));
    t.ok(store.pendingRemovals > 0, `case ${i}: old data kept for the open reader`);
    const rest: Buffer[] = [];
    for (;;) { const r = await it.next(); if (r.done) break; rest.push(r.value as Buffer); }
    t.ok(Buffer.concat([...first, ...rest]).equals(current), `case ${i}: the reader opened before the overwrite got the old object whole`);
    await settle(store);
    t.ok((await readObject(store, 'b', 'k')).equals(next), `case ${i}: a later read gets the new object`);
    current = next;
  }

  // Free-running: several readers and writers at once, bounded rounds. Each read must be whole
  // and equal to some body that was written to the key.
  const known = new Map<string, number>([[md5(current), current.length]]);
  for (let round = 0; round < 4; round++) {
    const writes = Array.from({ length: 3 }, (_, j) => {
      const b = body(MiB / 2 + Math.floor(rnd() * 2.5 * MiB), 1000 + round * 10 + j);
      known.set(md5(b), b.length);
      return b;
    });
    // Readers start spread over the writers' lifetime (a random number of event-loop turns in).
    const readers = Array.from({ length: 5 }, async () => {
      const turns = Math.floor(rnd() * 200);
      for (let n = 0; n < turns; n++) await new Promise((r) => setImmediate(r));
      const got = await store.getObject('b', 'k');
      const data = await collect(got.stream);
      return { data, etag: got.record.etag };
    });
    const [reads] = await Promise.all([Promise.all(readers), Promise.all(writes.map((b) => store.putObject('b', 'k', chunked(b, 65536))))]);
    for (const r of reads) {
      const sum = md5(r.data);
      t.ok(known.has(sum), `round ${round}: a racing read returned a whole written body`);
      t.equal(sum, r.etag, `round ${round}: and it matches the record it was read under`);
    }
  }
  await settle(store);
  const head = await store.headObject('b', 'k');
  for (const d of tmp.drives) t.same(dataDirsOn(d), [head.parts[0].dataDir], `no leftover data on ${d}`);
});
