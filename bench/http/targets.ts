// The servers a benchmark run compares, each started fresh on 127.0.0.1 with its data under one
// temp dir, and stopped (and its data removed) at the end of the run. Kiln and the S3 peers get
// signed S3 requests; nginx and the minimal Node server get the same paths unsigned.
import { spawn, ChildProcess, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { LoadClient, Credentials } from './client';

export type TargetName = 'kiln' | 'nginx' | 'node-file' | 'node-mem' | 's3rver' | 'moto';

export interface Target {
  name: TargetName;
  port: number;
  pid: number;
  creds?: Credentials;
  /** Serves PUT (nginx here is a read-only file server). */
  canPut: boolean;
  /** Serves ListObjectsV2. */
  canList: boolean;
  /** Put an object's bytes in place before a read scenario (HTTP PUT, or a file for file servers). */
  place(key: string, body: Buffer): Promise<void>;
  stop(): Promise<void>;
}

export const BUCKET = 'bench';
const ROOT = path.resolve(__dirname, '..', '..', '..');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address() as net.AddressInfo;
      s.close(() => resolve(a.port));
    });
    s.on('error', reject);
  });
}

async function waitFor(port: number, child: ChildProcess, name: string, pathToProbe = '/'): Promise<void> {
  const client = new LoadClient(port, 1);
  const deadline = Date.now() + 30_000;
  try {
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
      try {
        await client.request('GET', pathToProbe);
        return;
      } catch { await new Promise((r) => setTimeout(r, 100)); }
    }
    throw new Error(`${name} did not answer on ${port} within 30 s`);
  } finally {
    client.close();
  }
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () => new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => { clearTimeout(t); resolve(); });
    child.kill('SIGTERM');
  });
}

function s3Place(port: number, creds: Credentials): (key: string, body: Buffer) => Promise<void> {
  const client = new LoadClient(port, 4, creds);
  return async (key, body) => {
    const r = await client.request('PUT', `/${BUCKET}/${key}`, { body });
    if (r.status !== 200) throw new Error(`PUT ${key}: HTTP ${r.status}`);
  };
}

async function createBucket(port: number, creds: Credentials): Promise<void> {
  const client = new LoadClient(port, 1, creds);
  const r = await client.request('PUT', `/${BUCKET}`);
  client.close();
  if (r.status !== 200) throw new Error(`create bucket: HTTP ${r.status}`);
}

/**
 * `root`: another built Kiln checkout (A/B runs), `nodeFlags`: for its node process, `kilnArgs`: more `kiln server` flags,
 * `bucketExists`: the drives under `dir` already hold the bench bucket (list-ab.ts restarts servers on one populated set).
 */
