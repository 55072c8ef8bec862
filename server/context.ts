// What every operation handler receives and returns. Handlers never touch fastify directly.
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { ObjectStore, Multipart } from '../storage';
import type { BlockBody } from '../storage/object-store';
import type { AuthContext } from './auth/sigv4';
import type { ServerConfig } from './config';
import type { Identity } from './auth/identity';

export interface Ctx {
  id: string;
  method: string;
  bucket: string;           // '' at service level
  key: string;              // '' at bucket level
  query: Record<string, string>;
  headers: IncomingMessage['headers'];
  raw: IncomingMessage;
  auth: AuthContext;
  identity: Identity;
  store: ObjectStore;
  mp: Multipart;
  config: ServerConfig;
  /** Secret and identity of another access key (POST policies name their signer in a form field). */
  identitySecret: (accessKey: string) => Promise<string | undefined>;
  identityFor: (accessKey: string) => Promise<Identity>;
  /** Bytes received in the request body (for metrics), set by body readers. */
  bytesIn: number;
  /** The fastify request (only POST object uses it, for multipart form parsing). */
  request: import('fastify').FastifyRequest;
  log: { info: (o: object, m?: string) => void; warn: (o: object, m?: string) => void; error: (o: object, m?: string) => void };
}

export interface Reply {
  status?: number;
  headers?: Record<string, string | number | undefined>;
  /** A BlockBody (large GETs) is written chunk by chunk, each recycled once the OS has it. */
  body?: string | Buffer | Readable | BlockBody;
  /** Bytes the body will carry (for metrics) when it is a stream. */
  bytesOut?: number;
  /** Called once a Buffer body has been handed to the OS in full (not on errors): its memory may be reused. */
  sent?: () => void;
}

export type Handler = (ctx: Ctx) => Promise<Reply>;

export function header(ctx: Ctx, name: string): string | undefined {
  const v = ctx.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

export const XML_TYPE = 'application/xml';
export function xmlReply(body: string, status = 200, headers: Reply['headers'] = {}): Reply {
  return { status, headers: { 'content-type': XML_TYPE, ...headers }, body };
}
