// Bucket lifecycle: Put/Get/Delete with S3's validation, and the expiration worker that applies
// the rules (current-version expiry by days or date, noncurrent-version expiry, expired delete
// markers, incomplete multipart uploads). KILN_LIFECYCLE_DAY_SECONDS shortens a "day" for tests.
import type { Ctx, Reply } from '../context';
import { xmlReply } from '../context';
import { S3Error } from '../errors';
import { x, xmlDoc, parseXml, text, children } from '../xml';
import { readSmallBody } from '../body';
import type { ObjectStore, Multipart, ObjectRecord } from '../../storage';

export interface LifecycleRule {
  id: string;
  enabled: boolean;
  prefix: string;
  tags?: Record<string, string>;
  sizeGreaterThan?: number;
  sizeLessThan?: number;
  expirationDays?: number;
  expirationDate?: number;
  expiredObjectDeleteMarker?: boolean;
  noncurrentDays?: number;
  newerNoncurrentVersions?: number;
  abortMultipartDays?: number;
  /** The rule named its prefix at top level (legacy form) rather than in a Filter: echo it so. */
  legacyPrefix?: boolean;
  /** Transitions are stored and echoed; moving data to another tier is not done by Kiln yet. */
  transitions?: { days?: number; date?: string; storageClass: string }[];
  noncurrentTransitions?: { days: number; storageClass: string }[];
}

const MAX_RULES = 1000;

function positiveInt(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n <= 0) throw new S3Error('InvalidArgument', `'${what}' for ${what === 'Days' ? 'Expiration' : 'rule'} action must be a positive integer`);
  return n;
}

function parseDate(v: string): number {
  // S3 wants midnight UTC in ISO 8601 (e.g. 2026-01-01T00:00:00.000Z or 2026-01-01).
  if (!/^\d{4}-\d{2}-\d{2}(T00:00:00(\.000)?(Z|[+-]00:00))?$/.test(v)) throw new S3Error('InvalidArgument', 'Date must be at midnight GMT');
  const t = Date.parse(v.length === 10 ? `${v}T00:00:00Z` : v);
  if (Number.isNaN(t)) throw new S3Error('InvalidArgument', 'Invalid date');
  return t;
}

export function parseRules(doc: Record<string, unknown[]>): LifecycleRule[] {
  const rules = children(doc, 'Rule');
  if (rules.length === 0 || rules.length > MAX_RULES) throw new S3Error('MalformedXML');
  const ids = new Set<string>();
  return rules.map((r, i) => {
    const id = text(r, 'ID') ?? `rule-${i + 1}`;
    if (id.length > 255) throw new S3Error('InvalidArgument', 'ID length should not exceed allowed limit of 255');
    if (ids.has(id)) throw new S3Error('InvalidArgument', 'Rule ID must be unique. Found same ID for more than one rule');
    ids.add(id);
    const status = text(r, 'Status');
    if (status !== 'Enabled' && status !== 'Disabled') throw new S3Error('MalformedXML');
    const rule: LifecycleRule = { id, enabled: status === 'Enabled', prefix: text(r, 'Prefix') ?? '' };
    if (text(r, 'Prefix') !== undefined) rule.legacyPrefix = true;
    const filter = children(r, 'Filter')[0];
    if (filter && text(r, 'Prefix') !== undefined) throw new S3Error('MalformedXML');
    if (filter) {
      const and = children(filter, 'And')[0] ?? filter;
      rule.prefix = text(and, 'Prefix') ?? '';
      const tags = children(and, 'Tag');
      if (tags.length) rule.tags = Object.fromEntries(tags.map((t) => [text(t, 'Key') ?? '', text(t, 'Value') ?? '']));
      const gt = text(and, 'ObjectSizeGreaterThan');
      const lt = text(and, 'ObjectSizeLessThan');
      if (gt !== undefined) rule.sizeGreaterThan = Number(gt);
      if (lt !== undefined) rule.sizeLessThan = Number(lt);
    }
    const exp = children(r, 'Expiration')[0];
    if (exp) {
      const days = text(exp, 'Days');
      const date = text(exp, 'Date');
      const edm = text(exp, 'ExpiredObjectDeleteMarker');
      if ([days, date, edm].filter((v) => v !== undefined).length !== 1) throw new S3Error('MalformedXML');
      rule.expirationDays = positiveInt(days, 'Days');
      if (date !== undefined) rule.expirationDate = parseDate(date);
      if (edm !== undefined) rule.expiredObjectDeleteMarker = edm === 'true';
    }
    const nc = children(r, 'NoncurrentVersionExpiration')[0];
    if (nc) {
      rule.noncurrentDays = positiveInt(text(nc, 'NoncurrentDays'), 'NoncurrentDays');
      const newer = text(nc, 'NewerNoncurrentVersions');
      if (newer !== undefined) rule.newerNoncurrentVersions = positiveInt(newer, 'NewerNoncurrentVersions');
    }
    const ab = children(r, 'AbortIncompleteMultipartUpload')[0];
    if (ab) rule.abortMultipartDays = positiveInt(text(ab, 'DaysAfterInitiation'), 'DaysAfterInitiation');
    const trans = children(r, 'Transition');
    if (trans.length) {
      rule.transitions = trans.map((t) => {
        const sc = text(t, 'StorageClass');
        if (!sc) throw new S3Error('MalformedXML');
        const d = text(t, 'Date');
        if (d !== undefined) parseDate(d);
        return { days: text(t, 'Days') !== undefined ? Number(text(t, 'Days')) : undefined, date: d, storageClass: sc };
      });
    }
    const ncTrans = children(r, 'NoncurrentVersionTransition');
    if (ncTrans.length) rule.noncurrentTransitions = ncTrans.map((t) => ({ days: Number(text(t, 'NoncurrentDays') ?? 0), storageClass: text(t, 'StorageClass') ?? '' }));
    if (!exp && !nc && !ab && !trans.length && !ncTrans.length) throw new S3Error('MalformedXML', 'At least one action needs to be specified in a rule');
    return rule;
  });
}

