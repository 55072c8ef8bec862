// The native addon (storage/native/kiln_native.c) computes every bitrot frame and the whole-object
// CRC32C of large PUTs. It must agree bit for bit with fast-crc32c, report torn or corrupt frames,
// and write shard files the JavaScript fallback (KILN_NATIVE=off) reads, and the other way round.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { openSync, closeSync, writeSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import crc32cJs = require('fast-crc32c');
import * as native from '../storage/native';
import { ObjectStore } from '../storage';
import { tempDrives, bytes, chunked } from './helpers/drives';

const MiB = 1024 * 1024;
const js = (b: Buffer, init = 0) => crc32cJs.calculate(b, init) >>> 0;

t.test('the addon is built and in use (CI machines have a compiler)', async (t) => {
  if (process.env.KILN_NATIVE === 'off') t.pass('KILN_NATIVE=off: the fallback is under test');
  else t.ok(native.nativeLoaded, 'storage/native/build/Release/kiln_native.node loaded');
});

t.test('crc32c equals fast-crc32c at every length class, with and without an initial CRC', async (t) => {
  // 12288 is where the three interleaved lanes start; lengths around it and odd tails matter.
  const lengths = [0, 1, 3, 7, 8, 9, 63, 4095, 12287, 12288, 12289, 12295, 65536 + 5, MiB - 1, MiB, MiB + 13, 3 * MiB + 1];
  for (const len of lengths) {
    const b = bytes(len, len + 1);
    t.equal(native.crc32c(b), js(b), `length ${len}`);
    t.equal(native.crc32c(b, 0xdeadbeef), js(b, 0xdeadbeef), `length ${len}, initial CRC`);
    t.equal(await native.crc32cAsync(b, 7), js(b, 7), `length ${len}, async`);
  }
});

t.test('the table path (CPUs without CRC instructions) gives the same CRCs', async (t) => {
  // The addon picks hardware CRC at load; KILN_CRC_SOFTWARE=1 makes a child use the table code.
  const lengths = [0, 1, 9, 6143, 6144, 6145, 65536 + 3, MiB + 13];
  const script = `
    const n = require(${JSON.stringify(path.join(__dirname, '..', 'storage', 'native'))});
    const { createHash } = require('node:crypto');
    const out = ${JSON.stringify(lengths)}.map((len) => {
      const b = Buffer.alloc(len);
      for (let i = 0, c = 0; i < len; i += 32, c++) createHash('sha256').update(String(c)).digest().copy(b, i);
      return [n.crc32c(b), n.crc32c(b, 0xdeadbeef)];
    });
    process.stdout.write(JSON.stringify({ loaded: n.nativeLoaded, out }));`;
  const child = JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, KILN_CRC_SOFTWARE: '1' }, encoding: 'utf8' }));
  if (!child.loaded) { t.pass('addon not built: nothing to compare'); return; }
  lengths.forEach((len, k) => {
    const b = Buffer.alloc(len);
    for (let i = 0, c = 0; i < len; i += 32, c++) createHash('sha256').update(String(c)).digest().copy(b, i);
    t.same(child.out[k], [js(b), js(b, 0xdeadbeef)], `length ${len}`);
  });
});

t.test('crc32cCombine joins the CRCs of two pieces', async (t) => {
  for (const [a, b] of [[0, 5], [5, 0], [1000, 777], [MiB, MiB / 2], [3, 12289]]) {
    const x = bytes(a, 2);
    const y = bytes(b, 3);
    t.equal(native.crc32cCombine(js(x), js(y), b), js(Buffer.concat([x, y])), `${a} + ${b}`);
  }
});

t.test('frames: written with their CRC, read back verified; torn and flipped frames are refused', async (t) => {
  const tmp = tempDrives(1, 'kiln-native');
  t.teardown(tmp.cleanup);
  await fsp.mkdir(tmp.drives[0], { recursive: true });
  const file = path.join(tmp.drives[0], 'f');
  const fh = await fsp.open(file, 'w+');
  const data = bytes(MiB / 2, 9);
  const at = 4 + 100; // a second frame after a short one, at an unaligned offset
  t.equal(await native.writeFrame(fh, 0, Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuv')), js(Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuv')));
  t.equal(await native.writeFrame(fh, at, data), js(data), 'resolves to the CRC of the block');
  const disk = await fsp.readFile(file);
  t.equal(disk.readUInt32LE(at), js(data), 'header is the CRC32C, little-endian');
  t.ok(disk.subarray(at + 4).equals(data), 'payload follows the header');

  const back = Buffer.alloc(data.length);
  t.equal(await native.readFrame(fh, at, back), true, 'intact frame reads as good');
  t.ok(back.equals(data), 'and the bytes are the block');
  t.equal(await native.readFrame(fh, at, Buffer.alloc(data.length + 1)), false, 'a frame cut short by the end of the file is refused');
  for (const off of [at, at + 3, at + 4, at + 4 + 12345, at + 4 + data.length - 1]) {
    const fd = openSync(file, 'r+');
    const orig = disk[off];
    writeSync(fd, Buffer.from([orig ^ 0x10]), 0, 1, off);
    t.equal(await native.readFrame(fh, at, Buffer.alloc(data.length)), false, `a flipped byte at frame offset ${off - at} is detected`);
    writeSync(fd, Buffer.from([orig]), 0, 1, off);
    closeSync(fd);
  }
  await native.closeFile(fh);
  if (!native.nativeLoaded) return; // the fallback goes through FileHandle, which throws its own errors
  const bad = await fsp.open(file, 'r');
  const fd = bad.fd;
  await bad.close();
  await t.rejects(native.readFrame({ fd } as never, 0, Buffer.alloc(4)), { code: 'EBADF' }, 'an I/O error rejects with its errno code');
});

