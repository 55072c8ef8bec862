// `kiln server --workers 2`: a real primary process owning the index and two HTTP worker
// processes sharing the port, driven by the AWS SDK over connections that are not kept alive
// (so the requests spread over both workers). What must hold across processes: conditional
// writes decided once (key locks in the owner), version order, bucket changes seen at once by
// the other worker, a read during an overwrite returns the old object whole (frees wait for
// every worker's reads), a killed worker is replaced, /metrics sums every process.
import t, { Test } from 'tap';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import * as http from 'node:http';
import * as path from 'node:path';
import { readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { PassThrough, Readable } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import {
  S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, ListObjectsV2Command, PutBucketVersioningCommand,
  ListObjectVersionsCommand, DeleteObjectCommand, CreateMultipartUploadCommand, UploadPartCommand, CompleteMultipartUploadCommand,
} from '@aws-sdk/client-s3';
import { tempDrives } from './helpers/drives';
import { freePort, waitReady } from './helpers/process';
import { ObjectStore } from '../storage';
import { IndexOwner } from '../storage/index-owner';
import { IndexClient } from '../storage/index-client';
import { socketName } from '../storage/index-wire';
import { DEFAULT_INLINE_THRESHOLD } from '../storage/constants';

const KILN = path.join(__dirname, '..', '..', 'server', 'kiln.cjs');
const USER = 'workersroot';
const PASS = 'workers-secret-key';
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** A client whose every request opens a new connection: the cluster hands them out in turn. */
function client(port: number): S3Client {
  return new S3Client({
    endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: USER, secretAccessKey: PASS },
    requestHandler: { httpAgent: new http.Agent({ keepAlive: false }) },
  });
}

function workerPids(primary: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(primary)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Request-id prefixes (one per process) seen over n fresh connections to /health/live. */
async function servingProcesses(port: number, n = 12): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve) => {
      http.get({ host: '127.0.0.1', port, path: '/health/live', agent: false }, (r) => {
        r.resume();
        const id = r.headers['x-amz-request-id'];
        if (typeof id === 'string') seen.add(id.slice(0, 8));
        resolve();
      }).on('error', () => resolve());
    });
  }
  return seen;
}