function ruleXml(r: LifecycleRule) {
  const filterBody = r.tags || r.sizeGreaterThan !== undefined || r.sizeLessThan !== undefined
    ? x('And', [x('Prefix', r.prefix), ...Object.entries(r.tags ?? {}).map(([k, v]) => x('Tag', [x('Key', k), x('Value', v)])),
      r.sizeGreaterThan !== undefined ? x('ObjectSizeGreaterThan', r.sizeGreaterThan) : undefined, r.sizeLessThan !== undefined ? x('ObjectSizeLessThan', r.sizeLessThan) : undefined])
    : x('Prefix', r.prefix);
  return x('Rule', [
    x('ID', r.id), r.legacyPrefix ? x('Prefix', r.prefix) : x('Filter', filterBody), x('Status', r.enabled ? 'Enabled' : 'Disabled'),
    r.expirationDays !== undefined || r.expirationDate !== undefined || r.expiredObjectDeleteMarker !== undefined ? x('Expiration', [
      r.expirationDays !== undefined ? x('Days', r.expirationDays) : undefined,
      r.expirationDate !== undefined ? x('Date', new Date(r.expirationDate).toISOString()) : undefined,
      r.expiredObjectDeleteMarker !== undefined ? x('ExpiredObjectDeleteMarker', r.expiredObjectDeleteMarker) : undefined,
    ]) : undefined,
    (r.transitions ?? []).map((t) => x('Transition', [t.days !== undefined ? x('Days', t.days) : undefined, t.date ? x('Date', t.date) : undefined, x('StorageClass', t.storageClass)])),
    (r.noncurrentTransitions ?? []).map((t) => x('NoncurrentVersionTransition', [x('NoncurrentDays', t.days), x('StorageClass', t.storageClass)])),
    r.noncurrentDays !== undefined ? x('NoncurrentVersionExpiration', [x('NoncurrentDays', r.noncurrentDays), r.newerNoncurrentVersions ? x('NewerNoncurrentVersions', r.newerNoncurrentVersions) : undefined]) : undefined,
    r.abortMultipartDays !== undefined ? x('AbortIncompleteMultipartUpload', x('DaysAfterInitiation', r.abortMultipartDays)) : undefined,
  ]);
}

export async function putLifecycle(ctx: Ctx): Promise<Reply> {
  await ctx.store.getBucket(ctx.bucket);
  const rules = parseRules(await parseXml(await readSmallBody(ctx, 1024 * 1024), 'LifecycleConfiguration'));
  await ctx.store.updateBucket(ctx.bucket, (b) => { b.config.lifecycle = rules; });
  return { status: 200 };
}

export async function getLifecycle(ctx: Ctx): Promise<Reply> {
  const rules = (await ctx.store.getBucket(ctx.bucket)).config.lifecycle as LifecycleRule[] | undefined;
  if (!rules) throw new S3Error('NoSuchLifecycleConfiguration', undefined, { BucketName: ctx.bucket });
  return xmlReply(xmlDoc('LifecycleConfiguration', rules.map(ruleXml)));
}

