// Reed-Solomon round trips through storage/erasure.ts: encode a block, lose every combination
// of up to P shards (data and parity), rebuild, and compare byte for byte.
import t, { Test } from 'tap';
import { Erasure } from '../storage/erasure';
import { body as bytes, combinations } from './helpers/faults';

const KiB = 1024;
const MiB = 1024 * KiB;

interface Encoded { er: Erasure; S: number; data: Buffer; parity: Buffer }

async function encodeBlock(t: Test, D: number, P: number, blockSize: number, len: number, seed: number): Promise<Encoded> {
  const er = new Erasure(D, P, blockSize);
  const S = er.shardSize(len);
  t.equal(S % 8, 0, 'shard size is a multiple of 8');
  t.ok(S * D >= len, 'shards hold the block');
  const data = Buffer.alloc(S * D); // zero padded past len, as the writer pads
  bytes(len, seed).copy(data);
  const parity = Buffer.alloc(S * P);
  await er.encode(data, parity, S);
  return { er, S, data, parity };
}

/** Lose `lost` (shard indices 0..D+P-1), rebuild, and compare both buffers with the originals. */
async function lossRoundTrip(e: Encoded, lost: number[]): Promise<boolean> {
  const { er, S } = e;
  const D = er.data;
  const data = Buffer.from(e.data);
  const parity = Buffer.from(e.parity);
  for (const i of lost) {
    if (i < D) data.fill(0, i * S, (i + 1) * S);
    else parity.fill(0, (i - D) * S, (i - D + 1) * S);
  }
  await er.reconstruct(data, parity, S, lost);
  return data.equals(e.data) && parity.equals(e.parity);
}

function lossSets(total: number, P: number): number[][] {
  const out: number[][] = [];
  for (let k = 0; k <= P; k++) out.push(...combinations(total, k));
  return out;
}

const layouts: [number, number][] = [[4, 2], [8, 4], [12, 4]];

for (const [D, P] of layouts) {
  t.test(`${D}+${P}: every loss of up to ${P} shards rebuilds byte-exact`, async (t) => {
    const sets = lossSets(D + P, P);
    // Exhaustive over all loss sets: a 64 KiB block, a short odd-sized last block, and (for the
    // smaller layouts) the real 1 MiB block.
    const cases: { blockSize: number; len: number; exhaustive: boolean }[] = [
      { blockSize: 64 * KiB, len: 64 * KiB, exhaustive: true },
      { blockSize: 64 * KiB, len: 777, exhaustive: true },
      { blockSize: MiB, len: MiB, exhaustive: D + P <= 12 },
      { blockSize: MiB, len: MiB - 12345, exhaustive: false },
      { blockSize: MiB, len: 1, exhaustive: false },
    ];
    let seed = D * 100 + P;
    for (const c of cases) {
      const e = await encodeBlock(t, D, P, c.blockSize, c.len, ++seed);
      t.notOk(e.parity.every((b) => b === 0), 'parity is not trivially zero');
      // Encoding is deterministic: a second encode of the same data gives the same parity.
      const again = Buffer.alloc(e.parity.length);
      await e.er.encode(e.data, again, e.S);
      t.ok(again.equals(e.parity), 'encode is deterministic');
      // The 1 MiB 12+4 and short-block cases check every single and double loss and a spread of
      // triples and quadruples (every 7th set); the 64 KiB cases check every set.
      const chosen = c.exhaustive ? sets : sets.filter((s, i) => s.length <= 2 || i % 7 === 0);
      const bad: number[][] = [];
      for (const lost of chosen) {
        if (!(await lossRoundTrip(e, lost))) bad.push(lost);
      }
      t.same(bad, [], `${D}+${P} block ${c.len} B: ${chosen.length} loss sets rebuilt`);
    }
    // A loss of P shards made only of parity, and only of data, at 1 MiB (named explicitly).
    const e = await encodeBlock(t, D, P, MiB, MiB, 999);
    t.ok(await lossRoundTrip(e, Array.from({ length: P }, (_, j) => D + j)), 'all parity lost');
    t.ok(await lossRoundTrip(e, Array.from({ length: P }, (_, j) => j)), 'first P data shards lost');
    t.ok(await lossRoundTrip(e, Array.from({ length: P }, (_, j) => D - 1 - j)), 'last P data shards lost');
    // More than P lost cannot be rebuilt, and says so instead of inventing bytes.
    t.throws(() => e.er.reconstruct(Buffer.from(e.data), Buffer.from(e.parity), e.S, Array.from({ length: P + 1 }, (_, j) => j)));
  });
}

t.test('parity 0 (single drive) encodes nothing and rebuilds nothing', async (t) => {
  const er = new Erasure(1, 0, MiB);
  const S = er.shardSize(1000);
  const data = Buffer.alloc(S);
  bytes(1000, 5).copy(data);
  const copy = Buffer.from(data);
  await er.encode(data, Buffer.alloc(0), S);
  await er.reconstruct(data, Buffer.alloc(0), S, []);
  t.ok(data.equals(copy));
  t.throws(() => er.reconstruct(data, Buffer.alloc(0), S, [0]));
});

t.test('unsupported layouts are refused', async (t) => {
  t.throws(() => new Erasure(0, 2, MiB));
  t.throws(() => new Erasure(4, -1, MiB));
});
