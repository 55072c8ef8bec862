// S3 Express One Zone session auth on directory buckets (`--x-s3`): stock clients with only an
// endpoint and keys (they call CreateSession themselves), and the session rules checked raw.
import t from 'tap';
import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { createHash } from 'node:crypto';
import aws4 from 'aws4';
import {
  S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, ListObjectsV2Command, HeadObjectCommand,
  DeleteObjectCommand, HeadBucketCommand, CopyObjectCommand,
} from '@aws-sdk/client-s3';
import { startServer, ROOT_USER, ROOT_PASSWORD, TestServer } from './helpers/server';
import { tempDrives } from './helpers/drives';
import { createServer } from '../server/app';
import { buildConfig } from '../server/config';
import { Sessions } from '../server/auth/session';

const BUCKET = 'kiln-test--use1-az4--x-s3';

interface Resp { status: number; headers: Record<string, string | string[] | undefined>; body: string }

function send(port: number, o: { method: string; path: string; headers: Record<string, string | number>; body?: string }): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const r = httpRequest({ host: '127.0.0.1', port, path: o.path, method: o.method, headers: o.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    r.on('error', reject);
    r.end(o.body);
  });
}

interface Creds { accessKeyId: string; secretAccessKey: string; sessionToken?: string }

/** A SigV4 request signed for service s3express; a session token goes in x-amz-s3session-token. */
function signed(srv: TestServer, method: string, path: string, creds: Creds, opts: { body?: string; headers?: Record<string, string> } = {}): Promise<Resp> {
  const body = opts.body ?? '';
  const headers: Record<string, string | number> = {
    'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'),
    'content-length': Buffer.byteLength(body),
    ...opts.headers,
  };
  if (creds.sessionToken) headers['x-amz-s3session-token'] = creds.sessionToken;
  const req = aws4.sign({ host: `127.0.0.1:${srv.port}`, path, method, service: 's3express', region: 'us-east-1', headers, body },
    { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey });
  return send(srv.port, { method, path, headers: req.headers as Record<string, string>, body });
}

const ROOT: Creds = { accessKeyId: ROOT_USER, secretAccessKey: ROOT_PASSWORD };

function tag(xml: string, name: string): string {
  return new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1] ?? '';
}

async function createSession(srv: TestServer, bucket: string, creds: Creds, mode?: string): Promise<{ status: number; body: string; creds: Creds }> {
  const r = await signed(srv, 'GET', `/${bucket}?session`, creds, mode ? { headers: { 'x-amz-create-session-mode': mode } } : {});
  return { status: r.status, body: r.body, creds: { accessKeyId: tag(r.body, 'AccessKeyId'), secretAccessKey: tag(r.body, 'SecretAccessKey'), sessionToken: tag(r.body, 'SessionToken') } };
}

