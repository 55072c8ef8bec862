// CORS: bucket rules (Put/Get/Delete), OPTIONS preflight, and the Access-Control-* headers on
// ordinary requests that carry an Origin — so browser apps (dataset viewers, labelling tools)
// can read from Kiln directly.
import type { Ctx, Reply } from '../context';
import { xmlReply } from '../context';
import { S3Error } from '../errors';
import { x, xmlDoc, parseXml, text, children } from '../xml';
import { readSmallBody } from '../body';
import type { BucketRecord } from '../../storage';

export interface CorsRule {
  id?: string;
  origins: string[];
  methods: string[];
  headers: string[];
  expose: string[];
  maxAge?: number;
}

const METHODS = new Set(['GET', 'PUT', 'POST', 'DELETE', 'HEAD']);

export async function putCors(ctx: Ctx): Promise<Reply> {
  await ctx.store.getBucket(ctx.bucket);
  const doc = await parseXml(await readSmallBody(ctx, 64 * 1024), 'CORSConfiguration');
  const rules = children(doc, 'CORSRule').map((r): CorsRule => {
    const all = (n: string) => (r[n] ?? []).map((v) => (typeof v === 'string' ? v : text({ v: [v] }, 'v') ?? ''));
    const methods = all('AllowedMethod');
    const origins = all('AllowedOrigin');
    if (methods.length === 0 || origins.length === 0) throw new S3Error('MalformedXML');
    for (const m of methods) if (!METHODS.has(m)) throw new S3Error('InvalidRequest', `Found unsupported HTTP method in CORS config. Unsupported method is ${m}`);
    const maxAge = text(r, 'MaxAgeSeconds');
    return { id: text(r, 'ID'), origins, methods, headers: all('AllowedHeader'), expose: all('ExposeHeader'), maxAge: maxAge !== undefined ? Number(maxAge) : undefined };
  });
  if (rules.length === 0 || rules.length > 100) throw new S3Error('MalformedXML');
  await ctx.store.updateBucket(ctx.bucket, (b) => { b.config.cors = rules; });
  return { status: 200 };
}

export async function getCors(ctx: Ctx): Promise<Reply> {
  const rules = corsRules(await ctx.store.getBucket(ctx.bucket));
  if (!rules) throw new S3Error('NoSuchCORSConfiguration', undefined, { BucketName: ctx.bucket });
  return xmlReply(xmlDoc('CORSConfiguration', rules.map((r) => x('CORSRule', [
    r.id ? x('ID', r.id) : undefined,
    r.headers.map((h) => x('AllowedHeader', h)), r.methods.map((m) => x('AllowedMethod', m)), r.origins.map((o) => x('AllowedOrigin', o)),
    r.expose.map((h) => x('ExposeHeader', h)), r.maxAge !== undefined ? x('MaxAgeSeconds', r.maxAge) : undefined,
  ]))));
}

export async function deleteCors(ctx: Ctx): Promise<Reply> {
  await ctx.store.updateBucket(ctx.bucket, (b) => { delete b.config.cors; });
  return { status: 204 };
}

export function corsRules(b: BucketRecord): CorsRule[] | undefined {
  return b.config.cors as CorsRule[] | undefined;
}

/** A '*' in an allowed origin or header matches any run of characters (one wildcard, as S3). */
function wildcard(pattern: string, value: string): boolean {
  const i = pattern.indexOf('*');
  if (i < 0) return pattern === value;
  return value.length >= pattern.length - 1 && value.startsWith(pattern.slice(0, i)) && value.endsWith(pattern.slice(i + 1));
}

/** The first rule allowing origin + method (+ request headers), as S3 picks it. */
export function matchRule(rules: CorsRule[], origin: string, method: string, reqHeaders: string[] = []): CorsRule | undefined {
  return rules.find((r) => r.origins.some((o) => wildcard(o, origin)) && r.methods.includes(method)
    && reqHeaders.every((h) => r.headers.some((p) => wildcard(p.toLowerCase(), h.toLowerCase()))));
}

export function corsHeadersFor(rule: CorsRule, origin: string, preflight: { method: string; headers: string[] } | undefined): Record<string, string> {
  const anyOrigin = rule.origins.includes('*');
  const h: Record<string, string> = {
    'access-control-allow-origin': anyOrigin ? '*' : origin,
    'access-control-allow-methods': rule.methods.join(', '),
  };
  if (!anyOrigin) { h['vary'] = 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method'; h['access-control-allow-credentials'] = 'true'; }
  if (preflight && preflight.headers.length) h['access-control-allow-headers'] = preflight.headers.join(', ');
  if (rule.expose.length) h['access-control-expose-headers'] = rule.expose.join(', ');
  if (rule.maxAge !== undefined) h['access-control-max-age'] = String(rule.maxAge);
  return h;
}
