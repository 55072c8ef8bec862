// A listing reads each record's fields from the head encodeRecord writes (listedFields), not by
// parsing the record. It must give what JSON.parse gives for every record, whatever its key,
// bucket, metadata or optional fields, and fall back to parsing for records written before.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { encodeRecord, encodeJson, listedFields, ObjectRecord, ListedFields } from '../storage/records';

function record(over: Partial<ObjectRecord> = {}): ObjectRecord {
  return {
    bucket: 'b', key: 'k', size: 5, etag: '5d41402abc4b2a76b9719d911017c592', mtime: 1795463237836, versionId: 'null',
    headers: {}, meta: {}, checksums: { CRC32C: 'AAAAAA==' }, checksumType: 'FULL_OBJECT',
    ec: { data: 2, parity: 2, blockSize: 1048576, dist: 1 }, parts: [{ number: 1, size: 5, etag: 'x', crc32c: 1, dataDir: 'd' }], multipart: false, ...over,
  };
}

function expected(r: ObjectRecord): ListedFields {
  const out: ListedFields = { size: r.size, etag: r.etag, mtime: r.mtime, checksums: r.checksums ?? {} };
  if (r.deleteMarker !== undefined) out.deleteMarker = r.deleteMarker;
  if (r.checksumType !== undefined) out.checksumType = r.checksumType;
  return out;
}

t.test('listedFields equals the parsed record for records encodeRecord wrote', async (t) => {
  const keys = ['k', 'a"b', 'back\\slash\\', '\\"', '","size":99,"etag":"evil","mtime":1,', 'ünïcødé/日本/🙂', 'line\nbreak\ttab\u0001', ' ', 'x'.repeat(1024)];
  const variants: Partial<ObjectRecord>[] = [
    {}, { checksumType: undefined }, { checksums: {} }, { checksums: { CRC32: 'abc=', SHA256: 'Zm9vYmFy+/==' }, checksumType: 'COMPOSITE' },
    { deleteMarker: true, size: 0, etag: '', parts: [] }, { deleteMarker: false }, { size: 5 * 1024 ** 4, etag: 'abcdef-10000' },
    { meta: { size: '1', etag: 'm', deletemarker: 'true', checksums: '{}' }, headers: { 'cache-control': 'no-cache' } },
    { versioned: true, vseq: 123456789, retention: { mode: 'GOVERNANCE', until: 1 }, legalHold: true, tags: { a: 'b' } },
  ];
  for (const key of keys) {
    for (const [i, v] of variants.entries()) {
      const r = record({ key, bucket: key.length < 64 ? `bkt-${i}` : 'b', ...v });
      const text = encodeRecord(r).toString('utf8');
      t.same(JSON.parse(text), JSON.parse(JSON.stringify({ ...r, checksums: r.checksums ?? {} })), `${JSON.stringify(key).slice(0, 40)} #${i}: the record round-trips`);
      t.strictSame(listedFields(text), expected(r), `${JSON.stringify(key).slice(0, 40)} #${i}: listing fields`);
    }
  }
});

t.test('records written before encodeRecord (any field order) and odd shapes are parsed whole', async (t) => {
  const r = record({ deleteMarker: true, checksums: { CRC32: 'x==' } });
  // The order an older Kiln wrote: bucket, key, size, etag, mtime, versionId, headers, ...
  t.strictSame(listedFields(encodeJson(r).toString()), expected(r), 'older field order');
  const shuffled = JSON.stringify({ etag: r.etag, bucket: 'b', size: r.size, key: 'k', mtime: r.mtime, checksums: r.checksums, deleteMarker: true });
  t.strictSame(listedFields(shuffled), { size: r.size, etag: r.etag, mtime: r.mtime, checksums: r.checksums, deleteMarker: true, checksumType: undefined }, 'shuffled');
  // A value that does not fit the head (a fractional time, an unknown checksum type) is never skipped over.
  const frac = encodeRecord(record({ mtime: 1.5 })).toString();
  t.equal(listedFields(frac).mtime, 1.5, 'fractional mtime: parsed');
  const odd = encodeRecord(record({ checksumType: 'ODD' as ObjectRecord['checksumType'] })).toString();
  t.equal(listedFields(odd).checksumType, 'ODD', 'unknown checksum type: parsed, not dropped');
  const lower = encodeRecord(record({ checksums: { crc32: 'x' } })).toString();
  t.strictSame(listedFields(lower).checksums, { crc32: 'x' }, 'checksums the head does not describe: parsed');
});

t.test('random keys and metadata: the head and the parse agree', async (t) => {
  let bad = 0;
  for (let i = 0; i < 2000; i++) {
    // Random code units, lone surrogates included: JSON.stringify escapes what it must.
    const key = String.fromCharCode(...Array.from(randomBytes(1 + (i % 40)), (b, j) => (b * 257 + j * 31 + i) % 0xffff));
    const r = record({ key, meta: { [key.toLowerCase().slice(0, 8) || 'm']: key }, size: i, mtime: 1e12 + i, deleteMarker: i % 3 === 0 ? true : undefined });
    const text = encodeRecord(r).toString('utf8');
    const parsed = JSON.parse(text) as ObjectRecord;
    const got = listedFields(text);
    if (got.size !== parsed.size || got.mtime !== parsed.mtime || got.etag !== parsed.etag || got.deleteMarker !== parsed.deleteMarker || JSON.stringify(got.checksums) !== JSON.stringify(parsed.checksums)) bad++;
  }
  t.equal(bad, 0, '2000 random records');
});

t.test('dataDirsOf names every part of a record (never fewer), without parsing it', async (t) => {
  const { dataDirsOf } = await import('../storage/records');
  const parts = Array.from({ length: 5 }, (_, i) => ({ number: i + 1, size: 1, etag: 'e', crc32c: 0, dataDir: `${i}`.repeat(32) }));
  const r = record({ key: '"dataDir":"evil"', parts, meta: { datadir: 'm' }, tags: { dataDir: 'tagged' } });
  for (const text of [encodeRecord(r).toString(), encodeJson(r).toString()]) {
    const got = dataDirsOf(text);
    for (const p of parts) t.ok(got.includes(p.dataDir), `part ${p.number} found`);
    t.notOk(got.includes('evil'), 'a key cannot pass for a field');
    t.ok(got.every((d) => parts.some((p) => p.dataDir === d) || d === 'tagged'), 'extras only from a tag named so (keeps too much, never too little)');
  }
  t.same(dataDirsOf(encodeJson({ number: 1, size: 1, etag: 'e', crc32c: 0, dataDir: 'abc' }).toString()), ['abc'], 'a part record');
  t.same(dataDirsOf(encodeRecord(record({ parts: [], deleteMarker: true })).toString()), [], 'a delete marker names none');
});
