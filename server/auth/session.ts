// S3 Express One Zone session auth for directory buckets. CreateSession (GET /bucket?session,
// signed with an access key) hands out short-lived credentials for ONE bucket; later requests
// are signed with the session key pair and carry the session token.
//
// Stateless: nothing per session is stored. The token is the session's own description
// (access key id, parent key, bucket, mode, expiry) with an HMAC by a server secret, and the
// session's secret key is derived from the server secret and the session access key id. The
// server secret is created once and kept in the index, so sessions survive a restart.
import { createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { ObjectStore, KvArea } from '../../storage';
import { S3Error } from '../errors';
import type { Ctx, Reply } from '../context';
import { header, xmlReply } from '../context';
import { x, xmlDoc } from '../xml';
import type { Route } from '../router';
import type { AuthContext, SecretLookup } from './sigv4';
import type { Credentials, Identity } from './identity';
import { authorize } from './access';

export type SessionMode = 'ReadWrite' | 'ReadOnly';

export interface SessionClaims {
  /** the session access key id */
  ak: string;
  /** the access key that created the session; requests act as this key */
  parent: string;
  bucket: string;
  mode: SessionMode;
  /** expiry, ms since the epoch */
  exp: number;
}

export interface SessionCredentials { accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: Date }

/** AWS gives S3 Express sessions five minutes. */
export const SESSION_VALIDITY_MS = 5 * 60 * 1000;
const SECRET_AREA = 'server-secrets';
const SECRET_ID = 'session-hmac';
const TOKEN_HEADER = 'x-amz-s3session-token';
const TOKEN_QUERY = 'x-amz-s3session-token'; // compared lower-cased: SDKs send X-Amz-S3session-Token
const MAX_TOKEN_CHARS = 4096;
const SESSION_KEY = /^KS[A-Z0-9]{18}$/;
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** What a ReadOnly session may do. */
const READ_ONLY_OPS = new Set(['GetObject', 'HeadObject', 'ListObjectsV2', 'GetObjectAttributes', 'ListParts', 'ListMultipartUploads', 'HeadBucket']);

export function isSessionKey(accessKey: string): boolean {
  return SESSION_KEY.test(accessKey);
}

/** The session token of a request: the x-amz-s3session-token header, or the presigned query parameter. */
export function sessionTokenOf(headers: IncomingHttpHeaders, url: string): string | undefined {
  const h = headers[TOKEN_HEADER];
  if (h !== undefined) return Array.isArray(h) ? h[0] : h;
  const q = url.indexOf('?');
  if (q < 0 || !url.slice(q).toLowerCase().includes(TOKEN_QUERY)) return undefined;
  for (const [k, v] of new URLSearchParams(url.slice(q + 1))) if (k.toLowerCase() === TOKEN_QUERY) return v;
  return undefined;
}

function b64(buf: Buffer | string): string {
  return Buffer.from(buf).toString('base64url');
}

const invalid = () => new S3Error('AccessDenied', 'The provided session token is malformed or otherwise invalid.');

const opened = new WeakMap<ObjectStore, Promise<Sessions>>();
/** Session facts of a request authenticated with session credentials (set by identity()). */
const claimsOf = new WeakMap<Ctx, SessionClaims>();

export class Sessions {
  constructor(private readonly secret: Buffer, readonly validityMs = SESSION_VALIDITY_MS) {}

  /** The store's Sessions (one per store; the secret is created on first use and persisted). */
  static open(store: ObjectStore): Promise<Sessions> {
    let p = opened.get(store);
    if (!p) {
      p = Sessions.loadSecret(store).then((s) => new Sessions(s));
      p.catch(() => opened.delete(store));
      opened.set(store, p);
    }
    return p;
  }

  private static async loadSecret(store: ObjectStore): Promise<Buffer> {
    const kv = new KvArea<string>(store, SECRET_AREA);
    const have = await kv.get(SECRET_ID);
    if (have) return Buffer.from(have, 'base64');
    await kv.put(SECRET_ID, randomBytes(32).toString('base64'));
    // Read back what the index holds, so every reader uses the same secret.
    const stored = await kv.get(SECRET_ID);
    if (!stored) throw new Error('session secret could not be stored');
    return Buffer.from(stored, 'base64');
  }

  private mac(data: string): Buffer {
    return createHmac('sha256', this.secret).update(data, 'utf8').digest();
  }

  private secretOf(accessKeyId: string): string {
    return b64(this.mac(`secret:${accessKeyId}`));
  }

  create(parent: string, bucket: string, mode: SessionMode, now = Date.now()): SessionCredentials {
    let ak = 'KS';
    for (let i = 0; i < 18; i++) ak += ALNUM[randomInt(ALNUM.length)];
    const claims: SessionClaims = { ak, parent, bucket, mode, exp: now + this.validityMs };
    const payload = b64(JSON.stringify(claims));
    const sessionToken = `${payload}.${b64(this.mac(payload))}`;
    return { accessKeyId: ak, secretAccessKey: this.secretOf(ak), sessionToken, expiration: new Date(claims.exp) };
  }

  /** The claims of a genuine, unexpired token (AccessDenied if forged or malformed, ExpiredToken if old). */
  verify(token: string, now = Date.now()): SessionClaims {
    if (token.length > MAX_TOKEN_CHARS) throw invalid();
    const dot = token.indexOf('.');
    if (dot <= 0) throw invalid();
    const payload = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1), 'base64url');
    const want = this.mac(payload);
    if (given.length !== want.length || !timingSafeEqual(given, want)) throw invalid();
    let c: SessionClaims;
    try {
      c = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as SessionClaims;
    } catch {
      throw invalid();
    }
    if (!c || typeof c.ak !== 'string' || typeof c.parent !== 'string' || typeof c.bucket !== 'string'
      || (c.mode !== 'ReadWrite' && c.mode !== 'ReadOnly') || typeof c.exp !== 'number') throw invalid();
    if (now >= c.exp) throw new S3Error('ExpiredToken');
    return c;
  }

  /** Secret of a session access key, given the request's token; undefined when the token is not this key's. */
  secretFor(accessKey: string, token: string): string | undefined {
    const c = this.verify(token);
    return c.ak === accessKey ? this.secretOf(accessKey) : undefined;
  }

  /** The parent key and mode of a token, which must be for `bucket`. */
  resolve(token: string, bucket: string): { parent: string; mode: SessionMode } {
    const c = this.verify(token);
    if (c.bucket !== bucket) throw new S3Error('AccessDenied', 'The session token is not valid for this bucket.');
    return { parent: c.parent, mode: c.mode };
  }

  /** Session requests: ReadOnly sessions only read, and no session creates another. */
  static checkOperation(ctx: Ctx, op: string): void {
    const c = claimsOf.get(ctx);
    if (!c) return;
    if (op === 'CreateSession') throw new S3Error('AccessDenied', 'CreateSession must be signed with access key credentials, not session credentials.');
    if (c.mode === 'ReadOnly' && !READ_ONLY_OPS.has(op)) throw new S3Error('AccessDenied', `${op} is not allowed with a ReadOnly session.`);
  }
}

