// The start-up contract scripts and the Dockerfile rely on, exercised on the real `kiln` binary.
import t from 'tap';
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, ListBucketsCommand } from '@aws-sdk/client-s3';
import { tempDrives } from './helpers/drives';
import { freePort, waitReady } from './helpers/process';

const BIN = path.resolve(__dirname, '..', '..', 'server', 'kiln.cjs');

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));
}

t.test('--help on every command', async (t) => {
  for (const args of [['--help'], ['server', '--help'], ['admin', '--help']]) {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
    t.equal(r.status, 0, `kiln ${args.join(' ')} exits 0`);
    t.match(r.stdout, /Usage/, `kiln ${args.join(' ')} prints usage`);
  }
  const bad = spawnSync(process.execPath, [BIN, 'frobnicate'], { encoding: 'utf8' });
  t.equal(bad.status, 2);
});

t.test('kiln server from flags and env, admin keys, graceful stop', async (t) => {
  const tmp = tempDrives(4, 'kiln-cli');
  t.teardown(tmp.cleanup);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = { ...process.env, KILN_ROOT_USER: 'cliroot', KILN_ROOT_PASSWORD: 'cliroot-secret', KILN_DRIVES: tmp.drives.join(','), KILN_LOG_LEVEL: 'warn' };
  const child = spawn(process.execPath, [BIN, 'server', '--address', `127.0.0.1:${port}`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  await waitReady(url, child);
  t.match(out, /access key:\s+cliroot/, 'prints the access key');
  for (const d of tmp.drives) t.ok(existsSync(path.join(d, '.kiln', 'format.json')), `${d} formatted`);

  const s3 = new S3Client({ endpoint: url, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'cliroot', secretAccessKey: 'cliroot-secret' } });
  t.teardown(() => s3.destroy());
  await s3.send(new CreateBucketCommand({ Bucket: 'cli-bucket' }));
  await s3.send(new PutObjectCommand({ Bucket: 'cli-bucket', Key: 'hello', Body: 'hi there' }));

  const admin = (...args: string[]) => spawnSync(process.execPath, [BIN, 'admin', ...args, '--endpoint', url], { env, encoding: 'utf8' });
  const created = admin('key', 'create', '--bucket', 'cli-bucket:read');
  t.equal(created.status, 0, created.stderr);
  const key = JSON.parse(created.stdout) as { accessKey: string; secretKey: string };
  t.ok(key.accessKey && key.secretKey);
  const listed = JSON.parse(admin('key', 'list').stdout) as { accessKey: string; secretKey?: string }[];
  t.ok(listed.some((k) => k.accessKey === key.accessKey && k.secretKey === undefined), 'listed without secret');
  const status = JSON.parse(admin('status').stdout) as { drives: { state: string }[]; layout: { data: number; parity: number }; indexLogs: { segments: number; bytes: number; live: number }[] };
  t.equal(status.drives.length, 4);
  t.same(status.layout.data + status.layout.parity, 4);
  t.equal(status.indexLogs.length, 4, 'one index log per drive');
  t.ok(status.indexLogs.every((l) => l.segments >= 1 && l.live >= 8 && l.bytes >= l.live), 'its segments, bytes and live bytes (the 8-byte object at least)');

  const ro = new S3Client({ endpoint: url, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: key.accessKey, secretAccessKey: key.secretKey } });
  t.teardown(() => ro.destroy());
  const got = await ro.send(new GetObjectCommand({ Bucket: 'cli-bucket', Key: 'hello' }));
  t.equal(await got.Body!.transformToString(), 'hi there');
  await t.rejects(ro.send(new PutObjectCommand({ Bucket: 'cli-bucket', Key: 'x', Body: 'no' })), { name: 'AccessDenied' });
  const buckets = await ro.send(new ListBucketsCommand({}));
  t.same(buckets.Buckets?.map((b) => b.Name), ['cli-bucket']);
  t.equal(admin('key', 'delete', key.accessKey).status, 0);
  await new Promise((r) => setTimeout(r, 1100)); // the credential cache holds entries for one second
  await t.rejects(ro.send(new GetObjectCommand({ Bucket: 'cli-bucket', Key: 'hello' })), { name: 'InvalidAccessKeyId' });
  const wrongAdmin = spawnSync(process.execPath, [BIN, 'admin', 'status', '--endpoint', url], { env: { ...env, KILN_ROOT_PASSWORD: 'nope' }, encoding: 'utf8' });
  t.not(wrongAdmin.status, 0, 'admin with a wrong secret is refused');

  child.kill('SIGTERM');
  t.equal(await exited(child), 0, 'SIGTERM stops it cleanly');

  // Restart on the same drives: everything acknowledged is still there.
  const again = spawn(process.execPath, [BIN, 'server', '--address', `127.0.0.1:${port}`], { env, stdio: 'ignore' });
  t.teardown(() => { if (again.exitCode === null) again.kill('SIGKILL'); });
  await waitReady(url, again);
  const back = await s3.send(new GetObjectCommand({ Bucket: 'cli-bucket', Key: 'hello' }));
  t.equal(await back.Body!.transformToString(), 'hi there');
  again.kill('SIGTERM');
  t.equal(await exited(again), 0);
});

// A stop asked for while the drives open (or workers start) used to kill the process outright:
// an unclean stop, swept for orphans at the next start. It now waits for start-up, then stops
// as any other: exit 0, every drive marked clean.
for (const workers of [1, 2]) {
  t.test(`SIGTERM during start-up (--workers ${workers}): start-up finishes, then a clean stop`, async (t) => {
    const tmp = tempDrives(4, 'kiln-cli-early');
    t.teardown(tmp.cleanup);
    const port = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, KILN_ROOT_USER: 'cliroot', KILN_ROOT_PASSWORD: 'cliroot-secret', KILN_LOG_LEVEL: 'error' };
    delete env.NODE_OPTIONS;
    const args = [BIN, 'server', '--address', `127.0.0.1:${port}`, '--drives', tmp.drives.join(','), '--workers', String(workers)];
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
    let out = '';
    child.stderr!.on('data', (d) => (out += d));
    // The first line comes once the handlers are in, before the drives open.
    await new Promise<void>((resolve, reject) => {
      const limit = setTimeout(() => reject(new Error(`no 'opening' line in 60 s: ${out}`)), 60_000);
      child.once('exit', (code) => reject(new Error(`exited (${code}) before the 'opening' line: ${out}`)));
      child.stdout!.on('data', (d) => { out += d; if (/opening 4 drives/.test(out)) { clearTimeout(limit); resolve(); } });
    });
    child.kill('SIGTERM');
    t.equal(await exited(child), 0, `exit 0${out ? `: ${out}` : ''}`);
    t.match(out, /SIGTERM: stopping once start-up has finished/, 'says so');
    t.notMatch(out, /Kiln is serving/, 'no banner for a server that is stopping');
    t.equal(tmp.drives.filter((d) => existsSync(path.join(d, '.kiln', 'clean'))).length, 4, 'every drive marked clean');
  });
}
