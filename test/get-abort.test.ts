// Clients that go away mid-body: a training job killed during an epoch drops its ranged GETs.
// The server must close every shard file the reads opened, leave nothing pinned, and keep serving.
import t from 'tap';
import * as net from 'node:net';
import { readdirSync } from 'node:fs';
import { CreateBucketCommand, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { startServer } from './helpers/server';
import { signed } from './helpers/s3';
import { body as bytes, waitUntil } from './helpers/faults';

const MiB = 1024 * 1024;
const openFiles = () => readdirSync('/proc/self/fd').length;

t.test('GETs dropped mid-body release their shard files and pins', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.close());
  const s3 = srv.client();
  await s3.send(new CreateBucketCommand({ Bucket: 'aborts' }));
  const big = bytes(12 * MiB + 5, 1);
  const one = bytes(700 * 1024, 2);
  await s3.send(new PutObjectCommand({ Bucket: 'aborts', Key: 'big', Body: big }));
  await s3.send(new PutObjectCommand({ Bucket: 'aborts', Key: 'one', Body: one }));
  const before = openFiles();

  // Each connection asks for a whole object or a range, reads a little (or nothing), and is destroyed.
  const drop = (path: string, headers: Record<string, string>, readBytes: number) => new Promise<void>((resolve) => {
    const r = signed(srv, { path, headers });
    const sock = net.connect(srv.port, '127.0.0.1', () => {
      sock.write(`GET ${r.path} HTTP/1.1\r\n${Object.entries(r.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
    });
    let got = 0;
    sock.on('data', (c: Buffer) => { got += c.length; if (got >= readBytes) sock.destroy(); });
    sock.on('close', () => resolve());
    sock.on('error', () => resolve());
    if (readBytes === 0) setTimeout(() => sock.destroy(), 5);
  });
  for (let round = 0; round < 3; round++) {
    await Promise.all([
      drop('/aborts/big', {}, 64 * 1024),
      drop('/aborts/big', {}, 3 * MiB),
      drop('/aborts/big', { range: 'bytes=1048576-9437183' }, 100),
      drop('/aborts/big', {}, 0),
      drop('/aborts/one', {}, 10),
      drop('/aborts/one', {}, 0),
    ]);
  }
  // Closing is asynchronous (queued reads settle first): wait, bounded by checks.
  t.ok(await waitUntil(() => openFiles() <= before + 2), `open files back to ${before} (+ sockets closing): ${openFiles()}`);
  t.equal(srv.kiln.store.pendingRemovals, 0, 'nothing pinned or being removed');
  // And the server still serves both, whole.
  const whole = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'aborts', Key: 'big' }))).Body!.transformToByteArray());
  t.ok(whole.equals(big), 'the large object reads whole afterwards');
  const small = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'aborts', Key: 'one' }))).Body!.transformToByteArray());
  t.ok(small.equals(one), 'the one-block object reads whole afterwards');
  // An overwrite frees the old data: no reader of it remains.
  await s3.send(new PutObjectCommand({ Bucket: 'aborts', Key: 'big', Body: one }));
  t.ok(await waitUntil(() => srv.kiln.store.pendingRemovals === 0), 'the replaced data is freed');
});
