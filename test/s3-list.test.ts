// Listings through the real AWS SDK v3 against a running Kiln: ListObjects (v1), ListObjectsV2
// and ListObjectVersions over a few hundred keys with nested prefixes and awkward characters —
// prefix, delimiter, page sizes, every pagination mechanism to the end, url encoding, order.
import t from 'tap';
import {
  S3Client, CreateBucketCommand, PutObjectCommand, ListObjectsCommand, ListObjectsV2Command, ListObjectVersionsCommand,
  ListObjectsV2CommandOutput,
} from '@aws-sdk/client-s3';
import { startServer, TestServer } from './helpers/server';
import { expectS3Error, raw, xmlText } from './helpers/s3';

const Bucket = 'listing';
let srv: TestServer;
let s3: S3Client;

const KEYS: string[] = [];
for (let i = 0; i < 40; i++) KEYS.push(`top-${String(i).padStart(3, '0')}`);
for (let i = 0; i < 100; i++) KEYS.push(`dir/a/${String(i).padStart(3, '0')}`);
for (let i = 0; i < 50; i++) KEYS.push(`dir/b/${String(i).padStart(3, '0')}`);
for (let i = 0; i < 10; i++) KEYS.push(`dir/b/deep/er/${i}`);
KEYS.push('dir/c.txt', 'dir/', 'dir//double');
const SPECIAL = [
  'sp ace/one', 'sp ace/two', 'plain space', 'ü/1', 'ü/2', 'über', 'plus+key', 'a+b/c', 'pct%41', 'pct%', 'pct%2F', '日本/語', '日本/本',
  'emoji😀', '\uE000private', 'bo-\uE000', 'bo-😀', 'bo-\uFF5A', 'ｚfullwidth', 'Zupper', '~tilde', 'é', 'e', 'f', 'amp&lt;', 'q?m', 'h#h', 'eq=1&x=2',
];
KEYS.push(...SPECIAL);

/** S3 lists keys in UTF-8 byte order (not UTF-16 code unit order: '\uE000' sorts before '😀'). */
const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
const SORTED = [...KEYS].sort(byteOrder);
/** Decodes a key from an encoding-type=url listing ('+' as space too, as AWS may send it). */
const urlDecode = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));

t.before(async () => {
  srv = await startServer();
  s3 = srv.client();
  await s3.send(new CreateBucketCommand({ Bucket }));
  for (let i = 0; i < KEYS.length; i += 25) {
    await Promise.all(KEYS.slice(i, i + 25).map((Key) => s3.send(new PutObjectCommand({ Bucket, Key, Body: Key }))));
  }
});
t.teardown(() => srv.close());

/** What a listing with prefix/delimiter must return (computed independently of the server). */
function expected(prefix: string, delimiter?: string, after = ''): { keys: string[]; prefixes: string[] } {
  const keys: string[] = [];
  const prefixes: string[] = [];
  for (const k of SORTED) {
    if (!k.startsWith(prefix)) continue;
    const rest = k.slice(prefix.length);
    const d = delimiter ? rest.indexOf(delimiter) : -1;
    if (d >= 0) {
      const p = prefix + rest.slice(0, d + delimiter!.length);
      if (byteOrder(p, after) > 0 && !prefixes.includes(p)) prefixes.push(p);
    } else if (byteOrder(k, after) > 0) keys.push(k);
  }
  return { keys, prefixes };
}

async function allV2(params: { Prefix?: string; Delimiter?: string; MaxKeys?: number; StartAfter?: string }): Promise<{ keys: string[]; prefixes: string[]; pages: number }> {
  const keys: string[] = [];
  const prefixes: string[] = [];
  let token: string | undefined;
  let pages = 0;
  for (; pages < 500; pages++) {
    const r: ListObjectsV2CommandOutput = await s3.send(new ListObjectsV2Command({ Bucket, ...params, ContinuationToken: token }));
    keys.push(...(r.Contents ?? []).map((c) => c.Key!));
    prefixes.push(...(r.CommonPrefixes ?? []).map((c) => c.Prefix!));
    if (r.KeyCount !== (r.Contents?.length ?? 0) + (r.CommonPrefixes?.length ?? 0)) throw new Error('KeyCount mismatch');
    if (params.MaxKeys !== undefined && (r.KeyCount ?? 0) > params.MaxKeys) throw new Error('page larger than MaxKeys');
    if (!r.IsTruncated) { pages++; break; }
    if (!r.NextContinuationToken) throw new Error('truncated without a continuation token');
    token = r.NextContinuationToken;
  }
  return { keys, prefixes, pages };
}

