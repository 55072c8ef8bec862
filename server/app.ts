// The HTTP front: serve() parses the S3 addressing, authenticates, looks the operation up in
// router.ts and writes the handler's reply. Node's http server hands it requests directly;
// POST (forms, parsed by @fastify/multipart) comes through fastify's one catch-all route.
import Fastify, { FastifyInstance, FastifyRequest, LogController } from 'fastify';
import multipartPlugin from '@fastify/multipart';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { pipeline, Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { ObjectStore, Multipart } from '../storage';
import type { IndexClient } from '../storage/index-client';
import type { BlockBody } from '../storage/object-store';
import type { ServerConfig } from './config';
import type { Ctx, Reply } from './context';
import { S3Error, S3_ERRORS, toS3Error } from './errors';
import { errorXml } from './xml';
import { route, Level } from './router';
import { verifySigV4, AuthContext } from './auth/sigv4';
import { Credentials, ANONYMOUS, Identity } from './auth/identity';
import { authorize } from './auth/access';
import { Sessions, sessionAuth } from './auth/session';
import { isSigV2, verifySigV2 } from './auth/sigv2';
import { corsRules, matchRule, corsHeadersFor } from './ops/cors';
import { runLifecycle } from './ops/lifecycle';
import { refuseOnDirectoryBucket, isDirectoryBucket } from './ops/express';
import { Metrics } from './metrics';
import { ADMIN_PREFIX, adminRequest, jsonReply } from './admin';

export interface KilnServer {
  app: FastifyInstance;
  store: ObjectStore;
  credentials: Credentials;
  metrics: Metrics;
  close(): Promise<void>;
}

interface Addressed { bucket: string; key: string; query: Record<string, string> }

/** Split a request into bucket, key and query, path-style or virtual-host-style. */
export function address(rawUrl: string, host: string | undefined, domains: string[]): Addressed {
  const q = rawUrl.indexOf('?');
  const rawPath = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
  const query: Record<string, string> = {};
  if (q >= 0) for (const [k, v] of new URLSearchParams(rawUrl.slice(q + 1))) if (!(k in query)) query[k] = v;
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    throw new S3Error('InvalidURI');
  }
  const hostname = (host ?? '').replace(/:\d+$/, '').toLowerCase();
  for (const d of domains) {
    if (hostname.endsWith(`.${d}`)) {
      return { bucket: hostname.slice(0, -d.length - 1), key: path.replace(/^\//, ''), query };
    }
  }
  const p = path.replace(/^\//, '');
  const slash = p.indexOf('/');
  if (slash < 0) return { bucket: p, key: '', query };
  const bucket = p.slice(0, slash);
  // SDK v3 path-style URLs for directory buckets read /bucket//key (its endpoint URL ends in '/').
  const skip = isDirectoryBucket(bucket) && p[slash + 1] === '/' ? 2 : 1;
  return { bucket, key: p.slice(slash + skip), query };
}

/** OPTIONS preflight: unauthenticated, answered from the bucket's CORS rules. */
async function preflight(ctx: Ctx): Promise<Reply> {
  const origin = ctx.headers.origin;
  const method = ctx.headers['access-control-request-method'];
  if (!ctx.bucket) throw new S3Error('AccessForbidden');
  if (!origin || typeof method !== 'string') throw new S3Error('InvalidRequest', 'Insufficient information. Origin request header needed.');
  const b = await ctx.store.getBucket(ctx.bucket);
  const rules = corsRules(b);
  const reqHeaders = String(ctx.headers['access-control-request-headers'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const rule = rules ? matchRule(rules, origin, method, reqHeaders) : undefined;
  if (!rule) throw new S3Error('AccessForbidden');
  return { status: 200, headers: corsHeadersFor(rule, origin, { method, headers: reqHeaders }) };
}

const DIRECT_METHODS = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

let reqCounter = 0;
const reqPrefix = randomBytes(4).toString('hex').toUpperCase();
function requestId(): string { return `${reqPrefix}${(++reqCounter).toString(16).toUpperCase().padStart(8, '0')}`; }

/**
 * Write a reply. The request id headers go into the one object given to writeHead: headers set
 * earlier with setHeader (CORS) make Node take its slower merging path, so only those do.
 */
function send(res: ServerResponse, id: string, method: string, reply: Reply, onDone: (err?: Error) => void): void {
  const headers: Record<string, string | number> = { 'x-amz-request-id': id, 'x-amz-id-2': id, server: 'Kiln' };
  const given = reply.headers;
  if (given) for (const k in given) { const v = given[k]; if (v !== undefined) headers[k] = v; }
  const body = reply.body;
  if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) {
    const buf = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
    if (!('content-length' in headers)) headers['content-length'] = buf ? buf.length : 0;
    res.writeHead(reply.status ?? 200, headers);
    // 'finish': the whole body is with the OS. A connection that fails first never gives the buffer back.
    if (reply.sent) res.once('finish', reply.sent);
    res.end(method === 'HEAD' ? undefined : buf, () => onDone());
    return;
  }
  res.writeHead(reply.status ?? 200, headers);
  if (!(body instanceof Readable)) {
    if (method === 'HEAD') { void body.close(); res.end(() => onDone()); return; }
    void writeBlocks(res, body, onDone);
    return;
  }
  if (method === 'HEAD') { body.destroy(); res.end(() => onDone()); return; }
  pipeline(body, res, (err) => onDone(err ?? undefined));
}

/**
 * What `pipeline` does for a stream, for a body whose chunks go back to a pool: each chunk is
 * recycled from its write callback, called once libuv is done with the bytes (written, or the
 * write cancelled by a closed connection); a chunk whose callback never comes is simply never
 * reused. One chunk in flight past the socket's high-water mark, as with `pipeline`.
 */
async function writeBlocks(res: ServerResponse, body: BlockBody, onDone: (err?: Error) => void): Promise<void> {
  let err: Error | undefined;
  try {
    for (let chunk = await body.next(); chunk; chunk = await body.next()) {
      const c = chunk;
      if (res.destroyed) { body.recycle(c); break; }
      if (!res.write(c, () => body.recycle(c))) await drainedOrClosed(res);
    }
  } catch (e) {
    err = e as Error;
  }
  // Shard files closed and the data unpinned before the reply counts as done.
  await body.close().catch(() => undefined);
  if (err) { res.destroy(err); onDone(err); return; }
  if (res.destroyed) { onDone(new Error('the client closed the connection before the end of the body')); return; }
  res.end(() => onDone());
}

function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => { res.off('drain', done); res.off('close', done); resolve(); };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * Background work on the index: expiry of stale multipart uploads and lifecycle passes. Runs in
 * the one process that owns the index (never in HTTP worker processes). Returns its stop.
 */
export function startBackground(store: ObjectStore, mp: Multipart, config: ServerConfig, log: { warn(o: object, m: string): void }): () => void {
  const expiry = setInterval(() => {
    void mp.expire(Date.now() - config.uploadExpiryMs).catch(() => undefined);
  }, 3600_000);
  expiry.unref();
  // Lifecycle expiration: a pass every tenth of a "day" (at most hourly), one pass at a time.
  let lifecycleRunning = false;
  const lifecycleTimer = setInterval(() => {
    if (lifecycleRunning) return;
    lifecycleRunning = true;
    runLifecycle(store, mp, config.lifecycleDayMs)
      .catch((e) => log.warn({ error: (e as Error).message }, 'lifecycle pass failed'))
      .finally(() => { lifecycleRunning = false; });
  }, Math.max(1000, Math.min(3600_000, config.lifecycleDayMs / 10)));
  lifecycleTimer.unref();
  return () => { clearInterval(expiry); clearInterval(lifecycleTimer); };
}

/**
 * The S3 server. `remote`: this is an HTTP worker process (`--workers N`), whose store reaches
 * the index owner (the primary process) through that client.
 */
export async function createServer(config: ServerConfig, opts: { logger?: boolean; remote?: IndexClient } = {}): Promise<KilnServer> {
  let closing = false;
  let direct: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const https = config.tlsCert && config.tlsKey ? { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) } : undefined;
  const app = Fastify({
    logger: opts.logger === false ? false : { level: config.logLevel },
    // Kiln writes one log line per request itself (with the S3 operation), at debug level.
    logController: new LogController({ disableRequestLogging: true }),
    // Kiln's log lines name the request id themselves: no pino child logger built per request.
    childLoggerFactory: (logger: unknown) => logger,
    exposeHeadRoutes: false,
    return503OnClosing: true,
    routerOptions: { maxParamLength: 4096 },
    genReqId: requestId,
    // Every request but POST (whose form fastify's multipart plugin parses) and methods S3 does not
    // serve goes straight to serve(): fastify's routing, hooks and request objects were ~8 % of a
    // 4 KiB GET. While closing, fastify answers (503, return503OnClosing).
    serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
      const dispatch = (req: IncomingMessage, res: ServerResponse) => {
        if (closing || !direct || !DIRECT_METHODS.has(req.method ?? '')) handler(req, res);
        else direct(req, res);
      };
      const server = https ? createHttpsServer(https, dispatch) : createHttpServer(dispatch);
      server.keepAliveTimeout = 75_000;
      server.requestTimeout = 0;
      return server;
    },
    // The router's own refusals (a path that is not valid percent-encoded UTF-8) answer in S3 error XML too.
    frameworkErrors: (err: { code?: string }, request: { id: unknown; url: string }, reply: { code(n: number): typeof reply; header(k: string, v: string): typeof reply; send(b: string): void }) => {
      const id = String(request.id);
      const code = err.code === 'FST_ERR_BAD_URL' ? 'InvalidURI' : 'InvalidRequest';
      reply.code(400).header('x-amz-request-id', id).header('x-amz-id-2', id).header('server', 'Kiln').header('content-type', 'application/xml')
        .send(errorXml(code, S3_ERRORS[code].message, request.url.split('?')[0], id));
    },
    ...(https ? { https } : {}),
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
  } as any) as unknown as FastifyInstance;
  const storeOpts = {
    drives: config.drives, parity: config.parity, durable: config.durable, inlineThreshold: config.inlineThreshold,
    log: (msg: string, extra?: object, level?: 'info' | 'warn') => app.log[level ?? 'warn']({ ...extra }, msg),
  };
  const remote = opts.remote;
  const store = remote ? await ObjectStore.connect(storeOpts, remote) : await ObjectStore.open(storeOpts);
  const mp = new Multipart(store, config.minPartSize);
  const credentials = new Credentials(store, config.rootUser, config.rootPassword);
  const sessions = sessionAuth(store);
  const metrics = new Metrics(store, !remote);
  if (remote) remote.metrics = () => metrics.registry.getMetricsAsJSON();

  // Without a listener Node answers "100 Continue" before Kiln has looked at the request.
  app.server.on('checkContinue', (req, res) => app.server.emit('request', req, res));
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
  await app.register(multipartPlugin, { limits: { fileSize: config.maxObjectSize, fields: 100, fieldSize: 1024 * 1024 } });

  const debug = opts.logger !== false && (config.logLevel === 'debug' || config.logLevel === 'trace');
  const unsigned = (raw: IncomingMessage) => !raw.headers.authorization && !(raw.url ?? '').includes('X-Amz-Signature');

  /** One S3 request, start to end; `request` (fastify's) only for POST, whose form fastify parses. */
  const serve = async (raw: IncomingMessage, res: ServerResponse, id: string, request?: FastifyRequest): Promise<void> => {
    const started = process.hrtime.bigint();
    const log = app.log;
    const rawUrl = raw.url ?? '/';
    const pathOnly = rawUrl.split('?')[0];

    if (unsigned(raw) && (raw.method === 'GET' || raw.method === 'HEAD')) {
      if (pathOnly === '/health/live') return send(res, id, raw.method, { status: 200, body: 'OK\n' }, () => undefined);
      if (pathOnly === '/health/ready') {
        const ready = store.set.canWrite && store.index.online >= store.set.writeQuorum;
        return send(res, id, raw.method, { status: ready ? 200 : 503, body: ready ? 'OK\n' : 'write quorum lost\n' }, () => undefined);
      }
      if (pathOnly === '/metrics') {
        // A worker's counters are its own: the owner sums every process's (and adds drives, heal).
        const text = remote ? await remote.call<string>('metrics') : await metrics.registry.metrics();
        return send(res, id, raw.method, { status: 200, headers: { 'content-type': metrics.registry.contentType }, body: text }, () => undefined);
      }
    }

    let op = 'Unknown';
    let resource = pathOnly;
    const ctx = { id, method: raw.method ?? 'GET', raw, headers: raw.headers, store, mp, config, bytesIn: 0, log, request,
      identitySecret: credentials.secretFor, identityFor: (ak: string) => credentials.identity(ak) } as unknown as Ctx;
    const finish = (status: number, bytesOut: number) => {
      const secs = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.record(op, status, secs, ctx.bytesIn, bytesOut);
      if (debug) log.debug({ reqId: id, op, status, ms: Math.round(secs * 1e4) / 10, bytesIn: ctx.bytesIn, bytesOut }, 'request');
    };
    const fail = (e: unknown) => {
      const err = toS3Error(e);
      if (err.code === 'InternalError') log.error({ reqId: id, op, err: e }, 'internal error');
      else if (err.status >= 500) log.warn({ reqId: id, op, error: (e as Error).message }, 'storage degraded');
      const headers: Record<string, string> = { ...err.headers };
      if (err.code === 'NotModified' || ctx.method === 'HEAD') {
        // 304 and HEAD carry no body; the status and headers say it all.
        if (!res.headersSent) send(res, id, 'HEAD', { status: err.status, headers }, () => finish(err.status, 0));
        else res.destroy();
        return;
      }
      if (res.headersSent) { res.destroy(); finish(err.status, 0); return; }
      // As on S3, NoSuchBucket and NoSuchKey name what is missing (not on copies: it may be the source).
      const named: Record<string, string> = raw.headers['x-amz-copy-source'] !== undefined ? {}
        : err.code === 'NoSuchBucket' && ctx.bucket ? { BucketName: ctx.bucket } : err.code === 'NoSuchKey' && ctx.key ? { Key: ctx.key } : {};
      const body = errorXml(err.code, err.message, resource, id, { ...named, ...err.extra });
      // A refused upload's body is not read; close the connection rather than drain gigabytes.
      if (!raw.complete && (ctx.method === 'PUT' || ctx.method === 'POST')) headers.connection = 'close';
      send(res, id, ctx.method, { status: err.status, headers: { ...headers, 'content-type': 'application/xml' }, body }, () => finish(err.status, 0));
    };

    try {
      const a = pathOnly.startsWith(ADMIN_PREFIX) ? { bucket: '', key: '', query: {} } : address(rawUrl, raw.headers.host, config.domains);
      ctx.bucket = a.bucket;
      ctx.key = a.key;
      ctx.query = a.query;
      resource = a.bucket ? `/${a.bucket}${a.key ? `/${a.key}` : ''}` : '/';
      if (ctx.method === 'OPTIONS') {
        op = 'PreflightCors';
        const out = await preflight(ctx);
        send(res, id, 'OPTIONS', out, () => finish(out.status ?? 200, 0));
        return;
      }
      const origin = raw.headers.origin;
      if (origin && a.bucket) {
        // CORS headers are decided before the operation so errors carry them too.
        const b = await store.getBucket(a.bucket).catch(() => undefined);
        const acrm = raw.headers['access-control-request-method'];
        const method = typeof acrm === 'string' && acrm ? acrm : ctx.method;
        const rule = b && corsRules(b) ? matchRule(corsRules(b)!, origin, method) : undefined;
        if (rule) for (const [k, v] of Object.entries(corsHeadersFor(rule, origin, undefined))) res.setHeader(k, v);
      }
      const authInput = { method: ctx.method, url: rawUrl, headers: raw.headers, rawHeaders: raw.rawHeaders };
      const vhost = !rawUrl.startsWith(`/${a.bucket}`) && a.bucket ? `/${a.bucket}` : '';
      const auth: AuthContext = isSigV2(authInput)
        ? await verifySigV2(authInput, credentials.secretFor, vhost)
        : await verifySigV4(authInput, sessions.lookup(raw.headers, rawUrl, credentials.secretFor));
      ctx.auth = auth;
      // S3 Express session credentials act as the key that opened the session.
      const identity: Identity = auth.anonymous ? ANONYMOUS : await sessions.identity(ctx, auth, credentials);
      ctx.identity = identity;
      if (pathOnly.startsWith(ADMIN_PREFIX)) {
        op = 'Admin';
        const out = jsonReply(await adminRequest(ctx, credentials, pathOnly));
        send(res, id, ctx.method, out, () => finish(out.status ?? 200, 0));
        return;
      }
      const level: Level = !a.bucket ? 'service' : !a.key ? 'bucket' : 'object';
      const isForm = (raw.headers['content-type'] ?? '').toLowerCase().startsWith('multipart/form-data');
      const r = route({ method: ctx.method, level, query: a.query, hasCopySource: raw.headers['x-amz-copy-source'] !== undefined, isForm });
      if (r.op === 'NotImplemented') {
        op = 'NotImplemented';
        throw new S3Error('NotImplemented', r.sub ? `The ?${r.sub} sub-resource is not implemented` : `${ctx.method} on this resource is not implemented`);
      }
      const row = r as Exclude<typeof r, { op: 'NotImplemented' }>;
      op = row.op;
      // POST object carries its own signature (the form policy) and checks it itself.
      refuseOnDirectoryBucket(ctx, row.op);
      Sessions.checkOperation(ctx, row.op);
      if (row.op !== 'PostObject') await authorize(ctx, row);
      // Expect: 100-continue is answered only now, so a refused upload never sends its body.
      if ((raw.headers.expect ?? '').toLowerCase() === '100-continue') res.writeContinue();
      const out = await row.handler(ctx);
      send(res, id, ctx.method, out, (err) => {
        if (err) log.warn({ reqId: id, op, error: err.message }, 'response stream ended early');
        finish(out.status ?? 200, err ? 0 : out.bytesOut ?? (typeof out.body === 'string' ? Buffer.byteLength(out.body) : Buffer.isBuffer(out.body) ? out.body.length : 0));
      });
    } catch (e) {
      fail(e);
    }
  };
  app.route({
    method: ['GET', 'PUT', 'POST', 'DELETE', 'HEAD', 'OPTIONS'],
    url: '/*',
    handler: async (request, reply) => {
      reply.hijack();
      await serve(request.raw, reply.raw, String(request.id), request);
    },
  });
  direct = (req, res) => {
    serve(req, res, requestId()).catch((e: unknown) => {
      app.log.error({ err: e }, 'request failed outside its handler');
      res.destroy();
    });
  };

  app.setNotFoundHandler((request, reply) => {
    // Only methods S3 has no use for (PATCH, TRACE, ...) or a URL that is not a path end up here.
    const served = ['GET', 'PUT', 'POST', 'DELETE', 'HEAD', 'OPTIONS'].includes(request.method);
    const [code, message] = served ? ['InvalidRequest', 'Invalid request'] : ['MethodNotAllowed', S3_ERRORS.MethodNotAllowed.message];
    reply.code(served ? 400 : 405).header('x-amz-request-id', String(request.id)).header('x-amz-id-2', String(request.id)).header('server', 'Kiln')
      .header('content-type', 'application/xml').send(errorXml(code, message, request.url, String(request.id), served ? {} : { Method: request.method }));
  });

  const stopBackground = remote ? () => undefined : startBackground(store, mp, config, app.log);

  return {
    app, store, credentials, metrics,
    async close() {
      stopBackground();
      closing = true;
      await app.close();
      await store.close();
    },
  };
}
