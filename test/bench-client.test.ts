// The bench's raw-socket HTTP client frames responses itself: Content-Length, chunked (split at
// every possible byte), HEAD and 204 without bodies, Connection: close and bodies that end with
// the connection. A server here answers in each of those ways; the client must count every
// byte, keep connections alive where allowed and never mix one response into the next.
import t from 'tap';
import * as http from 'node:http';
import * as net from 'node:net';
import { AddressInfo } from 'node:net';
import { LoadClient } from '../bench/http/client';

t.test('framing: length, chunked, no body, close', async (t) => {
  let connections = 0;
  const body = Buffer.alloc(10_000, 'x');
  const server = http.createServer((req, res) => {
    const u = req.url ?? '';
    if (u === '/len') { res.writeHead(200, { 'content-length': body.length }); res.end(body); return; }
    if (u === '/chunked') {
      res.writeHead(200, { 'content-type': 'text/plain' }); // no length: Node sends chunked
      let i = 0;
      const step = () => { if (i >= 5) { res.end('tail'); return; } res.write(`part${i++}-`); setImmediate(step); };
      step();
      return;
    }
    if (u === '/204') { res.writeHead(204); res.end(); return; }
    if (u === '/close') { res.writeHead(200, { 'content-length': 5, connection: 'close' }); res.end('close'); return; }
    if (u === '/put') { let n = 0; req.on('data', (d: Buffer) => { n += d.length; }); req.on('end', () => res.end(String(n))); return; }
    res.writeHead(404, { 'content-length': 0 }); res.end();
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  const c = new LoadClient(port, 2);
  t.teardown(() => c.close());

  for (let i = 0; i < 3; i++) t.same(await c.request('GET', '/len'), { status: 200, bytes: body.length, body: undefined });
  const ch = await c.request('GET', '/chunked', { keepBody: true });
  t.equal(ch.body, 'part0-part1-part2-part3-part4-tail', 'chunked body reassembled');
  t.equal((await c.request('HEAD', '/len')).bytes, 0, 'HEAD: length announced, no body read');
  t.equal((await c.request('GET', '/len')).bytes, body.length, 'the next response is read whole after a HEAD');
  t.same(await c.request('GET', '/204'), { status: 204, bytes: 0, body: undefined });
  t.equal((await c.request('PUT', '/put', { body: Buffer.alloc(3000, 1), keepBody: true })).body, '3000', 'a PUT body arrives whole');
  t.equal((await c.request('GET', '/nope')).status, 404);
  const before = connections;
  t.equal((await c.request('GET', '/close', { keepBody: true })).body, 'close');
  t.equal((await c.request('GET', '/len')).bytes, body.length, 'after Connection: close, a new connection');
  t.equal(connections, before + 1, 'exactly one new connection');
  // Sixteen at once over two connections: each gets its own response.
  const many = await Promise.all(Array.from({ length: 16 }, (_, i) => c.request('GET', i % 2 ? '/len' : '/chunked')));
  t.ok(many.every((r, i) => r.bytes === (i % 2 ? body.length : 34)), 'concurrent requests queue for the two connections');
});

t.test('chunked framing split at every byte, and a body ending with the connection', async (t) => {
  const raw = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: y\r\n\r\n';
  const server = net.createServer((s) => {
    s.on('data', (d) => {
      const path = d.toString('latin1').split(' ')[1];
      if (path === '/eof') { s.end('HTTP/1.1 200 OK\r\n\r\nuntil-close'); return; }
      // One byte per write: every parser boundary is crossed.
      let i = 0;
      const step = () => { if (i < raw.length) { s.write(raw[i++]); setImmediate(step); } };
      step();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const c = new LoadClient((server.address() as AddressInfo).port, 1);
  t.teardown(() => c.close());
  t.equal((await c.request('GET', '/a', { keepBody: true })).body, 'hello world');
  t.equal((await c.request('GET', '/b', { keepBody: true })).body, 'hello world', 'and again on the same connection');
  t.equal((await c.request('GET', '/eof', { keepBody: true })).body, 'until-close');
  await t.rejects(new LoadClient(1, 1).request('GET', '/'), 'a refused connection rejects');
});