async function until(what: string, fn: () => Promise<boolean> | boolean, tries = 200, everyMs = 50): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for: ${what}`);
}

t.test('two HTTP workers and an index owner', async (t) => {
  const tmp = tempDrives(4, 'kiln-workers');
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, KILN_ROOT_USER: USER, KILN_ROOT_PASSWORD: PASS };
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, [KILN, 'server', '--workers', '2', '--address', `127.0.0.1:${port}`, '--drives', tmp.drives.join(','), '--log-level', 'error', '--min-part-size', '1024'],
    { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  child.stdout!.resume();
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); tmp.cleanup(); });
  await waitReady(`http://127.0.0.1:${port}`, child);
  const a = client(port);
  const b = client(port);
  t.teardown(() => { a.destroy(); b.destroy(); });
  await a.send(new CreateBucketCommand({ Bucket: 'wkbucket' }));

  await t.test('requests land on both workers', async (t) => {
    const prefixes = new Set<string>();
    for (let i = 0; i < 16; i++) {
      const r = await a.send(new PutObjectCommand({ Bucket: 'wkbucket', Key: `spread/${i}`, Body: `x${i}` }));
      prefixes.add(r.$metadata.requestId!.slice(0, 8));
    }
    t.equal(prefixes.size, 2, 'request ids from two processes');
  });

  await t.test('admin status from either worker shows the owner\'s index logs', async (t) => {
    for (let i = 0; i < 4; i++) {
      const out = spawnSync(process.execPath, [KILN, 'admin', 'status', '--endpoint', `http://127.0.0.1:${port}`], { env, encoding: 'utf8' });
      t.equal(out.status, 0, out.stderr);
      const st = JSON.parse(out.stdout) as { indexLogs: { drive: string; segments: number; bytes: number; live: number }[] };
      t.equal(st.indexLogs.length, 4, 'one log per index replica');
      t.ok(st.indexLogs.every((l) => l.segments >= 1 && l.live > 0 && l.bytes >= l.live), 'segments, bytes and live bytes (the 16 small objects)');
    }
  });

  await t.test('objects written through one worker read whole through the other', async (t) => {
    const bodies = new Map<string, Buffer>();
    for (let i = 0; i < 12; i++) bodies.set(`obj/small-${i}`, randomBytes(100 + i * 300));
    bodies.set('obj/large-1', randomBytes(3 * 1024 * 1024 + 17));
    bodies.set('obj/large-2', randomBytes(2 * 1024 * 1024));
    // One erasure block each: written by one task per drive, read whole by one (test/one-block.test.ts).
    bodies.set('obj/one-block-1', randomBytes(500 * 1024));
    bodies.set('obj/one-block-2', randomBytes(1024 * 1024));
    let n = 0;
    for (const [k, v] of bodies) await (n++ % 2 ? a : b).send(new PutObjectCommand({ Bucket: 'wkbucket', Key: k, Body: v }));
    const up = await a.send(new CreateMultipartUploadCommand({ Bucket: 'wkbucket', Key: 'obj/multi' }));
    const p1 = randomBytes(300 * 1024);
    const p2 = randomBytes(5000);
    const e1 = await b.send(new UploadPartCommand({ Bucket: 'wkbucket', Key: 'obj/multi', UploadId: up.UploadId, PartNumber: 1, Body: p1 }));
    const e2 = await a.send(new UploadPartCommand({ Bucket: 'wkbucket', Key: 'obj/multi', UploadId: up.UploadId, PartNumber: 2, Body: p2 }));
    await b.send(new CompleteMultipartUploadCommand({ Bucket: 'wkbucket', Key: 'obj/multi', UploadId: up.UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: e1.ETag }, { PartNumber: 2, ETag: e2.ETag }] } }));
    bodies.set('obj/multi', Buffer.concat([p1, p2]));
    const listed = await b.send(new ListObjectsV2Command({ Bucket: 'wkbucket', Prefix: 'obj/', MaxKeys: 5 }));
    t.equal(listed.KeyCount, 5);
    t.ok(listed.IsTruncated);
    const rest = await a.send(new ListObjectsV2Command({ Bucket: 'wkbucket', Prefix: 'obj/', ContinuationToken: listed.NextContinuationToken }));
    t.same([...(listed.Contents ?? []), ...(rest.Contents ?? [])].map((o) => o.Key), [...bodies.keys()].sort());
    n = 0;
    for (const [k, v] of bodies) {
      const got = Buffer.from(await (await (n++ % 2 ? b : a).send(new GetObjectCommand({ Bucket: 'wkbucket', Key: k }))).Body!.transformToByteArray());
      t.equal(md5(got), md5(v), k);
    }
  });

  await t.test('a conditional write racing from both workers succeeds once', async (t) => {
    const tries = Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).send(new PutObjectCommand({ Bucket: 'wkbucket', Key: 'race/once', Body: `w${i}`, IfNoneMatch: '*' }))
      .then(() => 'ok', (e: { name: string }) => e.name));
    const out = await Promise.all(tries);
    t.equal(out.filter((o) => o === 'ok').length, 1, 'one winner');
    t.ok(out.filter((o) => o !== 'ok').every((o) => o === 'PreconditionFailed' || o === 'ConditionalRequestConflict'), out.join(','));
  });

  await t.test('versioning turned on through one worker applies on the other at once; versions keep order', async (t) => {
    await a.send(new PutBucketVersioningCommand({ Bucket: 'wkbucket', VersioningConfiguration: { Status: 'Enabled' } }));
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await (i % 2 ? a : b).send(new PutObjectCommand({ Bucket: 'wkbucket', Key: 'ver/k', Body: `v${i}` }));
      t.not(r.VersionId ?? 'null', 'null', `put ${i} got a version id`);
      ids.push(r.VersionId!);
    }
    const vs = await b.send(new ListObjectVersionsCommand({ Bucket: 'wkbucket', Prefix: 'ver/' }));
    t.same((vs.Versions ?? []).map((v) => v.VersionId), [...ids].reverse(), 'newest first, in write order');
    const latest = await a.send(new GetObjectCommand({ Bucket: 'wkbucket', Key: 'ver/k' }));
    t.equal(await latest.Body!.transformToString(), 'v9');
    await b.send(new PutBucketVersioningCommand({ Bucket: 'wkbucket', VersioningConfiguration: { Status: 'Suspended' } }));
  });

  await t.test('a read during an overwrite on the other worker returns the old object whole', async (t) => {
    const v1 = randomBytes(24 * 1024 * 1024);
    const v2 = randomBytes(8 * 1024 * 1024);
    await a.send(new PutObjectCommand({ Bucket: 'wkbucket', Key: 'hot/shard', Body: v1 }));
    // Versioning is suspended: the overwrite replaces the null version and frees its data.
    const got = await a.send(new GetObjectCommand({ Bucket: 'wkbucket', Key: 'hot/shard' }));
    const body = got.Body as unknown as NodeJS.ReadableStream & { pause(): void; resume(): void };
    const chunks: Buffer[] = [];
    const first = await new Promise<Buffer>((resolve) => body.once('data', (c: Buffer) => { body.pause(); resolve(c); }));
    chunks.push(first);
    // Overwrite and delete through fresh connections (the other worker or this one, in turn).
    await b.send(new PutObjectCommand({ Bucket: 'wkbucket', Key: 'hot/shard', Body: v2 }));
    await a.send(new PutObjectCommand({ Bucket: 'wkbucket', Key: 'hot/shard', Body: v2 }));
    await new Promise((r) => setTimeout(r, 300)); // gives a wrong free the chance to happen
    const rest = await new Promise<Buffer>((resolve, reject) => {
      body.on('data', (c: Buffer) => chunks.push(c));
      body.on('end', () => resolve(Buffer.concat(chunks)));
      body.on('error', reject);
      body.resume();
    });
    t.equal(rest.length, v1.length);
    // (Once a read has its shard files open, their removal cannot hurt it; the owner's wait for
    // every worker's oldest read covers the moment between the index read and the opens: the
    // next test checks that wait itself.)
    t.equal(md5(rest), md5(v1), 'the old object, whole');
    const now = Buffer.from(await (await b.send(new GetObjectCommand({ Bucket: 'wkbucket', Key: 'hot/shard' }))).Body!.transformToByteArray());
    t.equal(md5(now), md5(v2));
    await b.send(new DeleteObjectCommand({ Bucket: 'wkbucket', Key: 'hot/shard' }));
    // Every replaced data dir is freed once the read ended: only the shard-stored objects above
    // remain (obj/large-1, obj/large-2, obj/one-block-1 and -2, the multipart upload's parts).
    const dirs = () => readdirSync(path.join(tmp.drives[0], 'data')).flatMap((f) => readdirSync(path.join(tmp.drives[0], 'data', f)));
    await until('replaced data freed', () => dirs().length <= 6);
    t.ok(dirs().length <= 6, `data dirs left: ${dirs().length}`);
  });

  await t.test('/metrics sums the requests of every process', async (t) => {
    const text = await new Promise<string>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/metrics' }, (r) => { let s = ''; r.setEncoding('utf8'); r.on('data', (d) => { s += d; }); r.on('end', () => resolve(s)); }).on('error', reject);
    });
    const puts = text.split('\n').filter((l) => l.startsWith('kiln_requests_total{op="PutObject",status="200"}')).map((l) => Number(l.split(' ')[1]));
    t.equal(puts.length, 1);
    t.ok(puts[0] >= 16 + 14 + 10 + 1 + 3, `PutObject 200 total ${puts[0]}`);
    t.match(text, /kiln_drive_online\{drive="[^"]+",state="online"\} 1/);
    const count = text.split('\n').filter((l) => l.startsWith('kiln_request_duration_seconds_count{op="PutObject"}'));
    t.equal(count.length, 1, 'one latency series per operation, summed over processes');
    t.ok(Number(count[0].split(' ')[1]) >= puts[0], 'PutObject latency count covers every PutObject');
  });

  await t.test('a worker killed in the middle of an upload leaves nothing in tmp/', async (t) => {
    const tmpDir = path.join(tmp.drives[0], '.kiln', 'tmp');
    const body = new PassThrough();
    const abort = new AbortController();
    const put = a.send(new PutObjectCommand({ Bucket: 'wkbucket', Key: 'stalled', Body: body, ContentLength: 16 * 1024 * 1024 }),
      { abortSignal: abort.signal }).then(() => 'done', () => 'failed');
    body.write(randomBytes(6 * 1024 * 1024)); // past the inline threshold: shard files in tmp/
    await until('a write in tmp/', () => readdirSync(tmpDir).length > 0);
    const pid = Number(readdirSync(tmpDir)[0].split('.')[0]);
    t.ok(workerPids(child.pid!).includes(pid), 'named after the worker writing it');
    process.kill(pid, 'SIGKILL');
    await until('its tmp/ entries removed', () => readdirSync(tmpDir).every((e) => !e.startsWith(`${pid}.`)));
    t.same(readdirSync(tmpDir).filter((e) => e.startsWith(`${pid}.`)), []);
    abort.abort();
    body.destroy();
    t.equal(await put, 'failed', 'the upload was not acknowledged');
    await until('two workers serving again', async () => (await servingProcesses(port)).size === 2);
  });

  await t.test('a killed worker is replaced and service goes on', async (t) => {
    const before = workerPids(child.pid!);
    t.equal(before.length, 2, 'two workers');
    process.kill(before[0], 'SIGKILL');
    await until('a new worker', () => { const now = workerPids(child.pid!); return now.length === 2 && !now.includes(before[0]); });
    // Requests keep working (the SDK retries one that hit the dying worker).
    for (let i = 0; i < 8; i++) {
      await a.send(new PutObjectCommand({ Bucket: 'wkbucket', Key: `after/${i}`, Body: `y${i}` }));
      t.equal(await (await b.send(new GetObjectCommand({ Bucket: 'wkbucket', Key: `after/${i}` }))).Body!.transformToString(), `y${i}`);
    }
    const r = await b.send(new PutObjectCommand({ Bucket: 'wkbucket', Key: 'race/after-kill', Body: 'z', IfNoneMatch: '*' }));
    t.ok(r.ETag, 'key locks still granted');
  });

  await t.test('SIGTERM stops every process cleanly', async (t) => {
    const pids = workerPids(child.pid!);
    const code = await new Promise<number | null>((resolve) => { child.once('exit', (c) => resolve(c)); child.kill('SIGTERM'); });
    t.equal(code, 0, stderr);
    for (const p of pids) t.throws(() => process.kill(p, 0), `worker ${p} gone`);
    // Workers were killed during this run (their writes may have left orphans): the next start sweeps.
    t.same(tmp.drives.filter((d) => existsSync(path.join(d, '.kiln', 'clean'))), [], 'killed workers: no drive marked clean');
  });
});