async function opCount(srv: TestServer, op: string, status = '200'): Promise<number> {
  const m = await srv.kiln.metrics.requests.get();
  return m.values.filter((v) => v.labels.op === op && String(v.labels.status) === status).reduce((a, v) => a + v.value, 0);
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

t.test('JS SDK v3 with only an endpoint: CreateSession, then session-signed requests', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.close());
  const c = new S3Client({ endpoint: srv.endpoint, region: 'us-east-1', credentials: { accessKeyId: ROOT_USER, secretAccessKey: ROOT_PASSWORD } });
  t.teardown(() => c.destroy());
  // Every request the SDK sends for the directory bucket, as the server saw it.
  const seen: { method: string; url: string; token: boolean; ak: string }[] = [];
  const spy = (req: import('node:http').IncomingMessage) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', token: req.headers['x-amz-s3session-token'] !== undefined, ak: /Credential=([^/]+)/.exec(req.headers.authorization ?? '')?.[1] ?? '' });
  };
  srv.kiln.app.server.prependListener('request', spy);
  t.teardown(() => { srv.kiln.app.server.off('request', spy); });

  await c.send(new CreateBucketCommand({
    Bucket: BUCKET,
    CreateBucketConfiguration: { Location: { Type: 'AvailabilityZone', Name: 'use1-az4' }, Bucket: { Type: 'Directory', DataRedundancy: 'SingleAvailabilityZone' } },
  }));
  await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'dir/hello.txt', Body: 'hello express' }));
  const got = await c.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'dir/hello.txt' }));
  t.equal(await got.Body!.transformToString(), 'hello express');
  const listed = await c.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'dir/' }));
  t.same((listed.Contents ?? []).map((o) => o.Key), ['dir/hello.txt']);
  const head = await c.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'dir/hello.txt' }));
  t.equal(head.ContentLength, 13);
  await c.send(new HeadBucketCommand({ Bucket: BUCKET }));
  // CopyObject is signed with the access key itself (no session) by the SDK.
  await c.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'dir/copy.txt', CopySource: `${BUCKET}/dir/hello.txt` }));
  await c.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'dir/hello.txt' }));
  await c.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'dir/copy.txt' }));
  const after = await c.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'dir/' }));
  t.equal(after.KeyCount, 0, 'deleted');

  t.equal(await opCount(srv, 'CreateSession'), 1, 'one CreateSession, reused for every request');
  const sessionSigned = seen.filter((r) => r.token);
  t.ok(sessionSigned.length >= 8, `${sessionSigned.length} requests carried a session token`);
  t.ok(sessionSigned.every((r) => /^KS[A-Z0-9]{18}$/.test(r.ak)), 'and were signed with the session access key');
  t.ok(seen.some((r) => r.method === 'PUT' && r.token && r.url.includes('dir/hello.txt')), 'PutObject went through session auth');

  // The same client's session key cannot be stretched: a ReadOnly session refuses a PUT.
  const ro = await createSession(srv, BUCKET, ROOT, 'ReadOnly');
  t.equal(ro.status, 200, ro.status === 200 ? 'ReadOnly session opened' : ro.body);
  const roPut = await signed(srv, 'PUT', `/${BUCKET}/dir/ro.txt`, ro.creds, { body: 'x' });
  t.equal(roPut.status, 403, 'ReadOnly session may not PUT');
  t.match(roPut.body, /<Code>AccessDenied<\/Code>/);
});

t.test('boto3 with only endpoint_url and keys', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.close());
  const script = `
import boto3, json, sys
c = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3], region_name='us-east-1')
b = sys.argv[4]
c.create_bucket(Bucket=b)
c.put_object(Bucket=b, Key='data/one.bin', Body=b'boto3 express')
body = c.get_object(Bucket=b, Key='data/one.bin')['Body'].read().decode()
keys = [o['Key'] for o in c.list_objects_v2(Bucket=b, Prefix='data/').get('Contents', [])]
url = c.generate_presigned_url('get_object', Params={'Bucket': b, 'Key': 'data/one.bin'})
import urllib.request
presigned = urllib.request.urlopen(url).read().decode()
c.delete_object(Bucket=b, Key='data/one.bin')
print(json.dumps({'body': body, 'keys': keys, 'presigned': presigned, 'session_in_url': 'X-Amz-S3session-Token' in url}))
`;
  const r = await run('python3', ['-c', script, srv.endpoint, ROOT_USER, ROOT_PASSWORD, BUCKET], srv.env());
  t.equal(r.code, 0, r.code === 0 ? 'boto3 script ran' : r.out.slice(-4000));
  if (r.code !== 0) return;
  const out = JSON.parse(r.out.trim().split('\n').pop()!);
  t.equal(out.body, 'boto3 express');
  t.same(out.keys, ['data/one.bin']);
  t.equal(out.presigned, 'boto3 express', 'presigned GET with X-Amz-S3session-Token');
  t.equal(out.session_in_url, true);
  t.ok(await opCount(srv, 'CreateSession') >= 1, 'boto3 used CreateSession');
});

