// The Node ceiling for the HTTP benchmarks: the least a Node server can do for the same
// requests. GET streams a file with createReadStream (honouring one "bytes=a-b" range); PUT writes
// the body to one file and fsyncs it before answering; GET with ?list-type is not served.
// Usage: node dist/bench/http/node-file-server.js PORT ROOT
import * as http from 'node:http';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';

const [port, root] = [Number(process.argv[2]), path.resolve(process.argv[3])];

function fileOf(url: string): string {
  const p = path.join(root, decodeURIComponent(url.split('?')[0]));
  if (!p.startsWith(root + path.sep)) throw new Error('outside root');
  return p;
}

async function get(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const file = fileOf(req.url ?? '/');
  const st = await fsp.stat(file);
  if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
  const size = st.size;
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  const start = m ? Number(m[1]) : 0;
  const end = m ? Math.min(Number(m[2]), size - 1) : size - 1;
  res.writeHead(m ? 206 : 200, { 'content-length': end - start + 1, 'content-type': 'application/octet-stream' });
  const stream = createReadStream(file, { start, end, highWaterMark: 1024 * 1024 });
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

async function put(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const file = fileOf(req.url ?? '/');
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const fh = await fsp.open(file, 'w');
  try {
    for await (const chunk of req) await fh.write(chunk as Buffer);
    await fh.sync();
  } finally {
    await fh.close();
  }
  res.writeHead(200, { 'content-length': 0 });
  res.end();
}

http.createServer((req, res) => {
  const done = req.method === 'PUT' ? put(req, res) : get(req, res);
  done.catch((e: NodeJS.ErrnoException) => {
    if (!res.headersSent) res.writeHead(e.code === 'ENOENT' ? 404 : 500, { 'content-length': 0 });
    res.end();
  });
}).listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