t.test('a --workers run stopped cleanly marks the drives; the next start takes the marks', async (t) => {
  const tmp = tempDrives(4, 'kiln-workers-clean');
  t.teardown(tmp.cleanup);
  const marked = () => tmp.drives.filter((d) => existsSync(path.join(d, '.kiln', 'clean'))).length;
  const run = async (work: (port: number) => Promise<void>) => {
    const port = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, KILN_ROOT_USER: USER, KILN_ROOT_PASSWORD: PASS };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, [KILN, 'server', '--workers', '2', '--address', `127.0.0.1:${port}`, '--drives', tmp.drives.join(','), '--log-level', 'error'],
      { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += d; });
    try {
      await waitReady(`http://127.0.0.1:${port}`, child);
      // Both workers up, so both take part in what `work` does (and each must say goodbye clean).
      await until('two workers serving', async () => (await servingProcesses(port)).size === 2);
      await work(port);
    } finally {
      const code = await new Promise<number | null>((resolve) => { child.once('exit', (c) => resolve(c)); child.kill('SIGTERM'); });
      t.equal(code, 0, `stopped with SIGTERM${stderr ? `: ${stderr}` : ''}`);
    }
  };
  const big = randomBytes(1536 * 1024);
  await run(async (port) => {
    const c = client(port);
    await c.send(new CreateBucketCommand({ Bucket: 'cleanstop' }));
    // Writes and reads through both workers (connections are not kept alive).
    for (let i = 0; i < 6; i++) await c.send(new PutObjectCommand({ Bucket: 'cleanstop', Key: `k${i}`, Body: i % 2 ? big : `small ${i}` }));
    for (let i = 0; i < 6; i++) await (await c.send(new GetObjectCommand({ Bucket: 'cleanstop', Key: `k${i}` }))).Body!.transformToByteArray();
    c.destroy();
  });
  t.equal(marked(), 4, 'every worker said goodbye clean: every drive marked');
  await run(async (port) => {
    t.equal(marked(), 0, 'the next start took the marks before serving');
    const c = client(port);
    t.equal(Buffer.from(await (await c.send(new GetObjectCommand({ Bucket: 'cleanstop', Key: 'k1' }))).Body!.transformToByteArray()).equals(big), true, 'data reads back');
    c.destroy();
  });
  t.equal(marked(), 4, 'a second clean stop marks again');
});

