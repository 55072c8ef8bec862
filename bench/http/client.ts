// The load generator's HTTP client. Client and server share the machine, so every microsecond
// the client spends is taken from the server: one keep-alive agent, SigV4 with the signing key
// derived once per day, UNSIGNED-PAYLOAD bodies, one body buffer reused by every PUT, and
// response bytes counted, never kept. The same request shapes go to unsigned servers (nginx,
// the minimal Node servers) with signing off.
import * as http from 'node:http';
import { createHash } from 'node:crypto';
import { formatAmzDate, hmacHex, sha256Hex, signingKeyFor } from '../../server/auth/sigv4';

export interface Credentials { accessKeyId: string; secretAccessKey: string; region: string }

export interface Response { status: number; bytes: number; body?: string }

const EMPTY_SHA256 = createHash('sha256').digest('hex');

export class LoadClient {
  private readonly agent: http.Agent;
  private readonly host: string;
  private dateSecond = -1;
  private amzDate = '';

  constructor(readonly port: number, concurrency: number, private readonly creds?: Credentials) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
    this.host = `127.0.0.1:${port}`;
  }

  close(): void { this.agent.destroy(); }

  /**
   * One request. `path` is already URI-encoded (bench keys are plain ASCII); `query` is the
   * canonical query string (sorted, encoded). Resolves when the whole response has been read.
   */
  request(method: string, path: string, opts: { query?: string; body?: Buffer; headers?: Record<string, string>; keepBody?: boolean } = {}): Promise<Response> {
    const headers: Record<string, string | number> = { ...opts.headers };
    if (opts.body) headers['content-length'] = opts.body.length;
    if (this.creds) Object.assign(headers, this.sign(method, path, opts.query ?? '', opts.body ? 'UNSIGNED-PAYLOAD' : EMPTY_SHA256, opts.headers));
    return new Promise((resolve, reject) => {
      const req = http.request({ agent: this.agent, host: '127.0.0.1', port: this.port, method, path: opts.query ? `${path}?${opts.query}` : path, headers }, (res) => {
        let bytes = 0;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => { bytes += c.length; if (opts.keepBody) chunks.push(c); });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, body: opts.keepBody ? Buffer.concat(chunks).toString('utf8') : undefined }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(opts.body);
    });
  }

  private sign(method: string, path: string, query: string, payload: string, extra: Record<string, string> = {}): Record<string, string> {
    const { accessKeyId, secretAccessKey, region } = this.creds!;
    const second = Math.floor(Date.now() / 1000);
    if (second !== this.dateSecond) {
      this.amzDate = formatAmzDate(new Date(second * 1000));
      this.dateSecond = second;
    }
    const amzDate = this.amzDate;
    const day = amzDate.slice(0, 8);
    const signed: [string, string][] = [['host', this.host], ['x-amz-content-sha256', payload], ['x-amz-date', amzDate],
      ...Object.entries(extra).map(([k, v]) => [k.toLowerCase(), v] as [string, string])];
    signed.sort((a, b) => (a[0] < b[0] ? -1 : 1));
    const names = signed.map(([k]) => k).join(';');
    const canonical = `${method}\n${path}\n${query}\n${signed.map(([k, v]) => `${k}:${v}\n`).join('')}\n${names}\n${payload}`;
    const scope = `${day}/${region}/s3/aws4_request`;
    const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`;
    // The server's one-shot HMAC (cached pads): an Hmac object per request was most of the signing cost.
    const signature = hmacHex(signingKeyFor(secretAccessKey, day, region, 's3'), toSign);
    return {
      'x-amz-date': amzDate, 'x-amz-content-sha256': payload,
      authorization: `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${scope}, SignedHeaders=${names}, Signature=${signature}`,
    };
  }
}
