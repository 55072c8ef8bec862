// Shared bits of the SDK-level integration tests: S3 error assertions, raw signed HTTP
// requests (aws4) for the cases where a test must control every byte, deterministic bodies.
import * as http from 'node:http';
import * as net from 'node:net';
import { createHash } from 'node:crypto';
import aws4 from 'aws4';
import { ROOT_PASSWORD, ROOT_USER, TestServer } from './server';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Tap = any;

export const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
export const md5b64 = (b: Buffer | string): string => createHash('md5').update(b).digest('base64');

/** What an SDK v3 service exception carries that the tests look at. */
export interface SdkError { name?: string; Code?: string; message?: string; $metadata?: { httpStatusCode?: number } }

/** Awaits `p`, which must fail with S3 error `code` and HTTP `status`; returns the error. */
export async function expectS3Error(t: Tap, p: Promise<unknown>, code: string, status: number, what = ''): Promise<SdkError | undefined> {
  try {
    await p;
  } catch (e) {
    const err = e as SdkError;
    t.equal(err.name, code, `${what} → ${code} (got ${err.name}: ${err.message})`);
    t.equal(err.$metadata?.httpStatusCode, status, `${what} → HTTP ${status}`);
    return err;
  }
  t.fail(`${what}: expected ${code} (${status}), but the request succeeded`);
  return undefined;
}

/**
 * Deterministic pseudo-random bytes from a seed (xorshift32), fast enough for 100 MiB bodies.
 * The same (n, seed) always gives the same bytes.
 */
export function seeded(n: number, seed: number): Buffer {
  const words = Math.ceil(n / 4);
  const out = Buffer.allocUnsafe(words * 4);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < words; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    out.writeUInt32LE(s, i * 4);
  }
  return out.subarray(0, n);
}

export interface RawResponse { status: number; headers: http.IncomingHttpHeaders; body: Buffer; text: string }

export interface RawOptions {
  method?: string;
  /** path + query, already percent-encoded as it goes on the wire */
  path: string;
  headers?: Record<string, string | number>;
  body?: Buffer | string;
  /** false: send unsigned; otherwise sign (header auth) with these credentials (root by default) */
  sign?: false | { accessKeyId: string; secretAccessKey: string };
  /** sign the query string instead (presigned URL) */
  presign?: boolean;
}

/** Sends bytes exactly as given over node's http module. */
export function send(srv: TestServer, o: { method: string; path: string; headers?: Record<string, string | number>; body?: Buffer | string }): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.port, method: o.method, path: o.path, headers: o.headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const body = Buffer.concat(parts);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (o.body !== undefined) req.end(o.body); else req.end();
  });
}

/** Signs a request with aws4 (SigV4, service s3, us-east-1) and returns what to send. */
export function signed(srv: TestServer, o: RawOptions): { method: string; path: string; headers: Record<string, string | number>; body?: Buffer | string } {
  const method = o.method ?? 'GET';
  const headers: Record<string, string | number> = { ...(o.headers ?? {}) };
  if (o.sign === false) return { method, path: o.path, headers, body: o.body };
  const creds = o.sign ?? { accessKeyId: ROOT_USER, secretAccessKey: ROOT_PASSWORD };
  const req = aws4.sign({
    host: `127.0.0.1:${srv.port}`, method, path: o.path, headers, body: o.body, service: 's3', region: 'us-east-1',
    signQuery: o.presign, doNotModifyHeaders: false,
  } as aws4.Request, creds);
  return { method, path: req.path!, headers: req.headers as Record<string, string | number>, body: o.body };
}

/** A signed (unless sign: false) raw request. */
export function raw(srv: TestServer, o: RawOptions): Promise<RawResponse> {
  return send(srv, signed(srv, o));
}

/** The text of element `name` in an XML document (first occurrence), or undefined. */
export function xmlText(doc: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(doc);
  return m ? m[1] : undefined;
}

/** Checks that a response is an S3 error document with the given code. */
export function assertErrorXml(t: Tap, r: RawResponse, code: string, status: number, what = ''): void {
  t.equal(r.status, status, `${what}: HTTP ${status} (body: ${r.text.slice(0, 300)})`);
  t.match(String(r.headers['content-type']), /xml/, `${what}: XML content type`);
  t.match(r.text, /^<\?xml version="1.0" encoding="UTF-8"\?>\s*<Error>/, `${what}: an <Error> document`);
  t.equal(xmlText(r.text, 'Code'), code, `${what}: Code ${code}`);
  t.ok(xmlText(r.text, 'Message'), `${what}: has Message`);
  t.ok(xmlText(r.text, 'Resource') !== undefined, `${what}: has Resource`);
  t.ok(xmlText(r.text, 'RequestId'), `${what}: has RequestId`);
  t.ok(r.headers['x-amz-request-id'], `${what}: x-amz-request-id header`);
  t.equal(xmlText(r.text, 'RequestId'), r.headers['x-amz-request-id'], `${what}: RequestId matches the header`);
}

/**
 * Several signed GETs sent on one connection that reads nothing: the kernel takes the first
 * replies, the rest wait in the server (in the very buffers it recycles). `resume` then reads
 * and returns each reply's body in order (head, then Content-Length bytes), bounded in checks.
 */
export async function stalledGets(srv: TestServer, gets: RawOptions[]): Promise<{ resume(): Promise<Buffer[]> }> {
  const sock = net.connect(srv.port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  sock.pause();
  const received: Buffer[] = [];
  sock.on('data', (c: Buffer) => received.push(c));
  for (const g of gets) {
    const r = signed(srv, g);
    sock.write(`GET ${r.path} HTTP/1.1\r\n${Object.entries(r.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
  }
  return {
    async resume() {
      sock.resume();
      const replies: Buffer[] = [];
      for (let checks = 0; replies.length < gets.length && checks < 4000; checks++) {
        const all = Buffer.concat(received);
        let at = 0;
        replies.length = 0;
        for (;;) {
          const headEnd = all.indexOf('\r\n\r\n', at);
          if (headEnd < 0) break;
          const len = Number(/content-length: (\d+)/i.exec(all.toString('latin1', at, headEnd))?.[1] ?? -1);
          if (len < 0 || headEnd + 4 + len > all.length) break;
          replies.push(all.subarray(headEnd + 4, headEnd + 4 + len));
          at = headEnd + 4 + len;
        }
        if (replies.length < gets.length) await new Promise((r) => setTimeout(r, 5));
      }
      sock.destroy();
      return replies;
    },
  };
}