/** An index owner listening over a store on four temporary drives (the caller tears it down). */
async function ownerOnTempDrives(label: string) {
  const tmp = tempDrives(4, label);
  const store = await ObjectStore.open({ drives: tmp.drives });
  const owner = new IndexOwner(store);
  const name = socketName(tmpdir());
  await owner.listen(name);
  return { tmp, store, owner, name };
}

t.test('the owner frees replaced data only once no worker has an older read in flight', async (t) => {
  const { tmp, store, owner, name } = await ownerOnTempDrives('kiln-owner-free');
  await t.rejects(IndexClient.connect(name, randomBytes(32)), 'a connection without the primary\'s token is refused');
  const worker = await IndexClient.connect(name, owner.token);
  t.teardown(async () => { await worker.close(); await owner.close(); await store.close(); tmp.cleanup(); });
  // The worker has had a read in flight since before the overwrite below.
  let oldest: bigint | undefined = process.hrtime.bigint();
  worker.hooks = { invalidateBucket: () => undefined, oldestRead: () => oldest };
  await store.createBucket('freeb');
  const v1 = await store.putObject('freeb', 'k', Readable.from([randomBytes(1024 * 1024)]));
  const dir = store.drives[0].dataPath(v1.parts[0].dataDir);
  t.ok(existsSync(dir));
  await store.putObject('freeb', 'k', Readable.from([randomBytes(1024 * 1024)]));
  await new Promise((r) => setTimeout(r, 300)); // several of the owner's 20 ms rounds
  t.ok(existsSync(dir), 'kept while the older read is in flight');
  oldest = process.hrtime.bigint(); // that read ended; a newer one started after the overwrite
  await until('freed', () => !existsSync(dir));
  t.notOk(existsSync(dir), 'freed once every read in flight started after the overwrite');
});

