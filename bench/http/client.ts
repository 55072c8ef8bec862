// The load generator's HTTP client. Client and server share the machine, so every microsecond
// the client spends is taken from the server: keep-alive connections on plain sockets (Node's
// http.Agent and ClientRequest cost more CPU per request than a 4 KiB GET costs nginx), one
// request head written with its body in one syscall, responses framed by Content-Length or
// chunked encoding and counted, never kept (unless asked). SigV4 with the signing key derived
// once per day and UNSIGNED-PAYLOAD bodies. The same request shapes go to unsigned servers
// (nginx, the minimal Node servers) with signing off.
import * as net from 'node:net';
import { createHmac } from 'node:crypto';
import { hmacHex, sha256Hex } from '../../server/auth/sigv4';

export interface Credentials { accessKeyId: string; secretAccessKey: string; region: string }

export interface Response { status: number; bytes: number; body?: string }

const EMPTY_SHA256 = sha256Hex('');
const CRLF2 = Buffer.from('\r\n\r\n');

interface Pending { head: boolean; keepBody: boolean; resolve: (r: Response) => void; reject: (e: Error) => void }

/**
 * One keep-alive connection, one request at a time. Response parsing is a small state machine
 * over whatever chunks the socket delivers: the head (status, Content-Length, chunked,
 * Connection: close), then the body by length, by chunks, or until the server closes.
 */
class Conn {
  readonly sock: net.Socket;
  closed = false;
  private cur?: Pending;
  private headBuf: Buffer | undefined;
  private status = 0;
  private bytes = 0;
  private chunks: Buffer[] = [];
  private mode: 'head' | 'length' | 'chunked' | 'close' = 'head';
  private left = 0;               // 'length': body bytes still due; 'chunked': bytes of the current chunk
  private chunkLine = '';         // 'chunked': a chunk-size line (or CRLF / trailer line) read so far
  private chunkState: 'size' | 'data' | 'crlf' | 'trailer' = 'size';
  private closeAfter = false;

  constructor(port: number, private readonly onFree: (c: Conn) => void) {
    this.sock = net.connect({ host: '127.0.0.1', port, noDelay: true });
    this.sock.on('data', (d: Buffer) => this.onData(d));
    this.sock.on('error', (e) => this.fail(e));
    this.sock.on('close', () => {
      if (this.cur && this.mode === 'close') this.done();
      this.fail(new Error('connection closed by the server'));
    });
  }

  send(head: string, body: Buffer | undefined, p: Pending): void {
    this.cur = p;
    this.mode = 'head';
    this.headBuf = undefined;
    this.bytes = 0;
    this.chunks = [];
    this.closeAfter = false;
    this.sock.cork();
    this.sock.write(head, 'latin1');
    if (body && body.length) this.sock.write(body);
    this.sock.uncork();
  }

  private fail(e: Error): void {
    this.closed = true;
    const p = this.cur;
    this.cur = undefined;
    if (!this.sock.destroyed) this.sock.destroy();
    p?.reject(e);
  }

  private onData(d: Buffer): void {
    if (!this.cur) return; // nothing asked: ignore (a server's stray bytes)
    if (this.mode === 'head') {
      const buf = this.headBuf ? Buffer.concat([this.headBuf, d]) : d;
      const end = buf.indexOf(CRLF2);
      if (end < 0) { this.headBuf = buf; return; }
      this.headBuf = undefined;
      this.parseHead(buf.toString('latin1', 0, end));
      d = buf.subarray(end + 4);
      if (this.mode === 'head') { this.done(); return; } // no body
    }
    if (this.mode === 'length') {
      const n = Math.min(d.length, this.left);
      this.take(d.subarray(0, n));
      this.left -= n;
      if (this.left === 0) this.done();
    } else if (this.mode === 'chunked') {
      this.chunked(d);
    } else if (this.mode === 'close') {
      this.take(d);
    }
  }

  private parseHead(head: string): void {
    const lines = head.split('\r\n');
    this.status = Number(lines[0].slice(9, 12));
    let length = -1;
    let chunked = false;
    for (let i = 1; i < lines.length; i++) {
      const l = lines[i];
      const c = l.indexOf(':');
      const name = l.slice(0, c).toLowerCase();
      if (name === 'content-length') length = Number(l.slice(c + 1).trim());
      else if (name === 'transfer-encoding') chunked = /chunked/i.test(l.slice(c + 1));
      else if (name === 'connection') this.closeAfter = /close/i.test(l.slice(c + 1));
    }
    const noBody = this.cur!.head || this.status === 204 || this.status === 304 || (this.status >= 100 && this.status < 200);
    if (noBody) this.mode = 'head';
    else if (chunked) { this.mode = 'chunked'; this.chunkState = 'size'; this.chunkLine = ''; }
    else if (length >= 0) { this.mode = length > 0 ? 'length' : 'head'; this.left = length; }
    else this.mode = 'close';
  }