t.test('writeBlock: each shard of a block framed into its file in one task; a missing file skipped, a failing one alone fails', async (t) => {
  const tmp = tempDrives(1, 'kiln-native-block');
  t.teardown(tmp.cleanup);
  await fsp.mkdir(tmp.drives[0], { recursive: true });
  const S = 300001; // odd: slices at unaligned offsets
  const data = bytes(4 * S, 17);
  const slice = (i: number) => data.subarray(i * S, (i + 1) * S);
  const files = [0, 1, 2, 3].map((i) => path.join(tmp.drives[0], `s${i}`));
  const fhs = await Promise.all(files.map((f) => fsp.open(f, 'w+')));
  const at = 4 + 77;
  const got = await native.writeBlock([fhs[0], null, fhs[2], fhs[3]], at, data);
  t.same(got, [js(slice(0)), undefined, js(slice(2)), js(slice(3))], 'per handle its frame\'s CRC; none for no handle');
  for (const i of [0, 2, 3]) {
    const disk = await fsp.readFile(files[i]);
    t.equal(disk.readUInt32LE(at), js(slice(i)), `s${i}: header is the slice's CRC32C`);
    t.ok(disk.subarray(at + 4).equals(slice(i)), `s${i}: the slice follows`);
    const back = Buffer.alloc(S);
    t.equal(await native.readFrame(fhs[i], at, back), true, `s${i}: reads back as a good frame`);
  }
  t.equal((await fsp.stat(files[1])).size, 0, 's1 (no handle) untouched');
  if (native.nativeLoaded) {
    // A file open read-only: that shard fails with its errno, the others are written.
    const ro = await fsp.open(files[1], 'r');
    const res = await native.writeBlock([fhs[0], ro, fhs[2], fhs[3]], 0, data);
    t.match(res[1], { code: 'EBADF' }, 'the failing shard reports its error');
    t.same([res[0], res[2], res[3]], [js(slice(0)), js(slice(2)), js(slice(3))], 'the others are written');
    await ro.close();
  }
  for (const fh of fhs) await native.closeFile(fh);
});

t.test('whole-object CRC32C and MD5 of large PUTs match the body, whatever the layout and block padding', async (t) => {
  // 4 drives = 2+2 (blocks split evenly), 5 drives = 3+2 (every block padded), 1 drive = 1+0.
  for (const nDrives of [4, 5, 1]) {
    const tmp = tempDrives(nDrives, 'kiln-native-crc');
    const store = await ObjectStore.open({ drives: tmp.drives });
    await store.createBucket('b');
    for (const size of [128 * 1024 + 1, MiB, 3.5 * MiB, 4 * MiB + 7]) {
      const body = bytes(size, size);
      const rec = await store.putObject('b', `o${size}`, chunked(body, 70001));
      t.equal(rec.parts[0].crc32c, js(body), `${nDrives} drives, ${size} bytes: CRC32C`);
      t.equal(rec.etag, createHash('md5').update(body).digest('hex'), `${nDrives} drives, ${size} bytes: MD5 ETag`);
    }
    await store.close();
    tmp.cleanup();
  }
});

t.test('shard files written by the addon and by the JavaScript fallback are interchangeable', async (t) => {
  const tmp = tempDrives(4, 'kiln-native-compat');
  t.teardown(tmp.cleanup);
  const size = 2.5 * MiB;
  const body = bytes(size, 42);
  const digest = createHash('md5').update(body).digest('hex');
  const storage = path.join(__dirname, '..', 'storage');
  const bodyFile = path.join(tmp.root, 'body');
  await fsp.writeFile(bodyFile, body);
  // A child with the fallback writes o1 and reads back o2 (written here, by the addon).
  let store = await ObjectStore.open({ drives: tmp.drives });
  await store.createBucket('b');
  await store.putObject('b', 'o2', chunked(body));
  await store.close();
  const script = `
    const { ObjectStore } = require(${JSON.stringify(storage)});
    const { createHash } = require('node:crypto');
    const { Readable } = require('node:stream');
    (async () => {
      const n = require(${JSON.stringify(path.join(storage, 'native'))});
      if (n.nativeLoaded) throw new Error('fallback expected');
      const body = require('node:fs').readFileSync(process.argv[1]);
      const store = await ObjectStore.open({ drives: ${JSON.stringify(tmp.drives)} });
      await store.putObject('b', 'o1', Readable.from([body]));
      const got = [];
      for await (const c of (await store.getObject('b', 'o2')).stream) got.push(c);
      await store.close();
      process.stdout.write(createHash('md5').update(Buffer.concat(got)).digest('hex'));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const out = execFileSync(process.execPath, ['-e', script, bodyFile], { env: { ...process.env, KILN_NATIVE: 'off' }, encoding: 'utf8', maxBuffer: 64 * MiB });
  t.equal(out, digest, 'the fallback reads what the addon wrote');
  store = await ObjectStore.open({ drives: tmp.drives });
  const got: Buffer[] = [];
  for await (const c of (await store.getObject('b', 'o1')).stream) got.push(c as Buffer);
  t.ok(Buffer.concat(got).equals(body), 'the addon reads what the fallback wrote');
  await store.close();
});