t.test('ListObjectsV2: everything, UTF-8 byte order', async (t) => {
  const r = await s3.send(new ListObjectsV2Command({ Bucket }));
  t.equal(r.KeyCount, KEYS.length, `${KEYS.length} keys in one page`);
  t.equal(r.IsTruncated, false);
  t.equal(r.MaxKeys, 1000);
  t.same(r.Contents?.map((c) => c.Key), SORTED, 'UTF-8 byte order');
  const c = r.Contents!.find((x) => x.Key === 'dir/c.txt')!;
  t.equal(c.Size, 'dir/c.txt'.length);
  t.match(c.ETag, /^"[0-9a-f]{32}"$/);
  t.equal(c.StorageClass, 'STANDARD');
  t.ok(c.LastModified instanceof Date);
  t.equal(c.Owner, undefined, 'no owner without FetchOwner');
  const owned = await s3.send(new ListObjectsV2Command({ Bucket, FetchOwner: true, MaxKeys: 3 }));
  t.ok(owned.Contents?.every((x) => x.Owner?.ID), 'FetchOwner: every entry has an owner');
  // U+E000 is EE 80 80 in UTF-8 and 😀 is F0 9F 98 80, but in UTF-16 😀 (D83D DE00) sorts first.
  t.ok(SORTED.indexOf('bo-\uE000') < SORTED.indexOf('bo-😀'), 'the test data really distinguishes byte order from UTF-16 order');
  t.ok(['bo-\uE000', 'bo-😀'].sort()[0] === 'bo-😀', 'JS default sort (UTF-16) orders them the other way');
});

t.test('ListObjectsV2 pagination with ContinuationToken, to the end', async (t) => {
  for (const MaxKeys of [1, 7, 37, 100, 999]) {
    const r = await allV2({ MaxKeys });
    t.same(r.keys, SORTED, `MaxKeys ${MaxKeys}: every key once, in order`);
    t.equal(r.pages, Math.ceil(KEYS.length / MaxKeys), `MaxKeys ${MaxKeys}: ${r.pages} pages`);
  }
  const zero = await s3.send(new ListObjectsV2Command({ Bucket, MaxKeys: 0 }));
  t.equal(zero.KeyCount, 0, 'MaxKeys 0 lists nothing');
  const p = await allV2({ Prefix: 'dir/a/', MaxKeys: 30 });
  t.same(p.keys, expected('dir/a/').keys, 'prefix + pagination');
  t.equal(p.pages, 4);
});

t.test('ListObjectsV2 prefix and delimiter', async (t) => {
  const cases: Array<[string, string | undefined]> = [
    ['', '/'], ['dir/', '/'], ['dir/b/', '/'], ['dir/b', '/'], ['sp ace/', '/'], ['ü', '/'], ['日本/', undefined], ['', 'a'], ['dir/', '0'],
    ['nothing-here/', '/'], ['dir//', '/'], ['pct%', undefined], ['', '%'], ['', '+'],
  ];
  for (const [Prefix, Delimiter] of cases) {
    const want = expected(Prefix, Delimiter);
    const r = await s3.send(new ListObjectsV2Command({ Bucket, Prefix, Delimiter }));
    t.same(r.Contents?.map((c) => c.Key) ?? [], want.keys, `prefix ${JSON.stringify(Prefix)} delimiter ${JSON.stringify(Delimiter)}: keys`);
    t.same(r.CommonPrefixes?.map((c) => c.Prefix) ?? [], want.prefixes, `prefix ${JSON.stringify(Prefix)} delimiter ${JSON.stringify(Delimiter)}: common prefixes`);
    t.equal(r.Prefix ?? '', Prefix, 'Prefix echoed');
    if (Delimiter) t.equal(r.Delimiter, Delimiter, 'Delimiter echoed');
  }
  const top = await s3.send(new ListObjectsV2Command({ Bucket, Delimiter: '/' }));
  t.same(top.CommonPrefixes?.map((c) => c.Prefix), ['a+b/', 'dir/', 'sp ace/', 'ü/', '日本/'], 'top-level folders');
  // Common prefixes count toward MaxKeys, and a page boundary inside a prefix does not repeat it.
  for (const MaxKeys of [1, 2, 3, 5]) {
    for (const [Prefix, Delimiter] of [['', '/'], ['dir/', '/'], ['dir/b/', '/'], ['', 'a']] as const) {
      const r = await allV2({ Prefix, Delimiter, MaxKeys });
      const want = expected(Prefix, Delimiter);
      t.same(r.keys, want.keys, `paged (${MaxKeys}) ${JSON.stringify(Prefix)}/${Delimiter}: keys`);
      t.same(r.prefixes, want.prefixes, `paged (${MaxKeys}) ${JSON.stringify(Prefix)}/${Delimiter}: prefixes, each once`);
    }
  }
});

