// Streamed GETs read every block into a pooled buffer (block-pool.ts) and the server gives it
// back from the socket write's callback (app.ts writeBlocks): a block must never be reused while
// a reply still holds it, whatever the client does, and the pool must refuse what is not its own.
import t from 'tap';
import { rmSync } from 'node:fs';
import { CreateBucketCommand, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { takeBlock, giveBlock, reuseCount } from '../storage/block-pool';
import { startServer } from './helpers/server';
import { stalledGets } from './helpers/s3';
import { body as bytes } from './helpers/faults';

const MiB = 1024 * 1024;

t.test('the pool lends a block to one user at a time and keeps only its own', async (t) => {
  const size = 3 * 4096 + 8;
  const a = takeBlock(size);
  const b = takeBlock(size);
  t.not(a.buffer, b.buffer, 'two blocks out are two buffers');
  giveBlock(a.subarray(100, 200)); // a slice gives back the whole block
  giveBlock(a); // twice: ignored
  const c = takeBlock(size);
  const d = takeBlock(size);
  t.equal(c.buffer, a.buffer, 'the given-back block is lent again');
  t.equal(c.length, size, 'whole, though a slice was given back');
  t.not(d.buffer, a.buffer, 'given back twice, lent once');
  const foreign = Buffer.alloc(size);
  giveBlock(foreign);
  const e = takeBlock(size);
  t.not(e.buffer, foreign.buffer, 'a buffer the pool never lent is not taken in');
  for (const x of [b, c, d, e]) giveBlock(x);
});

t.test('streamed GETs over HTTP: recycled blocks never change bytes a slow reader has not taken yet', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.close());
  const s3 = srv.client();
  await s3.send(new CreateBucketCommand({ Bucket: 'recycle' }));
  const bodies = [3 * MiB + 7, 5 * MiB, 2 * MiB + 1, 4 * MiB - 3].map((n, i) => bytes(n, 40 + i));
  for (const [i, b] of bodies.entries()) await s3.send(new PutObjectCommand({ Bucket: 'recycle', Key: `k${i}`, Body: b }));
  const ranges: [number, number][] = [[0, 0], [MiB - 5, 2 * MiB + 5], [123, MiB + 456]];
  const want = (i: number, r?: [number, number]) => (r ? bodies[i].subarray(r[0], r[1] + 1) : bodies[i]);
  const get = async (i: number, r?: [number, number]) => {
    const out = await s3.send(new GetObjectCommand({ Bucket: 'recycle', Key: `k${i}`, Range: r ? `bytes=${r[0]}-${r[1]}` : undefined }));
    return Buffer.from(await out.Body!.transformToByteArray()).equals(want(i, r));
  };
  const everything = () => Promise.all([
    ...bodies.map((_, i) => get(i)),
    ...bodies.flatMap((_, i) => ranges.map((r) => get(i, r))),
  ]);
  const order: [number, [number, number]?][] = [[1], [0, ranges[1]], [3], [1], [2, ranges[2]], [0], [3, ranges[0]], [1]];
  const stalled = await stalledGets(srv, order.map(([i, r]) => ({ path: `/recycle/k${i}`, headers: r ? { range: `bytes=${r[0]}-${r[1]}` } : undefined })));
  const reusedBefore = reuseCount();
  let good = 0;
  let asked = 0;
  for (let round = 0; round < 3; round++) {
    const res = await everything();
    asked += res.length;
    good += res.filter(Boolean).length;
  }
  // Degraded: a data shard of k1 gone, so its blocks are rebuilt from parity (pooled too).
  const rec = await srv.kiln.store.headObject('recycle', 'k1');
  rmSync(srv.kiln.store.set.driveFor(rec.ec, 0).shardFile(rec.parts[0].dataDir));
  const res = await everything();
  asked += res.length;
  good += res.filter(Boolean).length;
  t.equal(good, asked, `every concurrent GET byte-exact (${asked}, whole, ranged, degraded)`);
  t.ok(reuseCount() - reusedBefore > 50, `blocks were recycled meanwhile (${reuseCount() - reusedBefore})`);
  const replies = await stalled.resume();
  t.equal(replies.length, order.length, 'every stalled reply arrived');
  t.same(replies.map((b, n) => b.equals(want(order[n][0], order[n][1]))), order.map(() => true), 'stalled replies byte-exact after the others ran');
});