t.test('a key lock held by a worker that goes away is released; waiters are served in order', async (t) => {
  const { tmp, store, owner, name } = await ownerOnTempDrives('kiln-owner-locks');
  const doomed = await IndexClient.connect(name, owner.token);
  const other = await IndexClient.connect(name, owner.token);
  t.teardown(async () => { await other.close(); await owner.close(); await store.close(); tmp.cleanup(); });
  const order: string[] = [];
  let holding!: () => void;
  const held = new Promise<void>((r) => (holding = r));
  // The doomed worker takes the lock and never gives it back (its process "dies" instead).
  void doomed.locks.run('bkt\0key', () => { holding(); return new Promise<void>(() => undefined); }).catch(() => undefined);
  await held;
  const a = other.locks.run('bkt\0key', async () => { order.push('a'); });
  const b = other.locks.run('bkt\0key', async () => { order.push('b'); });
  await new Promise((r) => setTimeout(r, 100)); // a's and b's requests have reached the owner
  // The owner's own commits use the same lock table, behind them.
  const c = store.locks.run('bkt\0key', async () => { order.push('c'); });
  t.same(order, [], 'nobody gets the lock while its holder lives');
  await doomed.close();
  await Promise.all([a, b, c]);
  t.same(order, ['a', 'b', 'c'], 'released with the connection, then granted first come first served');
});