t.test('ListObjectsV2 StartAfter', async (t) => {
  for (const StartAfter of ['dir/b/025', 'dir/', 'a', 'top-039', '~', '', 'dir/b/deep/er/5']) {
    const r = await allV2({ StartAfter, MaxKeys: 50 });
    t.same(r.keys, SORTED.filter((k) => byteOrder(k, StartAfter) > 0), `StartAfter ${JSON.stringify(StartAfter)}`);
  }
  // A key equal to the prefix ('dir/') is excluded by StartAfter of that same key.
  const eq = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: 'dir/', StartAfter: 'dir/', MaxKeys: 3 }));
  t.same(eq.Contents?.map((c) => c.Key), ['dir//double', 'dir/a/000', 'dir/a/001'], 'StartAfter equal to the prefix is exclusive');
  const eqV1 = await s3.send(new ListObjectsCommand({ Bucket, Prefix: 'dir/', Marker: 'dir/', MaxKeys: 2 }));
  t.same(eqV1.Contents?.map((c) => c.Key), ['dir//double', 'dir/a/000'], 'v1 Marker equal to the prefix is exclusive');
  const withPrefix = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: 'dir/a/', StartAfter: 'dir/a/095' }));
  t.same(withPrefix.Contents?.map((c) => c.Key), ['dir/a/096', 'dir/a/097', 'dir/a/098', 'dir/a/099']);
  t.equal(withPrefix.StartAfter, 'dir/a/095', 'StartAfter echoed');
  const delim = await s3.send(new ListObjectsV2Command({ Bucket, Delimiter: '/', StartAfter: 'dir/a/050' }));
  t.same(delim.CommonPrefixes?.map((c) => c.Prefix), expected('', '/', 'dir/a/050').prefixes, 'StartAfter inside a common prefix still reports it');
  // StartAfter is ignored once a continuation token is given.
  const first = await s3.send(new ListObjectsV2Command({ Bucket, MaxKeys: 2, StartAfter: 'top-000' }));
  const next = await s3.send(new ListObjectsV2Command({ Bucket, MaxKeys: 2, StartAfter: 'top-000', ContinuationToken: first.NextContinuationToken }));
  t.same(next.Contents?.map((c) => c.Key), ['top-003', 'top-004'], 'the token wins over StartAfter');
});

