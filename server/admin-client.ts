// The client half of the admin API: a SigV4-signed JSON request with the root credentials.
import aws4 from 'aws4';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { DEFAULT_ROOT_USER, DEFAULT_ROOT_PASSWORD } from './config';

export function adminCall(endpoint: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const url = new URL(`/_kiln/admin/${path}`, endpoint);
  const payload = body === undefined ? '' : JSON.stringify(body);
  const opts = aws4.sign({
    host: url.host, path: url.pathname, method, service: 's3', region: process.env.KILN_REGION ?? 'us-east-1', body: payload,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
  }, { accessKeyId: process.env.KILN_ROOT_USER ?? DEFAULT_ROOT_USER, secretAccessKey: process.env.KILN_ROOT_PASSWORD ?? DEFAULT_ROOT_PASSWORD });
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send({ hostname: url.hostname, port: url.port, path: url.pathname, method, headers: opts.headers as Record<string, string> }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 500) >= 300) { reject(new Error(`HTTP ${res.statusCode}: ${text}`)); return; }
        try { resolve(JSON.parse(text)); } catch { resolve(text); }
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}
