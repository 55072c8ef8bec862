// Quorum rules under drive faults: reads need any D healthy shards, writes need the write
// quorum (D, +1 when D == P); a write below quorum leaves nothing visible and nothing behind.
import t, { Test } from 'tap';
import { existsSync, mkdirSync, rmSync, writeFileSync, truncateSync, chmodSync, statSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ObjectStore, Multipart } from '../storage';
import { tempDrives, chunked } from './helpers/drives';
import { shardPath, readObject, settle, entries, chmodBlocksReads, combinations, dataDirsOn, body as bytes } from './helpers/faults';
import { key, NS_HEAL } from '../storage/records';

const KiB = 1024;
const MiB = 1024 * KiB;

interface Fixture { name: string; body: Buffer }

/** A mix of objects: inline, one block, several blocks with a short tail, and a multipart object. */
async function writeFixtures(store: ObjectStore): Promise<Fixture[]> {
  await store.createBucket('b');
  const out: Fixture[] = [];
  for (const [name, size] of [['inline', 3000], ['one-block', 700 * KiB], ['multi-block', 2.5 * MiB + 333]] as const) {
    const body = bytes(size, size);
    await store.putObject('b', name, chunked(body, 77777));
    out.push({ name, body });
  }
  const mp = new Multipart(store, 1024);
  const up = await mp.create('b', 'multipart');
  const p1 = bytes(1.25 * MiB, 1), p2 = bytes(5000, 2);
  const r1 = await mp.uploadPart('b', 'multipart', up.uploadId, 1, chunked(p1));
  const r2 = await mp.uploadPart('b', 'multipart', up.uploadId, 2, chunked(p2));
  await mp.complete('b', 'multipart', up.uploadId, [{ number: 1, etag: r1.etag }, { number: 2, etag: r2.etag }]);
  out.push({ name: 'multipart', body: Buffer.concat([p1, p2]) });
  return out;
}

async function checkReads(t: Test, store: ObjectStore, fixtures: Fixture[], what: string): Promise<void> {
  for (const f of fixtures) {
    t.ok((await readObject(store, 'b', f.name)).equals(f.body), `${what}: ${f.name} reads whole`);
    if (f.body.length > 10) {
      const s = Math.floor(f.body.length / 3), e = f.body.length - 7;
      t.ok((await readObject(store, 'b', f.name, { start: s, end: e })).equals(f.body.subarray(s, e)), `${what}: ${f.name} reads by range`);
    }
  }
}

/** Every erasure-coded data dir referenced by the fixtures. */
async function codedDirs(store: ObjectStore, fixtures: Fixture[]): Promise<string[]> {
  const dirs: string[] = [];
  for (const f of fixtures) for (const p of (await store.headObject('b', f.name)).parts) if (!p.inline) dirs.push(p.dataDir);
  return dirs;
}

t.test('(a) reads survive P drives removed while running (every choice of P drives)', async (t) => {
  for (const n of [4, 6]) {
    const P = n === 4 ? 2 : 3;
    for (const lost of combinations(n, P)) {
      const tmp = tempDrives(n, 'kiln-quorum-a');
      const store = await ObjectStore.open({ drives: tmp.drives });
      try {
        t.equal(store.set.parity, P);
        const fx = await writeFixtures(store);
        for (const i of lost) rmSync(tmp.drives[i], { recursive: true, force: true });
        await checkReads(t, store, fx, `${n} drives, drives ${lost.join(',')} removed`);
        await settle(store);
      } finally {
        await store.close();
        tmp.cleanup();
      }
    }
  }
});