t.test('EncodingType url', async (t) => {
  const r = await s3.send(new ListObjectsV2Command({ Bucket, EncodingType: 'url' }));
  t.equal(r.EncodingType, 'url');
  const keys = r.Contents!.map((c) => c.Key!);
  t.same(keys.map(urlDecode), SORTED, 'every key decodes back exactly');
  for (const k of keys) t.notMatch(k, /[^\x21-\x7e]/, `${k}: only printable ASCII on the wire`);
  t.ok(keys.includes('plus%2Bkey'), "'+' is encoded");
  t.ok(keys.includes('pct%2541'), "'%' is encoded");
  t.ok(keys.some((k) => k.startsWith('sp') && k.endsWith('one') && !k.includes(' ')), 'space is encoded');
  const d = await s3.send(new ListObjectsV2Command({ Bucket, EncodingType: 'url', Delimiter: '/', Prefix: 'sp ace/' }));
  t.same(d.Contents?.map((c) => urlDecode(c.Key!)), ['sp ace/one', 'sp ace/two']);
  t.equal(urlDecode(d.Prefix!), 'sp ace/', 'Prefix is encoded too');
  const cp = await s3.send(new ListObjectsV2Command({ Bucket, EncodingType: 'url', Delimiter: '/' }));
  t.same(cp.CommonPrefixes?.map((c) => urlDecode(c.Prefix!)), ['a+b/', 'dir/', 'sp ace/', 'ü/', '日本/'], 'common prefixes encoded');
  // Pagination with url encoding: the continuation token is opaque and still works.
  const keysPaged: string[] = [];
  let token: string | undefined;
  for (let i = 0; i < 100; i++) {
    const p = await s3.send(new ListObjectsV2Command({ Bucket, EncodingType: 'url', MaxKeys: 40, ContinuationToken: token }));
    keysPaged.push(...p.Contents!.map((c) => urlDecode(c.Key!)));
    if (!p.IsTruncated) break;
    token = p.NextContinuationToken;
  }
  t.same(keysPaged, SORTED, 'paged url-encoded listing');
  const v1 = await s3.send(new ListObjectsCommand({ Bucket, EncodingType: 'url', Prefix: 'ü/' }));
  t.same(v1.Contents?.map((c) => urlDecode(c.Key!)), ['ü/1', 'ü/2'], 'v1 url encoding');
  await expectS3Error(t, s3.send(new ListObjectsV2Command({ Bucket, EncodingType: 'base64' as 'url' })), 'InvalidArgument', 400, 'unknown encoding type');
});

t.test('ListObjects v1: Marker / NextMarker to the end', async (t) => {
  const all = await s3.send(new ListObjectsCommand({ Bucket }));
  t.same(all.Contents?.map((c) => c.Key), SORTED, 'v1 full listing');
  t.equal(all.IsTruncated, false);
  t.ok(all.Contents?.every((c) => c.Owner?.ID), 'v1 always has owners');
  // Without a delimiter S3 sends no NextMarker: the client continues from the last key.
  for (const MaxKeys of [1, 13, 100]) {
    const keys: string[] = [];
    let Marker: string | undefined;
    let pages = 0;
    for (; pages < 500; pages++) {
      const r = await s3.send(new ListObjectsCommand({ Bucket, MaxKeys, Marker }));
      keys.push(...(r.Contents ?? []).map((c) => c.Key!));
      if (Marker !== undefined) t.equal(r.Marker, Marker, 'Marker echoed');
      if (!r.IsTruncated) break;
      Marker = r.NextMarker ?? r.Contents![r.Contents!.length - 1].Key;
    }
    t.same(keys, SORTED, `v1 MaxKeys ${MaxKeys}: all keys once, in order`);
  }
  // With a delimiter, NextMarker says where to go on (it may be a common prefix).
  for (const [Prefix, Delimiter, MaxKeys] of [['', '/', 2], ['dir/', '/', 1], ['dir/b/', '/', 7]] as const) {
    const keys: string[] = [];
    const prefixes: string[] = [];
    let Marker: string | undefined;
    for (let pages = 0; pages < 500; pages++) {
      const r = await s3.send(new ListObjectsCommand({ Bucket, Prefix, Delimiter, MaxKeys, Marker }));
      keys.push(...(r.Contents ?? []).map((c) => c.Key!));
      prefixes.push(...(r.CommonPrefixes ?? []).map((c) => c.Prefix!));
      if (!r.IsTruncated) break;
      t.ok(r.NextMarker, 'NextMarker when truncated with a delimiter');
      Marker = r.NextMarker;
    }
    const want = expected(Prefix, Delimiter);
    t.same(keys, want.keys, `v1 ${JSON.stringify(Prefix)}/${Delimiter} by ${MaxKeys}: keys`);
    t.same(prefixes, want.prefixes, `v1 ${JSON.stringify(Prefix)}/${Delimiter} by ${MaxKeys}: prefixes`);
  }
  const m = await s3.send(new ListObjectsCommand({ Bucket, Marker: 'top-037' }));
  t.same(m.Contents?.map((c) => c.Key), SORTED.filter((k) => byteOrder(k, 'top-037') > 0), 'Marker is exclusive');
  // v1 with url encoding: Marker echoed encoded, NextMarker encoded.
  const enc = await s3.send(new ListObjectsCommand({ Bucket, EncodingType: 'url', Delimiter: '/', MaxKeys: 2, Marker: 'sp ace/' }));
  t.equal(urlDecode(enc.Marker!), 'sp ace/');
  t.ok(enc.NextMarker && !enc.NextMarker.includes(' '), 'NextMarker encoded');
});