/** Two worker stores on one owner, as `--workers 2` runs them (in this process, so their caches can be looked at). */
async function twoWorkers(t: Test, label: string) {
  const o = await ownerOnTempDrives(label);
  const clients = [await IndexClient.connect(o.name, o.owner.token), await IndexClient.connect(o.name, o.owner.token)];
  const workers = await Promise.all(clients.map((c) => ObjectStore.connect({ drives: o.tmp.drives }, c)));
  t.teardown(async () => { for (const c of clients) await c.close(); await o.owner.close(); await o.store.close(); o.tmp.cleanup(); });
  return { ...o, clients, workers };
}

const readAll = async (s: ObjectStore, b: string, k: string) => collectStream((await s.getObject(b, k)).stream);
async function collectStream(r: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c);
  return Buffer.concat(parts);
}

t.test('worker record caches: a write acknowledged anywhere is read everywhere next', async (t) => {
  const { store, clients, workers: [a, b] } = await twoWorkers(t, 'kiln-owner-cache');
  await store.createBucket('cb');
  await a.putObject('cb', 'k', Readable.from([Buffer.from('v0')]));
  t.equal((await readAll(b, 'cb', 'k')).toString(), 'v0');
  // Acknowledged at the write quorum; until the last replica has it too, reads are not cached.
  await until('cached', async () => (await readAll(b, 'cb', 'k')).toString() === 'v0' && clients[1].cachedRecords === 1);
  t.equal(clients[1].cachedRecords, 1, 'the reading worker keeps the record');
  t.equal((await readAll(b, 'cb', 'k')).toString(), 'v0', 'and serves it again');
  // Writes through the other worker, through the owner itself, and from the cached worker;
  // inline bodies and shard-stored ones (past the inline threshold); deletes. Each is read at
  // once through both workers.
  for (let i = 1; i <= 60; i++) {
    const writer = [a, store, b][i % 3];
    const body = i % 7 === 0 ? randomBytes(DEFAULT_INLINE_THRESHOLD + 8 * 1024 + i) : Buffer.from(`v${i}`);
    if (i % 11 === 0) {
      await writer.deleteObject('cb', 'k');
      for (const r of [a, b]) await t.rejects(r.headObject('cb', 'k'), { code: 'NoSuchKey' }, `delete ${i} seen`);
      continue;
    }
    await writer.putObject('cb', 'k', Readable.from([body]));
    for (const [n, r] of [['a', a], ['b', b]] as const) if (!(await readAll(r, 'cb', 'k')).equals(body)) t.fail(`write ${i}: worker ${n} read an older value`);
  }
  // Absent keys are cached too, and a create drops them.
  await t.rejects(b.headObject('cb', 'new'), { code: 'NoSuchKey' });
  await a.putObject('cb', 'new', Readable.from([Buffer.from('here')]));
  t.equal((await readAll(b, 'cb', 'new')).toString(), 'here', 'created after a cached absence');
});

t.test('worker record caches: eviction and re-reads never leave a copy the owner does not know of', async (t) => {
  const { store, clients, workers: [a, b] } = await twoWorkers(t, 'kiln-owner-evict');
  // About three entries fit: every read evicts, and evicted keys are read again at once.
  clients[1].recordCacheBytes = 3 * 600;
  await store.createBucket('eb');
  const keys = Array.from({ length: 8 }, (_, i) => `k${i}`);
  const current = new Map<string, Buffer>();
  for (const k of keys) { const v = randomBytes(64); current.set(k, v); await a.putObject('eb', k, Readable.from([v])); }
  for (let round = 0; round < 25; round++) {
    // Reads on b (evicting and refetching, some concurrently), then a write of every key on a.
    await Promise.all(keys.flatMap((k) => [readAll(b, 'eb', k), readAll(b, 'eb', k)]));
    await new Promise((r) => setImmediate(r)); // the Forget frames leave
    await Promise.all(keys.map((k) => readAll(b, 'eb', k)));
    for (const k of keys) { const v = randomBytes(64); current.set(k, v); await a.putObject('eb', k, Readable.from([v])); }
    for (const k of keys) if (!(await readAll(b, 'eb', k)).equals(current.get(k)!)) t.fail(`round ${round}: ${k} stale on the evicting worker`);
  }
  t.ok(clients[1].cachedRecords <= 4, `the cache stayed within its bound (${clients[1].cachedRecords} entries)`);
  t.pass('no stale read in 25 rounds');
});

