// Bitrot: every shard block is framed by a CRC32C. Flip one byte of any block of any shard file
// (in the frame header or in the payload): reads must still return the right bytes (rebuilt
// from parity), and the heal must put back a shard file identical to the original. With no
// parity (one drive) a flipped byte must fail the read, never return wrong bytes.
import t, { Test } from 'tap';
import { readFileSync } from 'node:fs';
import { ObjectStore } from '../storage';
import { tempDrives, chunked } from './helpers/drives';
import { shardPath, readObject, flipByte, settle, body as bytes } from './helpers/faults';
import { BITROT_HEADER } from '../storage/constants';

const MiB = 1024 * 1024;
const SIZE = 3.5 * MiB; // 3 full 1 MiB blocks and a half block

/** Byte offsets of each block's frame in a shard file: [header offset, payload offset, payload length]. */
function frames(store: ObjectStore, size: number): { header: number; payload: number; len: number }[] {
  const er = store.set.erasure;
  const B = store.set.blockSize;
  const full = er.shardSize(B);
  const out = [];
  for (let b = 0, off = 0; b * B < size; b++) {
    const len = er.shardSize(Math.min(B, size - b * B));
    out.push({ header: off, payload: off + BITROT_HEADER, len });
    off += BITROT_HEADER + full;
  }
  return out;
}

async function flipEverywhere(t: Test, nDrives: number, SIZE: number, blocks: number): Promise<void> {
  const tmp = tempDrives(nDrives, 'kiln-bitrot');
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  await store.createBucket('b');
  const body = bytes(SIZE, nDrives);
  await store.putObject('b', 'obj', chunked(body, 100000));
  const rec = await store.headObject('b', 'obj');
  const dataDir = rec.parts[0].dataDir;
  const { data: D } = rec.ec;
  const fr = frames(store, SIZE);
  t.equal(fr.length, blocks, `${blocks} block(s) per shard`);
  // Ranges: one inside the damaged block, one across it into the next, one touching none of it.
  const B = store.set.blockSize;

  for (let slot = 0; slot < nDrives; slot++) {
    const drive = store.set.driveFor(rec.ec, slot);
    const file = shardPath(drive.root, dataDir);
    const original = readFileSync(file);
    const isParity = slot >= D;
    for (let b = 0; b < fr.length; b++) {
      for (const where of ['header', 'payload'] as const) {
        const what = `${isParity ? 'parity' : 'data'} shard ${slot}, block ${b}, ${where}`;
        // Flip a byte in the frame header, or a byte in the middle of the payload.
        const off = where === 'header' ? fr[b].header + (b % BITROT_HEADER) : fr[b].payload + Math.floor(fr[b].len / 2) + b;
        flipByte(file, off);
        t.notOk(readFileSync(file).equals(original), `${what}: damaged`);

        const whole = await readObject(store, 'b', 'obj');
        t.ok(whole.equals(body), `${what}: whole read is byte-exact`);
        const s = b * B + 1000, e = Math.min(SIZE, (b + 1) * B + 5000);
        t.ok((await readObject(store, 'b', 'obj', { start: s, end: e })).equals(body.subarray(s, e)), `${what}: range read is byte-exact`);
        const inBlock = { start: b * B + 17, end: Math.min(SIZE, b * B + 4096) };
        t.ok((await readObject(store, 'b', 'obj', inBlock)).equals(body.subarray(inBlock.start, inBlock.end)), `${what}: small range in the block`);

        await settle(store);
        if (isParity) {
          // A healthy read never opens parity shards (systematic code), so it cannot see damage
          // there: a scrub (sweep: verify every block of every shard) finds and repairs it.
          await store.healer.sweep();
          await settle(store);
        }
        t.ok(readFileSync(file).equals(original), `${what}: shard file healed to the original bytes`);
      }
    }
  }
  // Nothing is left queued, and every shard verifies.
  t.equal(store.healer.length, 0);
  t.same(await store.healer.healPart({ dataDir, size: SIZE, ec: rec.ec, queued: 0 }), [], 'every shard verifies after the run');
}

t.test('bitrot on 4 drives (2+2): detected, read around, healed', (t) => flipEverywhere(t, 4, SIZE, 4));
t.test('bitrot on 6 drives (3+3): detected, read around, healed', (t) => flipEverywhere(t, 6, SIZE, 4));
// A one-block object is read whole by one task (readOneBlock) and written by one per drive
// (Drive.writeOneFrame): damage there must fall back to the degraded read and be healed the same.
t.test('bitrot in a one-block object (700 KiB, 2+2): detected, read around, healed', (t) => flipEverywhere(t, 4, 700 * 1024, 1));
t.test('bitrot in an object of exactly one block (1 MiB, 3+3): detected, read around, healed', (t) => flipEverywhere(t, 6, MiB, 1));

t.test('single drive (no parity): a flipped byte fails the read, never returns wrong bytes', async (t) => {
  const tmp = tempDrives(1, 'kiln-bitrot1');
  t.teardown(tmp.cleanup);
  const store = await ObjectStore.open({ drives: tmp.drives });
  t.teardown(() => store.close());
  t.equal(store.set.parity, 0);
  await store.createBucket('b');
  const body = bytes(SIZE, 11);
  await store.putObject('b', 'obj', chunked(body));
  const rec = await store.headObject('b', 'obj');
  const file = shardPath(tmp.drives[0], rec.parts[0].dataDir);
  const original = readFileSync(file);
  const fr = frames(store, SIZE);
  const B = store.set.blockSize;
  for (let b = 0; b < fr.length; b++) {
    for (const where of ['header', 'payload'] as const) {
      const what = `block ${b}, ${where}`;
      const off = where === 'header' ? fr[b].header + 1 : fr[b].payload + 12345;
      flipByte(file, off);
      await t.rejects(readObject(store, 'b', 'obj'), { code: 'InsufficientReadQuorum' }, `${what}: whole read fails`);
      const s = b * B + 10, e = Math.min(SIZE, b * B + 20000);
      await t.rejects(readObject(store, 'b', 'obj', { start: s, end: e }), `${what}: range over the block fails`);
      // Blocks that were not damaged still read.
      const other = b === 0 ? 1 : 0;
      const os = other * B, oe = other * B + 1000;
      t.ok((await readObject(store, 'b', 'obj', { start: os, end: oe })).equals(body.subarray(os, oe)), `${what}: other block reads`);
      await settle(store); // the heal attempt fails (nothing to rebuild from) and must not write anything
      const now = readFileSync(file);
      t.equal(now.length, original.length);
      t.equal(Buffer.compare(now, original) !== 0, true, `${what}: no parity, so nothing could repair it`);
      flipByte(file, off); // undo for the next case
      t.ok(readFileSync(file).equals(original));
      t.ok((await readObject(store, 'b', 'obj')).equals(body), `${what}: reads again once undone`);
    }
  }
});