  private chunked(d: Buffer): void {
    let i = 0;
    while (i < d.length) {
      if (this.chunkState === 'data') {
        const n = Math.min(d.length - i, this.left);
        this.take(d.subarray(i, i + n));
        i += n;
        this.left -= n;
        if (this.left === 0) this.chunkState = 'crlf';
        continue;
      }
      // A line: chunk size, the CRLF after a chunk's data, or a trailer line.
      const nl = d.indexOf(10, i);
      if (nl < 0) { this.chunkLine += d.toString('latin1', i); return; }
      const line = (this.chunkLine + d.toString('latin1', i, nl)).replace(/\r$/, '');
      this.chunkLine = '';
      i = nl + 1;
      if (this.chunkState === 'crlf') { this.chunkState = 'size'; continue; }
      if (this.chunkState === 'trailer') {
        if (line === '') { this.done(); return; }
        continue;
      }
      const size = parseInt(line, 16);
      if (!Number.isFinite(size)) { this.fail(new Error(`bad chunk size '${line}'`)); return; }
      if (size === 0) this.chunkState = 'trailer';
      else { this.chunkState = 'data'; this.left = size; }
    }
  }

  private take(b: Buffer): void {
    this.bytes += b.length;
    if (this.cur!.keepBody) this.chunks.push(Buffer.from(b));
  }

  private done(): void {
    const p = this.cur!;
    this.cur = undefined;
    const r: Response = { status: this.status, bytes: this.bytes, body: p.keepBody ? Buffer.concat(this.chunks).toString('utf8') : undefined };
    this.chunks = [];
    if (this.closeAfter || this.mode === 'close') { this.closed = true; this.sock.destroy(); }
    p.resolve(r);
    if (!this.closed) this.onFree(this);
  }
}

export class LoadClient {
  private readonly host: string;
  private readonly idle: Conn[] = [];
  private readonly all = new Set<Conn>();
  private readonly waiters: ((c: Conn) => void)[] = [];
  private signingDay = '';
  private signingKey: Buffer = Buffer.alloc(0);
  private dateSecond = -1;
  private amzDate = '';

  constructor(readonly port: number, private readonly concurrency: number, private readonly creds?: Credentials) {
    this.host = `127.0.0.1:${port}`;
  }

  close(): void {
    for (const c of this.all) c.sock.destroy();
    this.all.clear();
    this.idle.length = 0;
  }

  /**
   * One request. `path` is already URI-encoded (bench keys are plain ASCII); `query` is the
   * canonical query string (sorted, encoded). Resolves when the whole response has been read.
   */
  async request(method: string, path: string, opts: { query?: string; body?: Buffer; headers?: Record<string, string>; keepBody?: boolean } = {}): Promise<Response> {
    let head = `${method} ${opts.query ? `${path}?${opts.query}` : path} HTTP/1.1\r\nHost: ${this.host}\r\n`;
    if (opts.headers) for (const k in opts.headers) head += `${k}: ${opts.headers[k]}\r\n`;
    if (opts.body || method === 'PUT' || method === 'POST') head += `Content-Length: ${opts.body ? opts.body.length : 0}\r\n`;
    if (this.creds) {
      const s = this.sign(method, path, opts.query ?? '', opts.body ? 'UNSIGNED-PAYLOAD' : EMPTY_SHA256, opts.headers);
      head += `x-amz-date: ${s.amzDate}\r\nx-amz-content-sha256: ${s.payload}\r\nAuthorization: ${s.authorization}\r\n`;
    }
    head += '\r\n';
    const conn = await this.acquire();
    return new Promise<Response>((resolve, reject) => conn.send(head, opts.body, { head: method === 'HEAD', keepBody: !!opts.keepBody, resolve, reject }));
  }

  private acquire(): Promise<Conn> | Conn {
    while (this.idle.length) {
      const c = this.idle.pop()!;
      if (!c.closed) return c;
    }
    for (const c of this.all) if (c.closed) this.all.delete(c);
    if (this.all.size < this.concurrency) {
      const c = new Conn(this.port, (free) => this.release(free));
      this.all.add(c);
      return c;
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(c: Conn): void {
    const w = this.waiters.shift();
    if (w) w(c);
    else this.idle.push(c);
  }

  private sign(method: string, path: string, query: string, payload: string, extra: Record<string, string> = {}): { amzDate: string; payload: string; authorization: string } {
    const { accessKeyId, secretAccessKey, region } = this.creds!;
    const second = Math.floor(Date.now() / 1000);
    if (second !== this.dateSecond) {
      const now = new Date(second * 1000).toISOString();
      this.amzDate = `${now.slice(0, 4)}${now.slice(5, 7)}${now.slice(8, 13)}${now.slice(14, 16)}${now.slice(17, 19)}Z`;
      this.dateSecond = second;
    }
    const amzDate = this.amzDate;
    const day = amzDate.slice(0, 8);
    if (day !== this.signingDay) {
      const h = (k: Buffer | string, s: string) => createHmac('sha256', k).update(s).digest();
      this.signingKey = h(h(h(h(`AWS4${secretAccessKey}`, day), region), 's3'), 'aws4_request');
      this.signingDay = day;
    }
    const signed: [string, string][] = [['host', this.host], ['x-amz-content-sha256', payload], ['x-amz-date', amzDate],
      ...Object.entries(extra).map(([k, v]) => [k.toLowerCase(), v] as [string, string])];
    signed.sort((a, b) => (a[0] < b[0] ? -1 : 1));
    const names = signed.map(([k]) => k).join(';');
    const canonical = `${method}\n${path}\n${query}\n${signed.map(([k, v]) => `${k}:${v}\n`).join('')}\n${names}\n${payload}`;
    const scope = `${day}/${region}/s3/aws4_request`;
    const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`;
    // The server's one-shot HMAC (cached pads): an Hmac object per request was most of the signing cost.
    const signature = hmacHex(this.signingKey, toSign);
    return { amzDate, payload, authorization: `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${scope}, SignedHeaders=${names}, Signature=${signature}` };
  }
}