/**
 * The request-path side of sessions, for app.ts. The server secret is loaded on the first
 * session request, so a server whose index cannot take a write still starts and serves keys.
 */
export function sessionAuth(store: ObjectStore) {
  return {
    /**
     * The secret lookup for signature verification of one request: session access keys (with a
     * token on the request) resolve through the token, every other key through `base`.
     */
    lookup(headers: IncomingHttpHeaders, url: string, base: SecretLookup): SecretLookup {
      return async (accessKey) => {
        const token = isSessionKey(accessKey) ? sessionTokenOf(headers, url) : undefined;
        return token === undefined ? base(accessKey) : (await Sessions.open(store)).secretFor(accessKey, token);
      };
    },

    /**
     * Who a verified request acts as. Session credentials act as the key that created the
     * session, for the session's bucket only.
     */
    async identity(ctx: Ctx, auth: AuthContext, credentials: Credentials): Promise<Identity> {
      const token = isSessionKey(auth.accessKey) ? sessionTokenOf(ctx.headers, ctx.raw.url ?? '') : undefined;
      if (token === undefined) return credentials.identity(auth.accessKey);
      const c = (await Sessions.open(store)).verify(token);
      if (c.ak !== auth.accessKey) throw invalid();
      if (c.bucket !== ctx.bucket) throw new S3Error('AccessDenied', 'The session token is not valid for this bucket.');
      claimsOf.set(ctx, c);
      // A removed parent key ends its sessions too.
      return credentials.identity(c.parent);
    },
  };
}

function requestedMode(ctx: Ctx): SessionMode {
  const m = header(ctx, 'x-amz-create-session-mode');
  if (m === undefined || m === '' || m === 'ReadWrite') return 'ReadWrite';
  if (m === 'ReadOnly') return 'ReadOnly';
  throw new S3Error('InvalidArgument', 'x-amz-create-session-mode must be ReadWrite or ReadOnly', { ArgumentName: 'x-amz-create-session-mode', ArgumentValue: m });
}

/**
 * May the caller open a session on ctx.bucket? ReadOnly needs read rights, ReadWrite write
 * rights. The bucket need not exist yet (boto3 opens a session before CreateBucket): then a
 * ReadWrite session needs the right to create it.
 */
export async function authorizeCreateSession(ctx: Ctx, row: Route): Promise<void> {
  const who = ctx.identity;
  if (who.anonymous) throw new S3Error('AccessDenied', 'CreateSession requires a signed request.');
  if (who.root) return;
  const mode = requestedMode(ctx);
  if (mode === 'ReadWrite' && who.ownBuckets) {
    const exists = await ctx.store.getBucket(ctx.bucket).then(() => true, () => false);
    if (!exists) return;
  }
  // What a session may do is what these stand for: listing and reading, or writing objects.
  const stand = mode === 'ReadOnly' ? { op: 'ListObjectsV2', perm: 'read' as const } : { op: 'PutObject', perm: 'write' as const };
  await authorize(ctx, { ...row, ...stand });
}

/** CreateSession: GET /bucket?session. */
export async function createSession(ctx: Ctx): Promise<Reply> {
  if (!ctx.bucket.endsWith('--x-s3')) throw new S3Error('NotImplemented', 'CreateSession is only supported by directory buckets');
  const mode = requestedMode(ctx);
  const sessions = await Sessions.open(ctx.store);
  const s = sessions.create(ctx.identity.accessKey, ctx.bucket, mode);
  return xmlReply(xmlDoc('CreateSessionResult', x('Credentials', [
    x('SessionToken', s.sessionToken),
    x('SecretAccessKey', s.secretAccessKey),
    x('AccessKeyId', s.accessKeyId),
    x('Expiration', s.expiration.toISOString()),
  ])));
}
