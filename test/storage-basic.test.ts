import t from 'tap';
import { ObjectStore, Multipart, randomToken } from '../storage';
import { tempDrives, bytes, chunked, collect, md5hex } from './helpers/drives';
import { DEFAULT_INLINE_THRESHOLD } from '../storage/constants';

t.test('put/get round trips: inline, one block, many blocks, odd sizes', async (t) => {
  const tmp = tempDrives(4);
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  await store.createBucket('b');
  const sizes = [0, 1, 4096, 64 * 1024 + 3, DEFAULT_INLINE_THRESHOLD, DEFAULT_INLINE_THRESHOLD + 1, 1024 * 1024, 1024 * 1024 + 7, 3 * 1024 * 1024 + 12345];
  for (const size of sizes) {
    const body = bytes(size, size);
    const rec = await store.putObject('b', `k${size}`, chunked(body, 50000));
    t.equal(rec.size, size);
    t.equal(rec.etag, md5hex(body), `etag ${size}`);
    const got = await store.getObject('b', `k${size}`);
    t.ok((await collect(got.stream)).equals(body), `bytes ${size}`);
    if (size > 10) {
      const r = await store.getObject('b', `k${size}`, { start: 3, end: size - 2 });
      t.ok((await collect(r.stream)).equals(body.subarray(3, size - 2)), `range ${size}`);
    }
  }
  const list = await store.listObjects('b', { maxKeys: 1000 });
  t.equal(list.objects.length, sizes.length);
});

t.test('bucket rules', async (t) => {
  const tmp = tempDrives(4);
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  await store.createBucket('b');
  await t.rejects(store.createBucket('b'), { code: 'BucketAlreadyExists' });
  await store.putObject('b', 'x', chunked(Buffer.from('hi')));
  await t.rejects(store.deleteBucket('b'), { code: 'BucketNotEmpty' });
  await store.deleteObject('b', 'x');
  await store.deleteBucket('b');
  await t.rejects(store.getBucket('b'), { code: 'NoSuchBucket' });
  await t.rejects(store.headObject('nope', 'x'), { code: 'NoSuchBucket' });
});

t.test('multipart stitches parts without copying', async (t) => {
  const tmp = tempDrives(4);
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  const mp = new Multipart(store, 1024 * 1024);
  await store.createBucket('b');
  const up = await mp.create('b', 'big');
  const p1 = bytes(1024 * 1024 + 5, 1), p2 = bytes(2 * 1024 * 1024, 2), p3 = bytes(777, 3);
  const r1 = await mp.uploadPart('b', 'big', up.uploadId, 1, chunked(p1));
  const r3 = await mp.uploadPart('b', 'big', up.uploadId, 3, chunked(p3));
  const r2 = await mp.uploadPart('b', 'big', up.uploadId, 2, chunked(p2));
  await t.rejects(mp.complete('b', 'big', up.uploadId, [{ number: 2, etag: r2.etag }, { number: 1, etag: r1.etag }]), { code: 'InvalidPartOrder' });
  const rec = await mp.complete('b', 'big', up.uploadId, [{ number: 1, etag: r1.etag }, { number: 2, etag: r2.etag }, { number: 3, etag: r3.etag }]);
  t.match(rec.etag, /-3$/);
  const all = Buffer.concat([p1, p2, p3]);
  t.ok((await collect((await store.getObject('b', 'big')).stream)).equals(all));
  const mid = await store.getObject('b', 'big', { start: 1024 * 1024, end: 1024 * 1024 + 20 + 2 * 1024 * 1024 });
  t.ok((await collect(mid.stream)).equals(all.subarray(1024 * 1024, 1024 * 1024 + 20 + 2 * 1024 * 1024)));
  await t.rejects(mp.get('b', 'big', up.uploadId), { code: 'NoSuchUpload' });
});

t.test('random ids never start like a command-line option', async (t) => {
  // One base64url string in 64 begins with '-': the AWS CLI then refuses `--upload-id -...`.
  const ids = Array.from({ length: 5000 }, () => randomToken(24));
  t.ok(ids.every((s) => /^[A-Za-z0-9][A-Za-z0-9_-]{31}$/.test(s)), 'alphanumeric first, 32 base64url characters');
  t.equal(new Set(ids).size, ids.length, 'distinct');
});
