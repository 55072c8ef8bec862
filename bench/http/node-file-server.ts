// The Node ceilings for the HTTP benchmarks: the least a Node server can do for the same
// requests. GET streams a file with createReadStream (honouring one "bytes=a-b" range); PUT writes
// the body to one file and fsyncs it before answering; GET with ?list-type is not served.
// With --memory (target node-mem) GET serves each object from a Map (read from its file once) and
// PUT reads the body and keeps nothing: no file system, no fsync, no auth, nothing a storage
// server must do. Node's own HTTP layer is then the whole cost: the ceiling for any Node server.
// Usage: node dist/bench/http/node-file-server.js PORT ROOT [--memory]
import * as http from 'node:http';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';

const [port, root] = [Number(process.argv[2]), path.resolve(process.argv[3])];
const MEMORY = process.argv.includes('--memory');
const memory = new Map<string, Buffer>();

function fileOf(url: string): string {
  const p = path.join(root, decodeURIComponent(url.split('?')[0]));
  if (!p.startsWith(root + path.sep)) throw new Error('outside root');
  return p;
}

function rangeOf(req: http.IncomingMessage, size: number): { partial: boolean; start: number; end: number } {
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  return { partial: !!m, start: m ? Number(m[1]) : 0, end: m ? Math.min(Number(m[2]), size - 1) : size - 1 };
}

async function get(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const file = fileOf(req.url ?? '/');
  if (MEMORY) {
    // Objects placed as files by the run are loaded once, then served from memory.
    let body = memory.get(file);
    if (!body) memory.set(file, body = await fsp.readFile(file));
    const { partial, start, end } = rangeOf(req, body.length);
    res.writeHead(partial ? 206 : 200, { 'content-length': end - start + 1, 'content-type': 'application/octet-stream' });
    res.end(body.subarray(start, end + 1));
    return;
  }
  const st = await fsp.stat(file);
  if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
  const { partial, start, end } = rangeOf(req, st.size);
  res.writeHead(partial ? 206 : 200, { 'content-length': end - start + 1, 'content-type': 'application/octet-stream' });
  const stream = createReadStream(file, { start, end, highWaterMark: 1024 * 1024 });
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

async function put(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const file = fileOf(req.url ?? '/');
  if (MEMORY) {
    for await (const chunk of req) void chunk;
  } else {
    await fsp.mkdir(path.dirname(file), { recursive: true });
    const fh = await fsp.open(file, 'w');
    try {
      for await (const chunk of req) await fh.write(chunk as Buffer);
      await fh.sync();
    } finally {
      await fh.close();
    }
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