t.test('ListObjectVersions on an unversioned bucket', async (t) => {
  const r = await s3.send(new ListObjectVersionsCommand({ Bucket }));
  t.equal(r.Versions?.length, KEYS.length, 'one version per key');
  t.same(r.DeleteMarkers ?? [], []);
  t.same(r.Versions?.map((v) => v.Key), SORTED, 'byte order');
  t.ok(r.Versions?.every((v) => v.VersionId === 'null' && v.IsLatest === true), 'every version is "null" and latest');
  t.ok(r.Versions?.every((v) => /^"[0-9a-f]{32}"$/.test(v.ETag!) && v.Size === Buffer.byteLength(v.Key!)), 'ETag and size');
  for (const MaxKeys of [1, 9, 64]) {
    const keys: string[] = [];
    let KeyMarker: string | undefined;
    let VersionIdMarker: string | undefined;
    for (let pages = 0; pages < 500; pages++) {
      const p = await s3.send(new ListObjectVersionsCommand({ Bucket, MaxKeys, KeyMarker, VersionIdMarker }));
      t.ok((p.Versions?.length ?? 0) <= MaxKeys, 'page bound');
      keys.push(...(p.Versions ?? []).map((v) => v.Key!));
      if (!p.IsTruncated) break;
      KeyMarker = p.NextKeyMarker;
      VersionIdMarker = p.NextVersionIdMarker;
    }
    t.same(keys, SORTED, `versions by ${MaxKeys} via KeyMarker: all, once, in order`);
  }
  for (const [Prefix, Delimiter] of [['dir/', undefined], ['dir/', '/']] as const) {
    const keys: string[] = [];
    const prefixes: string[] = [];
    let KeyMarker: string | undefined;
    let VersionIdMarker: string | undefined;
    for (let pages = 0; pages < 500; pages++) {
      const p = await s3.send(new ListObjectVersionsCommand({ Bucket, Prefix, Delimiter, MaxKeys: 1, KeyMarker, VersionIdMarker }));
      keys.push(...(p.Versions ?? []).map((v) => v.Key!));
      prefixes.push(...(p.CommonPrefixes ?? []).map((c) => c.Prefix!));
      if (!p.IsTruncated) break;
      KeyMarker = p.NextKeyMarker;
      VersionIdMarker = p.NextVersionIdMarker;
    }
    t.same(keys, expected(Prefix, Delimiter).keys, `versions with prefix ${Prefix} delimiter ${Delimiter} by 1: keys`);
    t.same(prefixes, expected(Prefix, Delimiter).prefixes, `versions with prefix ${Prefix} delimiter ${Delimiter} by 1: prefixes`);
  }
  // KeyMarker alone (no version id marker) starts after every version of that key.
  const after = await s3.send(new ListObjectVersionsCommand({ Bucket, KeyMarker: 'top-038' }));
  t.same(after.Versions?.map((v) => v.Key), ['top-039', ...SORTED.filter((k) => byteOrder(k, 'top-039') > 0)]);
  const d = await s3.send(new ListObjectVersionsCommand({ Bucket, Prefix: 'dir/', Delimiter: '/' }));
  t.same(d.CommonPrefixes?.map((c) => c.Prefix), expected('dir/', '/').prefixes);
  t.same(d.Versions?.map((v) => v.Key), expected('dir/', '/').keys);
  const e = await s3.send(new ListObjectVersionsCommand({ Bucket, Prefix: 'ü', EncodingType: 'url' }));
  t.same(e.Versions?.map((v) => urlDecode(v.Key!)), ['ü/1', 'ü/2', 'über']);
  await expectS3Error(t, s3.send(new ListObjectVersionsCommand({ Bucket, VersionIdMarker: 'null' })), 'InvalidArgument', 400, 'version-id-marker without key-marker');
});