export async function deleteLifecycle(ctx: Ctx): Promise<Reply> {
  await ctx.store.updateBucket(ctx.bucket, (b) => { delete b.config.lifecycle; });
  return { status: 204 };
}

function matches(r: LifecycleRule, o: ObjectRecord): boolean {
  if (!o.key.startsWith(r.prefix)) return false;
  if (r.tags && !Object.entries(r.tags).every(([k, v]) => o.tags?.[k] === v)) return false;
  if (r.sizeGreaterThan !== undefined && !(o.size > r.sizeGreaterThan)) return false;
  if (r.sizeLessThan !== undefined && !(o.size < r.sizeLessThan)) return false;
  return true;
}

/** Scan budget per bucket per pass: one pass never walks an unbounded bucket in one go. */
const MAX_SCAN_PER_PASS = 100_000;

/** One pass of the expiration worker over every bucket with rules. Returns versions removed. */
export async function runLifecycle(store: ObjectStore, mp: Multipart, dayMs: number, now = Date.now()): Promise<number> {
  let removed = 0;
  for (const b of await store.listBuckets()) {
    const rules = ((b.config.lifecycle as LifecycleRule[] | undefined) ?? []).filter((r) => r.enabled);
    if (rules.length === 0) continue;
    let keyMarker: string | undefined;
    let versionIdMarker: string | undefined;
    let scanned = 0;
    const noncurrentSeen = new Map<string, number>();
    for (;;) {
      const page = await store.listVersions(b.name, { keyMarker, versionIdMarker, maxKeys: 1000 });
      for (const { record: o, isLatest } of page.versions) {
        for (const r of rules) {
          if (!matches(r, o)) continue;
          if (isLatest && !o.deleteMarker) {
            const due = (r.expirationDays !== undefined && now >= o.mtime + r.expirationDays * dayMs) || (r.expirationDate !== undefined && now >= r.expirationDate);
            if (due) { await store.deleteObject(b.name, o.key).catch(() => undefined); removed++; break; }
          } else if (isLatest && o.deleteMarker && r.expiredObjectDeleteMarker) {
            const others = page.versions.filter((v) => v.record.key === o.key).length;
            if (others === 1) { await store.deleteObject(b.name, o.key, { versionId: o.versionId }).catch(() => undefined); removed++; break; }
          } else if (!isLatest && r.noncurrentDays !== undefined) {
            const rank = (noncurrentSeen.get(o.key) ?? 0) + 1;
            noncurrentSeen.set(o.key, rank);
            if (r.newerNoncurrentVersions !== undefined && rank <= r.newerNoncurrentVersions) continue;
            if (now >= o.mtime + r.noncurrentDays * dayMs) { await store.deleteObject(b.name, o.key, { versionId: o.versionId }).catch(() => undefined); removed++; break; }
          }
        }
      }
      scanned += page.versions.length;
      if (!page.isTruncated || scanned >= MAX_SCAN_PER_PASS) break;
      keyMarker = page.nextKeyMarker;
      versionIdMarker = page.nextVersionIdMarker;
    }
    const abortDays = rules.filter((r) => r.abortMultipartDays !== undefined);
    if (abortDays.length) {
      const { uploads } = await mp.listUploads(b.name, { max: 1000 });
      for (const u of uploads) {
        if (abortDays.some((r) => u.key.startsWith(r.prefix) && now >= u.initiated + r.abortMultipartDays! * dayMs)) {
          await mp.abort(b.name, u.key, u.uploadId).catch(() => undefined);
        }
      }
    }
  }
  return removed;
}

/** x-amz-expiration for GET/HEAD/PUT: the rule that will expire this object, and when. */
export function expirationHeader(rules: LifecycleRule[] | undefined, o: ObjectRecord, dayMs: number): string | undefined {
  for (const r of rules ?? []) {
    if (!r.enabled || !matches(r, o)) continue;
    let at: number | undefined;
    if (r.expirationDays !== undefined) {
      // S3 rounds to the next midnight UTC after mtime + days.
      const t = o.mtime + r.expirationDays * dayMs;
      at = dayMs === 86400000 ? Math.ceil(t / dayMs) * dayMs : t;
    } else if (r.expirationDate !== undefined) at = r.expirationDate;
    if (at !== undefined) return `expiry-date="${new Date(at).toUTCString()}", rule-id="${r.id}"`;
  }
  return undefined;
}
