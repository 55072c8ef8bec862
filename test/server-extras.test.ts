// Addressing and transport: virtual-host-style requests, TLS, browser POST uploads.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { createHmac, createHash } from 'node:crypto';
import * as path from 'node:path';
import aws4 from 'aws4';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { startServer, ROOT_USER, ROOT_PASSWORD } from './helpers/server';
import { tempDrives } from './helpers/drives';
import { buildConfig } from '../server/config';

interface Resp { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }

function send(opts: { port: number; path: string; method: string; headers: Record<string, string | number>; body?: Buffer | string; tls?: boolean }): Promise<Resp> {
  const req = opts.tls ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const r = req({ host: '127.0.0.1', port: opts.port, path: opts.path, method: opts.method, headers: opts.headers, rejectUnauthorized: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    r.on('error', reject);
    r.end(opts.body);
  });
}

t.test('virtual-host-style addressing', async (t) => {
  const srv = await startServer({ overrides: { domains: ['kiln.test'] } });
  t.teardown(() => srv.close());
  await srv.client().send(new CreateBucketCommand({ Bucket: 'vhost' }));
  const host = `vhost.kiln.test:${srv.port}`;
  const signed = aws4.sign({ host, path: '/some/key.txt', method: 'PUT', service: 's3', region: 'us-east-1', body: 'virtual', headers: { 'content-length': 7 } },
    { accessKeyId: ROOT_USER, secretAccessKey: ROOT_PASSWORD });
  const put = await send({ port: srv.port, path: '/some/key.txt', method: 'PUT', headers: signed.headers as Record<string, string>, body: 'virtual' });
  t.equal(put.status, 200, put.body.toString());
  const got = await srv.client().send(new GetObjectCommand({ Bucket: 'vhost', Key: 'some/key.txt' }));
  t.equal(await got.Body!.transformToString(), 'virtual', 'vhost PUT landed in bucket vhost');
});

t.test('TLS', async (t) => {
  const tmp = tempDrives(1, 'kiln-tls');
  t.teardown(tmp.cleanup);
  const cert = path.join(tmp.root, 'cert.pem');
  const key = path.join(tmp.root, 'key.pem');
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
  } catch {
    t.comment('openssl not available: TLS test skipped');
    return;
  }
  const srv = await startServer({ overrides: { tlsCert: cert, tlsKey: key } });
  t.teardown(() => srv.close());
  const r = await send({ port: srv.port, path: '/health/ready', method: 'GET', headers: {}, tls: true });
  t.equal(r.status, 200);
  const signed = aws4.sign({ host: `127.0.0.1:${srv.port}`, path: '/', method: 'GET', service: 's3', region: 'us-east-1' }, { accessKeyId: ROOT_USER, secretAccessKey: ROOT_PASSWORD });
  const list = await send({ port: srv.port, path: '/', method: 'GET', headers: signed.headers as Record<string, string>, tls: true });
  t.equal(list.status, 200);
  t.match(list.body.toString(), /ListAllMyBucketsResult/);
});

function policyForm(bucket: string, fields: Record<string, string>, conditions: unknown[], secret = ROOT_PASSWORD, expiresInMs = 600_000) {
  const now = new Date();
  const date = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = date.slice(0, 8);
  const credential = `${ROOT_USER}/${day}/us-east-1/s3/aws4_request`;
  const policy = Buffer.from(JSON.stringify({
    expiration: new Date(now.getTime() + expiresInMs).toISOString(),
    conditions: [{ bucket }, { 'x-amz-algorithm': 'AWS4-HMAC-SHA256' }, { 'x-amz-credential': credential }, { 'x-amz-date': date }, ...conditions],
  })).toString('base64');
  const kDate = createHmac('sha256', `AWS4${secret}`).update(day).digest();
  const kRegion = createHmac('sha256', kDate).update('us-east-1').digest();
  const kService = createHmac('sha256', kRegion).update('s3').digest();
  const kSigning = createHmac('sha256', kService).update('aws4_request').digest();
  const signature = createHmac('sha256', kSigning).update(policy).digest('hex');
  return { ...fields, 'x-amz-algorithm': 'AWS4-HMAC-SHA256', 'x-amz-credential': credential, 'x-amz-date': date, policy, 'x-amz-signature': signature };
}