t.test('listing errors', async (t) => {
  await expectS3Error(t, s3.send(new ListObjectsV2Command({ Bucket: 'no-such-listing' })), 'NoSuchBucket', 404, 'v2 missing bucket');
  await expectS3Error(t, s3.send(new ListObjectsCommand({ Bucket: 'no-such-listing' })), 'NoSuchBucket', 404, 'v1 missing bucket');
  await expectS3Error(t, s3.send(new ListObjectVersionsCommand({ Bucket: 'no-such-listing' })), 'NoSuchBucket', 404, 'versions missing bucket');
  await expectS3Error(t, s3.send(new ListObjectsV2Command({ Bucket, ContinuationToken: 'not-a-token' })), 'InvalidArgument', 400, 'bad continuation token');
  for (const q of ['max-keys=-1', 'max-keys=abc', 'list-type=3']) {
    const r = await raw(srv, { path: `/${Bucket}?list-type=2&${q}`.replace('list-type=2&list-type=3', 'list-type=3') });
    t.equal(r.status, 400, `${q} → 400`);
    t.equal(xmlText(r.text, 'Code'), 'InvalidArgument', `${q} → InvalidArgument`);
  }
  // Over 1000 is clamped to 1000, as on S3.
  const big = await raw(srv, { path: `/${Bucket}?list-type=2&max-keys=5000` });
  t.equal(xmlText(big.text, 'MaxKeys'), '1000');
});

t.test('a listing entry, exactly', async (t) => {
  // Entries are written as strings on the hot path: pin the XML (escaping, checksum names, owner).
  const b = 'listing-entry';
  await s3.send(new CreateBucketCommand({ Bucket: b }));
  await s3.send(new PutObjectCommand({ Bucket: b, Key: 'a&b<c>"\'', Body: 'x', ChecksumAlgorithm: 'SHA256' }));
  await s3.send(new PutObjectCommand({ Bucket: b, Key: 'plain', Body: 'yy' }));
  const r = await raw(srv, { path: `/${b}?list-type=2&fetch-owner=true` });
  t.equal(r.status, 200);
  const entries = r.text.match(/<Contents>.*?<\/Contents>/g) ?? [];
  t.equal(entries.length, 2);
  t.match(entries[0], /^<Contents><Key>a&amp;b&lt;c&gt;&quot;&apos;<\/Key><LastModified>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z<\/LastModified><ETag>&quot;[0-9a-f]{32}&quot;<\/ETag><ChecksumAlgorithm>SHA256<\/ChecksumAlgorithm><ChecksumType>FULL_OBJECT<\/ChecksumType><Size>1<\/Size><StorageClass>STANDARD<\/StorageClass><Owner><ID>[0-9a-f]{64}<\/ID><DisplayName>[^<]+<\/DisplayName><\/Owner><\/Contents>$/);
  t.match(entries[1], /^<Contents><Key>plain<\/Key><LastModified>[^<]+<\/LastModified><ETag>&quot;[0-9a-f]{32}&quot;<\/ETag><ChecksumAlgorithm>CRC32<\/ChecksumAlgorithm><ChecksumType>FULL_OBJECT<\/ChecksumType><Size>2<\/Size><StorageClass>STANDARD<\/StorageClass><Owner>/,
    'the SDK\'s default CRC32 is named; CRC32C, which Kiln always keeps, is not');
  const v1 = await raw(srv, { path: `/${b}` });
  t.equal((v1.text.match(/<Owner><ID>[0-9a-f]{64}<\/ID>/g) ?? []).length, 2, 'v1 lists owners');
  const noOwner = await raw(srv, { path: `/${b}?list-type=2` });
  t.notMatch(noOwner.text, /<Owner>/, 'v2 without fetch-owner has none');
});
