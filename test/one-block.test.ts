// Objects of one erasure block (above the inline threshold, up to 1 MiB) take a short path: each
// drive's shard file is made, written, synced and committed by one task (Drive.writeOneFrame),
// and a GET reads the data shards by name in one task (readOneBlock). The layout on disk, the
// quorum rule and the clean-up on failure must be those of the streaming path.
import t from 'tap';
import { readFileSync, readdirSync, existsSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { ObjectStore } from '../storage';
import { DEFAULT_INLINE_THRESHOLD, BITROT_HEADER } from '../storage/constants';
import * as native from '../storage/native';
import { Drive } from '../storage/drive';
import { tempDrives, chunked } from './helpers/drives';
import { shardPath, readObject, body as bytes, settle, md5 } from './helpers/faults';

const MiB = 1024 * 1024;
const crcOf = (b: Buffer) => native.crc32c(b);

t.test('one-block PUTs: one shard file per drive, framed, nothing left in tmp; ranges read back', async (t) => {
  const tmp = tempDrives(4, 'kiln-oneblock');
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  await store.createBucket('b');
  const sizes = [DEFAULT_INLINE_THRESHOLD + 1, 300 * 1024 + 7, MiB - 1, MiB, MiB + 1];
  for (const [i, size] of sizes.entries()) {
    const body = bytes(size, i + 1);
    const put = await store.putObject('b', `o${i}`, chunked(body, 65536 + 3));
    t.equal(put.etag, md5(body), `${size} B: ETag is the MD5`);
    const rec = await store.headObject('b', `o${i}`);
    t.notOk(rec.parts[0].inline, `${size} B: in shard files`);
    const S = store.set.erasure.shardSize(Math.min(size, MiB));
    for (let slot = 0; slot < 4; slot++) {
      const file = shardPath(store.set.driveFor(rec.ec, slot).root, rec.parts[0].dataDir);
      const f = readFileSync(file);
      if (size <= MiB) {
        t.equal(f.length, BITROT_HEADER + S, `${size} B, slot ${slot}: one frame`);
        t.equal(f.readUInt32LE(0), crcOf(f.subarray(BITROT_HEADER)), `${size} B, slot ${slot}: its CRC32C heads it`);
      }
      if (slot < 2) t.ok(f.subarray(BITROT_HEADER, BITROT_HEADER + Math.min(S, size - slot * S)).equals(body.subarray(slot * S, Math.min(size, (slot + 1) * S))), `${size} B, data slot ${slot}: systematic`);
    }
    t.ok((await readObject(store, 'b', `o${i}`)).equals(body), `${size} B: whole read`);
    const got = await store.getObject('b', `o${i}`);
    if (size <= MiB) t.ok(got.bytes, `${size} B: read whole in one go`);
    got.stream.destroy();
    for (const [s, e] of [[0, 1], [17, 4096], [size - 100, size], [S - 5, S + 5]]) {
      t.ok((await readObject(store, 'b', `o${i}`, { start: s, end: e })).equals(body.subarray(s, e)), `${size} B: range ${s}-${e}`);
    }
  }
  for (const d of tmp.drives) t.same(readdirSync(path.join(d, '.kiln', 'tmp')), [], `${path.basename(d)}: tmp is empty`);
});

t.test('one-block PUT with a drive that cannot write: committed on the others, healed back; below quorum nothing stays', async (t) => {
  const tmp = tempDrives(4, 'kiln-oneblock-fail');
  t.teardown(tmp.cleanup);
  let store = await ObjectStore.open({ drives: tmp.drives });
  await store.createBucket('b');
  const body = bytes(500 * 1024, 9);
  // tmp/ replaced by a file: making the write's tmp dir fails on that drive (ENOTDIR).
  const breakTmp = (d: string) => { const p = path.join(d, '.kiln', 'tmp'); rmSync(p, { recursive: true, force: true }); writeFileSync(p, 'x'); };
  breakTmp(tmp.drives[1]);
  await store.putObject('b', 'one-bad', chunked(body));
  t.equal(store.set.drives[1].state, 'faulty', 'the drive that failed is marked faulty');
  t.match(store.set.drives[1].lastError, /mkdir|ENOTDIR|not a directory/i, 'its error names the step');
  t.ok((await readObject(store, 'b', 'one-bad')).equals(body), 'reads with three shards');
  const dataDir = (await store.headObject('b', 'one-bad')).parts[0].dataDir;
  t.equal(tmp.drives.filter((d) => existsSync(shardPath(d, dataDir))).length, 3, 'three shard files committed');

  // A second drive breaks: 2 of 4 is below the write quorum (3 for 2+2). The PUT fails and
  // leaves no data dir on the drive that did write.
  breakTmp(tmp.drives[2]);
  const dirs = () => tmp.drives.map((d) => readdirSync(path.join(d, 'data')).flatMap((x) => readdirSync(path.join(d, 'data', x))).length);
  const before = dirs();
  await t.rejects(store.putObject('b', 'two-bad', chunked(body)), { code: 'InsufficientWriteQuorum' }, 'below quorum: refused');
  await settle(store);
  t.same(dirs(), before, 'no data dir left behind on any drive');
  await t.rejects(store.headObject('b', 'two-bad'), { code: 'NoSuchKey' }, 'nothing visible');
  t.ok((await readObject(store, 'b', 'one-bad')).equals(body), 'the earlier object still reads');
  await store.close();

  // Drives repaired: a restart heals the missed shard back.
  for (const i of [1, 2]) { rmSync(path.join(tmp.drives[i], '.kiln', 'tmp')); mkdirSync(path.join(tmp.drives[i], '.kiln', 'tmp')); }
  store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  await store.healer.sweep();
  await settle(store);
  t.equal(tmp.drives.filter((d) => existsSync(shardPath(d, dataDir))).length, 4, 'the missed shard is healed back');
  t.ok((await readObject(store, 'b', 'one-bad')).equals(body), 'reads after the heal');
});

t.test('one-block GET: a missing or unreadable data shard falls back to the degraded read', async (t) => {
  const tmp = tempDrives(4, 'kiln-oneblock-read');
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  await store.createBucket('b');
  const body = bytes(MiB - 3, 4);
  await store.putObject('b', 'o', chunked(body));
  const rec = await store.headObject('b', 'o');
  const file = shardPath(store.set.driveFor(rec.ec, 1).root, rec.parts[0].dataDir);
  const original = readFileSync(file);
  rmSync(file);
  t.ok((await readObject(store, 'b', 'o')).equals(body), 'missing data shard: rebuilt from parity');
  await settle(store);
  t.ok(readFileSync(file).equals(original), 'and healed');
  // A directory where the file should be: open succeeds, the read fails (EISDIR).
  rmSync(file);
  mkdirSync(file);
  t.ok((await readObject(store, 'b', 'o')).equals(body), 'unreadable data shard: rebuilt from parity');
});

t.test('the addon and the fallback agree: writeOneFrame, readFiles and their errors', async (t) => {
  const tmp = tempDrives(1, 'kiln-oneblock-native');
  t.teardown(tmp.cleanup);
  const drive = new Drive(tmp.drives[0], 0, true);
  await drive.prepare();
  const data = bytes(777_777, 5);
  const id = 'ab0123456789abcdef0123456789abcd';
  t.equal(await drive.writeOneFrame(id, data), crcOf(data), 'resolves to the frame CRC');
  const f = readFileSync(drive.shardFile(id));
  t.equal(f.readUInt32LE(0), crcOf(data));
  t.ok(f.subarray(BITROT_HEADER).equals(data), 'the frame holds the bytes');
  t.notOk(existsSync(drive.tmpPath(id)), 'the tmp dir became the data dir');
  // Fan-out dir present now: a second object under it.
  const id2 = 'ab' + 'f'.repeat(30);
  await drive.writeOneFrame(id2, data.subarray(1));
  const into = Buffer.alloc(2 * data.length);
  const corrupt = drive.shardFile(id2);
  const flipped = readFileSync(corrupt);
  flipped[100] ^= 1;
  writeFileSync(corrupt, flipped);
  const r = await native.readFiles([drive.shardFile(id), drive.shardFile('ab' + '0'.repeat(30))], 0, into);
  t.equal(r[0], true, 'good file reads true');
  t.ok(into.subarray(0, data.length).equals(data), 'into its slice');
  t.equal((r[1] as NodeJS.ErrnoException).code, 'ENOENT', 'a missing file is ENOENT');
  t.same(await native.readFiles([corrupt], 0, Buffer.alloc(data.length - 1)), [false], 'a corrupt frame reads false');
  // The step that failed is named: the fan-out dir is a file, so the rename cannot land.
  const id3 = 'cd' + '1'.repeat(30);
  writeFileSync(path.dirname(drive.dataPath(id3)), 'not a dir');
  await t.rejects(drive.writeOneFrame(id3, data), { code: 'ENOTDIR' }, 'rename into a file refused');

  // The same through the JavaScript fallback, in a child with KILN_NATIVE=off.
  const storage = path.join(__dirname, '..', 'storage');
  const script = `
    const { Drive } = require(${JSON.stringify(path.join(storage, 'drive'))});
    const n = require(${JSON.stringify(path.join(storage, 'native'))});
    (async () => {
      if (n.nativeLoaded) throw new Error('fallback expected');
      const d = new Drive(process.argv[1], 0, true);
      await d.prepare();
      const data = Buffer.from(process.argv[2], 'hex');
      const c = await d.writeOneFrame('ef' + '2'.repeat(30), data);
      const into = Buffer.alloc(data.length * 2);
      const r = await n.readFiles([d.shardFile('ef' + '2'.repeat(30)), d.shardFile('${id}')], 0, into);
      process.stdout.write(JSON.stringify({ c, r, same: into.subarray(0, data.length).equals(data) }));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const small = data.subarray(0, 4096);
  const { execFileSync } = await import('node:child_process');
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script, tmp.drives[0], small.toString('hex')], { env: { ...process.env, KILN_NATIVE: 'off' }, encoding: 'utf8' }));
  t.equal(out.c, crcOf(small), 'fallback: same CRC');
  t.same(out.r, [true, false], 'fallback: reads its own file; a file of another length is short');
  t.ok(out.same, 'fallback: bytes in place');
  t.ok(readFileSync(drive.shardFile('ef' + '2'.repeat(30))).subarray(BITROT_HEADER).equals(small), 'the addon reads what the fallback wrote');
});

t.test('one-block GETs over HTTP: recycled buffers never change bytes a slow reader has not taken yet', async (t) => {
  const { startServer } = await import('./helpers/server');
  const { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand } = await import('@aws-sdk/client-s3');
  const srv = await startServer();
  t.teardown(() => srv.close());
  const s3: InstanceType<typeof S3Client> = srv.client();
  await s3.send(new CreateBucketCommand({ Bucket: 'oneblock' }));
  const bodies = Array.from({ length: 12 }, (_, i) => bytes(200 * 1024 + i * 70 * 1024, 100 + i));
  for (const [i, b] of bodies.entries()) await s3.send(new PutObjectCommand({ Bucket: 'oneblock', Key: `k${i}`, Body: b }));
  // A reader that sends several GETs on one connection and reads nothing: the first replies sit
  // in the kernel, the rest in the server's queues, in the very buffers that are recycled.
  // The GETs running meanwhile take and give back blocks. Every stalled reply must arrive intact.
  const { stalledGets } = await import('./helpers/s3');
  const order = [0, 11, 5, 10, 11, 3, 9, 11, 7, 10];
  const stalled = await stalledGets(srv, order.map((i) => ({ path: `/oneblock/k${i}` })));
  let good = 0;
  for (let round = 0; round < 6; round++) {
    await Promise.all(bodies.map(async (b, i) => {
      const out = await s3.send(new GetObjectCommand({ Bucket: 'oneblock', Key: `k${i}` }));
      if (Buffer.from(await out.Body!.transformToByteArray()).equals(b)) good++;
    }));
  }
  t.equal(good, 6 * bodies.length, 'every concurrent GET byte-exact');
  const replies = await stalled.resume();
  t.equal(replies.length, order.length, 'every queued reply arrived');
  t.same(replies.map((b, n) => b.equals(bodies[order[n]])), order.map(() => true), 'queued replies byte-exact after the others ran');
});