export async function startKiln(dir: string, opts: { durability?: 'strict' | 'relaxed'; cpus?: string; workers?: string; root?: string; nodeFlags?: string[]; kilnArgs?: string[]; bucketExists?: boolean } = {}): Promise<Target> {
  const port = await freePort();
  const creds = { accessKeyId: 'benchadmin', secretAccessKey: 'bench-secret-key', region: 'us-east-1' };
  const drives = [1, 2, 3, 4].map((i) => path.join(dir, 'kiln', `d${i}`));
  const args = [...(opts.nodeFlags ?? []), path.join(opts.root ?? ROOT, 'server', 'kiln.cjs'), 'server', '--address', `127.0.0.1:${port}`, '--drives', drives.join(','),
    '--durability', opts.durability ?? 'strict', '--log-level', 'error', '--workers', opts.workers ?? '1', ...(opts.kilnArgs ?? [])];
  // --kiln-cpus pins the server (taskset execs node: the pid stays the server's) for core scaling.
  const [cmd, argv] = opts.cpus ? ['taskset', ['-c', opts.cpus, process.execPath, ...args]] : [process.execPath, args];
  const child = spawn(cmd, argv, {
    env: { ...process.env, KILN_ROOT_USER: creds.accessKeyId, KILN_ROOT_PASSWORD: creds.secretAccessKey }, stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await waitFor(port, child, 'kiln', '/health/ready');
  } catch (e) {
    child.kill('SIGKILL'); // never leave a server behind
    throw e;
  }
  if (!opts.bucketExists) await createBucket(port, creds);
  return { name: 'kiln', port, pid: child.pid!, creds, canPut: true, canList: true, place: s3Place(port, creds), stop: stopper(child) };
}

export function nginxAvailable(): string | undefined {
  for (const p of ['/usr/sbin/nginx', '/usr/bin/nginx']) if (existsSync(p)) return p;
  return undefined;
}

export async function startNginx(dir: string): Promise<Target> {
  const bin = nginxAvailable();
  if (!bin) throw new Error('nginx is not installed (apt-get install -y nginx-light)');
  const port = await freePort();
  const prefix = path.join(dir, 'nginx');
  const root = path.join(prefix, 'root');
  mkdirSync(path.join(root, BUCKET), { recursive: true });
  mkdirSync(path.join(prefix, 'tmp'), { recursive: true });
  const conf = path.join(prefix, 'nginx.conf');
  // A plain static file server: sendfile, keep-alive, one worker per core, nothing logged.
  writeFileSync(conf, `daemon off;
worker_processes auto;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log error;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
  client_body_temp_path ${prefix}/tmp;
  proxy_temp_path ${prefix}/tmp;
  fastcgi_temp_path ${prefix}/tmp;
  uwsgi_temp_path ${prefix}/tmp;
  scgi_temp_path ${prefix}/tmp;
  types { application/octet-stream bin; }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / { }
  }
}
`);
  const child = spawn(bin, ['-p', prefix, '-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitFor(port, child, 'nginx');
  return {
    name: 'nginx', port, pid: child.pid!, canPut: false, canList: false,
    place: async (key, body) => {
      const file = path.join(root, BUCKET, key);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, body);
    },
    stop: stopper(child),
  };
}

/** The minimal Node server: on files (node-file) or, with `memory`, from memory (node-mem). */
export async function startNodeFile(dir: string, memory = false): Promise<Target> {
  const port = await freePort();
  const name = memory ? 'node-mem' : 'node-file';
  const root = path.join(dir, name);
  mkdirSync(path.join(root, BUCKET), { recursive: true });
  const child = spawn(process.execPath, [path.join(__dirname, 'node-file-server.js'), String(port), root, ...(memory ? ['--memory'] : [])], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitFor(port, child, name);
  return {
    name, port, pid: child.pid!, canPut: true, canList: false,
    place: async (key, body) => {
      const file = path.join(root, BUCKET, key);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, body);
    },
    stop: stopper(child),
  };
}

export async function startS3rver(dir: string): Promise<Target> {
  const port = await freePort();
  const creds = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', region: 'us-east-1' };
  const data = path.join(dir, 's3rver');
  mkdirSync(data, { recursive: true });
  const bin = require.resolve('s3rver/bin/s3rver.js', { paths: [ROOT] });
  // s3rver's continuation tokens use a cipher OpenSSL 3 only has in its legacy provider.
  const child = spawn(process.execPath, ['--openssl-legacy-provider', bin, '-d', data, '-a', '127.0.0.1', '-p', String(port), '--silent', '--no-vhost-buckets'], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitFor(port, child, 's3rver');
  await createBucket(port, creds);
  return { name: 's3rver', port, pid: child.pid!, creds, canPut: true, canList: true, place: s3Place(port, creds), stop: stopper(child) };
}

export function motoAvailable(): boolean {
  try {
    execFileSync('python3', ['-c', 'import moto.server'], { stdio: 'ignore' });
    return true;
  } catch { return false; }
}

export async function startMoto(): Promise<Target> {
  const port = await freePort();
  const creds = { accessKeyId: 'testing', secretAccessKey: 'testing', region: 'us-east-1' };
  const child = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'ignore'] });
  await waitFor(port, child, 'moto', '/moto-api/');
  await createBucket(port, creds);
  return { name: 'moto', port, pid: child.pid!, creds, canPut: true, canList: true, place: s3Place(port, creds), stop: stopper(child) };
}