t.test('(a) reads survive P drives unreadable', async (t) => {
  const tmp = tempDrives(4, 'kiln-quorum-u');
  t.teardown(tmp.cleanup);
  // chmod 000 does not stop root (CAP_DAC_OVERRIDE), and tests often run as root in containers:
  // there the unreadable drive is simulated by breaking its shard files instead — replacing each
  // with a directory (open succeeds, read fails with EISDIR) or truncating it (short read).
  mkdirSync(tmp.root, { recursive: true });
  const chmodWorks = await chmodBlocksReads(tmp.root);
  t.comment(chmodWorks ? 'chmod 000 blocks reads: using it' : 'chmod 000 does not block reads here (root?): breaking shard files instead');
  const modes = chmodWorks ? ['chmod', 'directory', 'truncate'] as const : ['directory', 'truncate'] as const;
  for (const mode of modes) {
    for (const lost of [[0, 1], [1, 3], [2, 3]]) {
      const drives = tmp.drives.map((d) => `${d}-${mode}-${lost.join('')}`);
      const store = await ObjectStore.open({ drives });
      try {
        const fx = await writeFixtures(store);
        const dirs = await codedDirs(store, fx);
        for (const i of lost) {
          if (mode === 'chmod') {
            chmodSync(drives[i], 0o000);
            continue;
          }
          for (const d of dirs) {
            const f = shardPath(drives[i], d);
            if (mode === 'directory') { rmSync(f); mkdirSync(f); } else truncateSync(f, 3);
          }
        }
        await checkReads(t, store, fx, `${mode} on drives ${lost.join(',')}`);
        await settle(store);
      } finally {
        for (const i of lost) if (mode === 'chmod') chmodSync(drives[i], 0o755);
        await store.close();
      }
    }
  }
});

t.test('(b) reopen with P drive dirs deleted: replaced, formatted, healed', async (t) => {
  for (const lost of [[0, 1], [2, 3], [0, 3]]) {
    const tmp = tempDrives(4, 'kiln-quorum-b');
    t.teardown(tmp.cleanup);
    let store = await ObjectStore.open({ drives: tmp.drives });
    const fx = await writeFixtures(store);
    const dirs = await codedDirs(store, fx);
    await settle(store);
    await store.close();
    for (const i of lost) rmSync(tmp.drives[i], { recursive: true, force: true });

    store = await ObjectStore.open({ drives: tmp.drives });
    await checkReads(t, store, fx, `drives ${lost.join(',')} replaced`);
    for (const i of lost) t.ok(existsSync(path.join(tmp.drives[i], '.kiln', 'format.json')), `drive ${i} re-formatted`);
    await settle(store);
    for (const i of lost) {
      for (const d of dirs) t.ok(existsSync(shardPath(tmp.drives[i], d)), `drive ${i}: shard of ${d} healed back`);
    }
    await store.close();

    // The healed drives now carry the data alone: remove every other drive.
    const others = [0, 1, 2, 3].filter((i) => !lost.includes(i));
    for (const i of others) rmSync(tmp.drives[i], { recursive: true, force: true });
    store = await ObjectStore.open({ drives: tmp.drives });
    await checkReads(t, store, fx, `only the healed drives ${lost.join(',')} hold data`);
    await settle(store);
    await store.close();
  }
});

/** Break a drive for writes: its tmp area becomes a file, so creating a tmp dir fails (ENOTDIR). */
function breakTmp(drive: string): void {
  const tmpDir = path.join(drive, '.kiln', 'tmp');
  rmSync(tmpDir, { recursive: true, force: true });
  writeFileSync(tmpDir, 'not a directory');
}
function fixTmp(drive: string): void {
  const tmpDir = path.join(drive, '.kiln', 'tmp');
  rmSync(tmpDir, { force: true });
  mkdirSync(tmpDir);
}