t.test('worker record caches: a key evicted and fetched again while its Forget is on the way stays known to the owner', async (t) => {
  const { store, clients, workers: [a, b] } = await twoWorkers(t, 'kiln-owner-forget');
  clients[1].recordCacheBytes = 1000; // one entry
  await store.createBucket('fb');
  let n = 0;
  const write = async (k: string) => { await a.putObject('fb', k, Readable.from([Buffer.from(`${k}${++n}`)])); await new Promise((r) => setTimeout(r, 20)); };
  await write('k');
  await write('j');
  for (let round = 0; round < 20; round++) {
    // Replies in order: k (kept), j (evicts k: Forget k queued), k again (kept again before
    // that Forget leaves). The owner must still count b as holding k.
    await Promise.all([readAll(b, 'fb', 'k'), readAll(b, 'fb', 'j'), readAll(b, 'fb', 'k')]);
    await new Promise((r) => setImmediate(r));
    await write('k');
    const got = (await readAll(b, 'fb', 'k')).toString();
    if (got !== `k${n}`) t.fail(`round ${round}: read ${got}, wrote k${n}`);
  }
  t.pass('b read every write of k');
});

t.test('worker record caches: readers racing writers see no value older than the last acknowledged write', async (t) => {
  const { store, workers: [a, b] } = await twoWorkers(t, 'kiln-owner-race');
  await store.createBucket('rb');
  await a.putObject('rb', 'k', Readable.from([Buffer.from('0')]));
  let acked = 0;
  let stop = false;
  let stale = 0;
  let reads = 0;
  const reader = async () => {
    while (!stop) {
      const floor = acked;
      const got = Number((await readAll(b, 'rb', 'k')).toString());
      reads++;
      if (got < floor) stale++;
      // A cached read completes in microtasks alone: let the writer's I/O run.
      await new Promise((r) => setImmediate(r));
    }
  };
  const readers = [reader(), reader(), reader()];
  for (let i = 1; i <= 150; i++) {
    await a.putObject('rb', 'k', Readable.from([Buffer.from(String(i))]));
    acked = i;
    if (i % 10 === 0) await new Promise((r) => setImmediate(r));
  }
  stop = true;
  await Promise.all(readers);
  t.equal(stale, 0, `no read returned a value older than the last acknowledged write (${reads} reads)`);
});

t.test('worker record caches: a worker that does not drop a key in time is cut off and the write goes on', async (t) => {
  const { store, owner, clients, workers: [a, b] } = await twoWorkers(t, 'kiln-owner-stuck');
  owner.dropTimeoutMs = 300;
  await store.createBucket('sb');
  await a.putObject('sb', 'k', Readable.from([Buffer.from('old')]));
  await until('cached on b', async () => (await readAll(b, 'sb', 'k')).toString() === 'old' && clients[1].cachedRecords === 1);
  // b's event loop "hangs" as far as the owner can tell: it never answers DropKeys.
  const stuck = clients[1] as unknown as { handle(f: { op: number }): void };
  const handle = stuck.handle.bind(stuck);
  stuck.handle = (f) => { if (f.op !== 24 /* Op.DropKeys */) handle(f); };
  let lost = false;
  clients[1].onLost = () => { lost = true; };
  await a.putObject('sb', 'k', Readable.from([Buffer.from('new')]));
  await until('connection closed', () => lost);
  t.ok(lost, 'the stuck worker lost its connection to the owner (a worker process exits on that)');
  t.equal((await readAll(a, 'sb', 'k')).toString(), 'new', 'the write went through');
});