function multipartBody(fields: Record<string, string>, file: Buffer, filename = 'upload.bin'): { body: Buffer; type: string } {
  const boundary = `----kiln${createHash('md5').update(file).digest('hex')}`;
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`), file, Buffer.from(`\r\n--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), type: `multipart/form-data; boundary=${boundary}` };
}

t.test('POST object with a signed policy', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.close());
  const s3 = srv.client();
  await s3.send(new CreateBucketCommand({ Bucket: 'forms' }));
  const file = Buffer.from('uploaded from a browser form');
  const post = async (fields: Record<string, string>, f = file) => {
    const { body, type } = multipartBody(fields, f);
    return send({ port: srv.port, path: '/forms', method: 'POST', headers: { 'content-type': type, 'content-length': body.length }, body });
  };
  const good = policyForm('forms', { key: 'user/${filename}', 'x-amz-meta-origin': 'form', success_action_status: '201' },
    [['starts-with', '$key', 'user/'], ['eq', '$x-amz-meta-origin', 'form'], ['eq', '$success_action_status', '201'], ['content-length-range', 1, 1024]]);
  const ok = await post(good);
  t.equal(ok.status, 201, ok.body.toString());
  t.match(ok.body.toString(), /<Key>user\/upload.bin<\/Key>/);
  const got = await s3.send(new GetObjectCommand({ Bucket: 'forms', Key: 'user/upload.bin' }));
  t.equal(await got.Body!.transformToString(), file.toString());
  t.equal(got.Metadata?.origin, 'form');

  const tampered = { ...good, key: 'other/x' };
  const denied = await post(tampered);
  t.equal(denied.status, 403);
  t.match(denied.body.toString(), /<Code>AccessDenied<\/Code>/);

  const badSig = await post({ ...good, 'x-amz-signature': '0'.repeat(64) });
  t.equal(badSig.status, 403);
  t.match(badSig.body.toString(), /SignatureDoesNotMatch/);

  const tooBig = await post(good, Buffer.alloc(2048, 1));
  t.equal(tooBig.status, 400);
  t.match(tooBig.body.toString(), /EntityTooLarge/);
  await t.rejects(s3.send(new GetObjectCommand({ Bucket: 'forms', Key: 'user/upload2.bin' })), { name: 'NoSuchKey' });

  const expired = await post(policyForm('forms', { key: 'user/late' }, [['starts-with', '$key', 'user/']], ROOT_PASSWORD, -1000));
  t.equal(expired.status, 403);

  const extra = await post({ ...policyForm('forms', { key: 'user/extra' }, [['starts-with', '$key', 'user/']]), 'x-amz-meta-sneaky': '1' });
  t.equal(extra.status, 403, 'a field the policy does not cover is refused');

  const anon = await post({ key: 'anon' });
  t.equal(anon.status, 403);
  // the bucket still holds only the one good upload
  await s3.send(new PutObjectCommand({ Bucket: 'forms', Key: 'marker', Body: 'm' }));
});

t.test('--inline-threshold: objects up to it live in the index, larger ones in shard files', async (t) => {
  t.throws(() => buildConfig({ 'inline-threshold': '2048' }, {}), /inline-threshold/, 'more than 1 MiB refused');
  t.throws(() => buildConfig({ 'inline-threshold': '1.5' }, {}), /inline-threshold/, 'fractions of a KiB refused');
  t.equal(buildConfig({}, { KILN_INLINE_THRESHOLD_KIB: '8' }).inlineThreshold, 8192, 'from the environment');
  const srv = await startServer({ overrides: { inlineThreshold: 8 * 1024 } });
  t.teardown(() => srv.close());
  const s3 = srv.client();
  await s3.send(new CreateBucketCommand({ Bucket: 'thr' }));
  for (const [key, size, inline] of [['at', 8192, true], ['above', 8193, false]] as const) {
    const body = Buffer.alloc(size, key.length);
    await s3.send(new PutObjectCommand({ Bucket: 'thr', Key: key, Body: body }));
    const rec = await srv.kiln.store.headObject('thr', key);
    t.equal(rec.parts[0].inline === true, inline, `${size} bytes ${inline ? 'inline' : 'in shard files'}`);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'thr', Key: key }));
    t.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(body), `${size} bytes read back`);
  }
});