t.test('(c) a write with one failing drive succeeds while quorum holds; the drive is healed later', async (t) => {
  const tmp = tempDrives(4, 'kiln-quorum-c');
  t.teardown(tmp.cleanup);
  let store = await ObjectStore.open({ drives: tmp.drives });
  await store.createBucket('b');
  const body = bytes(2 * MiB + 99, 42);
  const bad = 2;
  breakTmp(tmp.drives[bad]);
  const rec = await store.putObject('b', 'k', chunked(body));
  t.equal(rec.etag, (await store.headObject('b', 'k')).etag);
  const dataDir = rec.parts[0].dataDir;
  const badDrive = store.drives.find((d) => d.root === path.resolve(tmp.drives[bad]))!;
  t.not(badDrive.state, 'online', 'the failing drive is marked');
  t.ok(badDrive.needsHeal, 'the failing drive needs heal');
  t.notOk(existsSync(shardPath(tmp.drives[bad], dataDir)), 'no shard on the failing drive');
  for (let i = 0; i < 4; i++) if (i !== bad) t.ok(existsSync(shardPath(tmp.drives[i], dataDir)), `shard on drive ${i}`);
  t.ok((await readObject(store, 'b', 'k')).equals(body), 'reads back');
  // More writes keep working with three drives (write quorum of 2+2 is 3).
  const body2 = bytes(1.5 * MiB, 43);
  await store.putObject('b', 'k2', chunked(body2));
  t.ok((await readObject(store, 'b', 'k2')).equals(body2));
  await settle(store);
  // The missed shards stay recorded while the drive cannot take them.
  t.ok(await store.index.get(key(NS_HEAL, dataDir)), 'heal record kept while the drive is failing');
  await store.close();

  // The drive comes back (tmp repaired): the recorded heals run at start.
  fixTmp(tmp.drives[bad]);
  store = await ObjectStore.open({ drives: tmp.drives });
  await settle(store);
  const dirs = [dataDir, (await store.headObject('b', 'k2')).parts[0].dataDir];
  for (const d of dirs) {
    t.ok(existsSync(shardPath(tmp.drives[bad], d)), `shard of ${d} healed onto the returned drive`);
    t.equal(await store.index.get(key(NS_HEAL, d)), undefined, 'heal record cleared');
  }
  t.same(await store.healer.healPart({ dataDir, size: body.length, ec: rec.ec, queued: 0 }), [], 'all shards verify');
  await store.close();
  // And it carries its share: read with two other drives gone.
  const gone = [0, 1, 3].filter((i) => i !== bad).slice(0, 2);
  for (const i of gone) rmSync(tmp.drives[i], { recursive: true, force: true });
  store = await ObjectStore.open({ drives: tmp.drives });
  t.ok((await readObject(store, 'b', 'k')).equals(body), 'reads from the healed drive');
  t.ok((await readObject(store, 'b', 'k2')).equals(body2));
  await settle(store);
  await store.close();
});

t.test('(d) below write quorum: rejected, invisible, nothing left behind', async (t) => {
  const tmp = tempDrives(4, 'kiln-quorum-d');
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  await store.createBucket('b');
  const keep = bytes(1.5 * MiB, 7);
  await store.putObject('b', 'existing', chunked(keep));
  t.equal(store.set.writeQuorum, 3);
  breakTmp(tmp.drives[0]);
  breakTmp(tmp.drives[3]);
  const before = tmp.drives.map((d) => dataDirsOn(d).sort());

  await t.rejects(store.putObject('b', 'big', chunked(bytes(2 * MiB, 8))), { code: 'InsufficientWriteQuorum' }, 'erasure-coded write rejected');
  await t.rejects(store.headObject('b', 'big'), { code: 'NoSuchKey' }, 'not visible');
  // With two drives known failing, small (inline) writes are below quorum as well.
  await t.rejects(store.putObject('b', 'small', chunked(bytes(100, 9))), { code: 'InsufficientWriteQuorum' }, 'inline write rejected');
  await t.rejects(store.headObject('b', 'small'), { code: 'NoSuchKey' }, 'inline not visible');
  // An overwrite below quorum leaves the old object in place.
  await t.rejects(store.putObject('b', 'existing', chunked(bytes(2 * MiB, 10))), { code: 'InsufficientWriteQuorum' });
  t.ok((await readObject(store, 'b', 'existing')).equals(keep), 'old object intact after a failed overwrite');

  await settle(store);
  for (let i = 0; i < 4; i++) {
    const tdir = path.join(tmp.drives[i], '.kiln', 'tmp');
    if (statSync(tdir).isDirectory()) t.same(entries(tdir), [], `drive ${i}: tmp is empty`);
    else t.equal(readFileSync(tdir, 'utf8'), 'not a directory', `drive ${i}: tmp is still the injected file`);
    t.same(dataDirsOn(tmp.drives[i]).sort(), before[i], `drive ${i}: no new data dirs`);
  }
  t.equal((await store.listObjects('b', { maxKeys: 100 })).objects.length, 1, 'only the old object is listed');
});