t.test('session rules, raw', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.close());
  const OTHER = 'other--use1-az4--x-s3';
  t.equal((await signed(srv, 'PUT', `/${BUCKET}`, ROOT)).status, 200, 'IAM key signed for s3express without a session');
  t.equal((await signed(srv, 'PUT', `/${OTHER}`, ROOT)).status, 200);
  const rw = await createSession(srv, BUCKET, ROOT);
  t.equal(rw.status, 200, rw.status === 200 ? 'ReadWrite session opened' : rw.body);
  t.match(rw.body, /<CreateSessionResult xmlns="http:\/\/s3.amazonaws.com\/doc\/2006-03-01\/"><Credentials><SessionToken>/);
  const exp = new Date(tag(rw.body, 'Expiration')).getTime();
  t.ok(exp > Date.now() + 4 * 60_000 && exp <= Date.now() + 5 * 60_000 + 1000, 'valid five minutes');
  t.equal((await signed(srv, 'PUT', `/${BUCKET}/k`, rw.creds, { body: 'v' })).status, 200, 'ReadWrite session PUT');
  const get = await signed(srv, 'GET', `/${BUCKET}/k`, rw.creds);
  t.equal(get.body, 'v');

  await t.test('forged tokens', async (t) => {
    const [payload, mac] = rw.creds.sessionToken!.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const retargeted = Buffer.from(JSON.stringify({ ...claims, bucket: OTHER })).toString('base64url');
    const r1 = await signed(srv, 'GET', `/${OTHER}/k`, { ...rw.creds, sessionToken: `${retargeted}.${mac}` });
    t.equal(r1.status, 403, 'payload changed, MAC kept');
    t.match(r1.body, /AccessDenied/);
    const r2 = await signed(srv, 'GET', `/${BUCKET}/k`, { ...rw.creds, sessionToken: 'garbage' });
    t.equal(r2.status, 403, 'garbage token');
    const r3 = await signed(srv, 'GET', `/${BUCKET}/k`, { ...rw.creds, sessionToken: undefined });
    t.equal(r3.status, 403, 'session key without its token');
    t.match(r3.body, /InvalidAccessKeyId/);
    const other = await createSession(srv, BUCKET, ROOT);
    const r4 = await signed(srv, 'GET', `/${BUCKET}/k`, { ...rw.creds, sessionToken: other.creds.sessionToken });
    t.equal(r4.status, 403, "another session's token");
    const r5 = await signed(srv, 'GET', `/${BUCKET}/k`, { ...rw.creds, secretAccessKey: 'wrong' });
    t.equal(r5.status, 403, 'wrong session secret');
    t.match(r5.body, /SignatureDoesNotMatch/);
  });

  await t.test('expired token', async (t) => {
    const sessions = await Sessions.open(srv.kiln.store);
    const old = sessions.create(ROOT_USER, BUCKET, 'ReadWrite', Date.now() - 6 * 60_000);
    const r = await signed(srv, 'GET', `/${BUCKET}/k`, { accessKeyId: old.accessKeyId, secretAccessKey: old.secretAccessKey, sessionToken: old.sessionToken });
    t.equal(r.status, 400);
    t.match(r.body, /<Code>ExpiredToken<\/Code>/);
  });

  await t.test('a session is for its bucket only', async (t) => {
    const r = await signed(srv, 'GET', `/${OTHER}?list-type=2`, rw.creds);
    t.equal(r.status, 403);
    t.match(r.body, /AccessDenied/);
    t.equal((await signed(srv, 'GET', '/', rw.creds)).status, 403, 'nor ListBuckets');
    const again = await signed(srv, 'GET', `/${BUCKET}?session`, rw.creds);
    t.equal(again.status, 403, 'a session cannot open another session');
  });

  await t.test('ReadOnly sessions', async (t) => {
    const ro = await createSession(srv, BUCKET, ROOT, 'ReadOnly');
    t.equal(ro.status, 200, ro.status === 200 ? 'ReadOnly session opened' : ro.body);
    t.equal((await signed(srv, 'GET', `/${BUCKET}/k`, ro.creds)).status, 200, 'GetObject');
    t.equal((await signed(srv, 'HEAD', `/${BUCKET}/k`, ro.creds)).status, 200, 'HeadObject');
    t.equal((await signed(srv, 'GET', `/${BUCKET}?list-type=2`, ro.creds)).status, 200, 'ListObjectsV2');
    t.equal((await signed(srv, 'HEAD', `/${BUCKET}`, ro.creds)).status, 200, 'HeadBucket');
    t.equal((await signed(srv, 'PUT', `/${BUCKET}/k2`, ro.creds, { body: 'x' })).status, 403, 'PutObject');
    t.equal((await signed(srv, 'DELETE', `/${BUCKET}/k`, ro.creds)).status, 403, 'DeleteObject');
    t.equal((await signed(srv, 'POST', `/${BUCKET}/k3?uploads`, ro.creds)).status, 403, 'CreateMultipartUpload');
    const bad = await signed(srv, 'GET', `/${BUCKET}?session`, ROOT, { headers: { 'x-amz-create-session-mode': 'Everything' } });
    t.equal(bad.status, 400, 'unknown session mode');
  });

  await t.test('presigned with X-Amz-S3session-Token', async (t) => {
    const path = `/${BUCKET}/k?X-Amz-Expires=300&X-Amz-S3session-Token=${encodeURIComponent(rw.creds.sessionToken!)}`;
    const q = aws4.sign({ host: `127.0.0.1:${srv.port}`, path, method: 'GET', service: 's3express', region: 'us-east-1', signQuery: true },
      { accessKeyId: rw.creds.accessKeyId, secretAccessKey: rw.creds.secretAccessKey });
    const r = await send(srv.port, { method: 'GET', path: q.path!, headers: {} });
    t.equal(r.status, 200, r.status === 200 ? 'presigned GET' : r.body);
    t.equal(r.body, 'v');
  });

  await t.test('who may open a session', async (t) => {
    const creds = srv.kiln.credentials;
    const reader = await creds.create({ '*': 'read' });
    const tenant = await creds.create({}, undefined, undefined, undefined, true);
    const none = await creds.create({ 'some-other-bucket': 'readwrite' });
    const as = (k: { accessKey: string; secretKey: string }): Creds => ({ accessKeyId: k.accessKey, secretAccessKey: k.secretKey });
    t.equal((await createSession(srv, BUCKET, as(reader), 'ReadOnly')).status, 200, 'reader: ReadOnly');
    t.equal((await createSession(srv, BUCKET, as(reader))).status, 403, 'reader: not ReadWrite');
    const fresh = 'fresh--use1-az4--x-s3';
    const ts = await createSession(srv, fresh, as(tenant));
    t.equal(ts.status, 200, 'a key that may create buckets: session before CreateBucket');
    t.equal((await signed(srv, 'PUT', `/${fresh}`, ts.creds)).status, 200, 'CreateBucket with the session');
    t.equal((await signed(srv, 'PUT', `/${fresh}/obj`, ts.creds, { body: 'mine' })).status, 200, 'and write to it');
    t.equal((await createSession(srv, BUCKET, as(tenant))).status, 403, "not on another key's bucket");
    t.equal((await createSession(srv, 'nobody--use1-az4--x-s3', as(none))).status, 404, 'no rights, no bucket: NoSuchBucket, as authorize answers');
    t.equal((await createSession(srv, BUCKET, as(none), 'ReadOnly')).status, 403, 'no rights on an existing bucket');
    const anon = await send(srv.port, { method: 'GET', path: `/${BUCKET}?session`, headers: {} });
    t.equal(anon.status, 403, 'anonymous');
    t.equal((await signed(srv, 'GET', '/general-purpose?session', ROOT)).status, 501, 'general purpose buckets have no sessions');
    // Removing the parent key ends its sessions.
    const rs = await createSession(srv, BUCKET, as(reader), 'ReadOnly');
    t.equal((await signed(srv, 'GET', `/${BUCKET}/k`, rs.creds)).status, 200);
    await creds.remove(reader.accessKey);
    await new Promise((r) => setTimeout(r, 1100)); // the key cache holds entries for a second
    t.equal((await signed(srv, 'GET', `/${BUCKET}/k`, rs.creds)).status, 403, 'parent key removed');
  });
});

t.test('sessions survive a restart (the server secret is persisted)', async (t) => {
  const tmp = tempDrives(4, 'kiln-express');
  t.teardown(() => tmp.cleanup());
  const config = {
    ...buildConfig({ address: '127.0.0.1:0', drives: tmp.drives.join(','), 'log-level': 'warn' }, {}),
    rootUser: ROOT_USER, rootPassword: ROOT_PASSWORD,
  };
  const k1 = await createServer(config, { logger: false });
  const s1 = await Sessions.open(k1.store);
  const sess = s1.create(ROOT_USER, BUCKET, 'ReadWrite');
  await k1.close();
  const k2 = await createServer(config, { logger: false });
  t.teardown(() => k2.close());
  const s2 = await Sessions.open(k2.store);
  t.not(s1, s2, 'a new store, a new Sessions');
  t.equal(s2.secretFor(sess.accessKeyId, sess.sessionToken), sess.secretAccessKey, 'same secret after restart');
  t.same(s2.resolve(sess.sessionToken, BUCKET), { parent: ROOT_USER, mode: 'ReadWrite' });
  t.throws(() => s2.resolve(sess.sessionToken, 'other--use1-az4--x-s3'), { code: 'AccessDenied' });
});
