// Object Lock: WORM retention (GOVERNANCE, COMPLIANCE) and legal holds on object versions —
// the immutable checkpoints and audit trails model teams keep. A bucket must be created with
// lock enabled (which turns versioning on for good); its default retention applies to new
// versions; locked versions cannot be deleted or overwritten in place until they expire.
import type { Ctx, Reply } from '../context';
import { header, xmlReply } from '../context';
import { S3Error } from '../errors';
import { x, xmlDoc, parseXml, text, children } from '../xml';
import { readSmallBody } from '../body';
import { requireBucketKey } from './common';
import type { ObjectRecord } from '../../storage';
import { versionOf } from './get';

export interface LockConfig { enabled: true; rule?: { mode: 'GOVERNANCE' | 'COMPLIANCE'; days?: number; years?: number } }

const DAY_MS = 24 * 3600 * 1000;

export function lockConfig(b: { config: Record<string, unknown> }): LockConfig | undefined {
  return b.config.objectLock as LockConfig | undefined;
}

/** Refuses deletion of a version under legal hold or unexpired retention. */
export function lockGuard(ctx: Ctx): (r: ObjectRecord) => void {
  const bypass = (header(ctx, 'x-amz-bypass-governance-retention') ?? '').toLowerCase() === 'true';
  return (r) => {
    if (r.legalHold) throw new S3Error('AccessDenied', 'Object is under a legal hold and cannot be deleted');
    if (r.retention && r.retention.until > Date.now()) {
      if (r.retention.mode === 'COMPLIANCE' || !bypass) throw new S3Error('AccessDenied', 'Object is WORM protected and cannot be overwritten or deleted');
    }
  };
}

/** Retention and legal hold a new version gets: request headers, else the bucket default. */
export async function lockForNewVersion(ctx: Ctx): Promise<Pick<ObjectRecord, 'retention' | 'legalHold'>> {
  const mode = header(ctx, 'x-amz-object-lock-mode');
  const until = header(ctx, 'x-amz-object-lock-retain-until-date');
  const hold = header(ctx, 'x-amz-object-lock-legal-hold');
  const b = await ctx.store.getBucket(ctx.bucket);
  const conf = lockConfig(b);
  if ((mode || until || hold) && !conf) throw new S3Error('InvalidRequest', 'Bucket is missing Object Lock Configuration');
  const out: Pick<ObjectRecord, 'retention' | 'legalHold'> = {};
  if (mode !== undefined || until !== undefined) {
    if (mode === undefined || until === undefined) throw new S3Error('InvalidArgument', 'x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied');
    if (mode !== 'GOVERNANCE' && mode !== 'COMPLIANCE') throw new S3Error('InvalidArgument', 'Unknown wormMode directive.');
    const t = Date.parse(until);
    if (Number.isNaN(t)) throw new S3Error('InvalidArgument', 'The retain until date must be provided in ISO 8601 format');
    if (t <= Date.now()) throw new S3Error('InvalidArgument', 'The retain until date must be in the future!');
    out.retention = { mode, until: t };
  } else if (conf?.rule) {
    const ms = (conf.rule.days ?? 0) * DAY_MS + (conf.rule.years ?? 0) * 365 * DAY_MS;
    out.retention = { mode: conf.rule.mode, until: Date.now() + ms };
  }
  if (hold !== undefined) {
    if (hold !== 'ON' && hold !== 'OFF') throw new S3Error('InvalidArgument', 'Legal Hold must be either of \'ON\' or \'OFF\'');
    out.legalHold = hold === 'ON';
  }
  return out;
}

export async function putLockConfiguration(ctx: Ctx): Promise<Reply> {
  const b = await ctx.store.getBucket(ctx.bucket);
  const doc = await parseXml(await readSmallBody(ctx, 64 * 1024), 'ObjectLockConfiguration');
  if (text(doc, 'ObjectLockEnabled') !== 'Enabled') throw new S3Error('MalformedXML');
  if (!lockConfig(b) && b.versioning !== 'Enabled') throw new S3Error('InvalidBucketState', 'Versioning must be \'Enabled\' on the bucket to apply a Object Lock configuration');
  const rule = children(doc, 'Rule')[0];
  let conf: LockConfig = { enabled: true };
  if (rule) {
    const d = children(rule, 'DefaultRetention')[0];
    if (!d) throw new S3Error('MalformedXML');
    const mode = text(d, 'Mode');
    const days = text(d, 'Days');
    const years = text(d, 'Years');
    if (mode !== 'GOVERNANCE' && mode !== 'COMPLIANCE') throw new S3Error('MalformedXML');
    if ((days === undefined) === (years === undefined)) throw new S3Error('MalformedXML');
    const n = Number(days ?? years);
    if (!Number.isInteger(n) || n <= 0) throw new S3Error('InvalidRetentionPeriod', 'Default retention period must be a positive integer value');
    conf = { enabled: true, rule: { mode, ...(days !== undefined ? { days: n } : { years: n }) } };
  }
  await ctx.store.updateBucket(ctx.bucket, (r) => { r.config.objectLock = conf; r.versioning = 'Enabled'; });
  return { status: 200 };
}

export async function getLockConfiguration(ctx: Ctx): Promise<Reply> {
  const conf = lockConfig(await ctx.store.getBucket(ctx.bucket));
  if (!conf) throw new S3Error('ObjectLockConfigurationNotFoundError', undefined, { BucketName: ctx.bucket });
  return xmlReply(xmlDoc('ObjectLockConfiguration', [
    x('ObjectLockEnabled', 'Enabled'),
    conf.rule ? x('Rule', x('DefaultRetention', [x('Mode', conf.rule.mode), conf.rule.days ? x('Days', conf.rule.days) : undefined, conf.rule.years ? x('Years', conf.rule.years) : undefined])) : undefined,
  ]));
}

async function requireLock(ctx: Ctx): Promise<void> {
  if (!lockConfig(await ctx.store.getBucket(ctx.bucket))) throw new S3Error('InvalidRequest', 'Bucket is missing Object Lock Configuration');
}

export async function putRetention(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  await requireLock(ctx);
  const doc = await parseXml(await readSmallBody(ctx, 64 * 1024), 'Retention');
  const mode = text(doc, 'Mode');
  const untilText = text(doc, 'RetainUntilDate');
  if (mode !== 'GOVERNANCE' && mode !== 'COMPLIANCE') throw new S3Error('MalformedXML');
  const until = Date.parse(untilText ?? '');
  if (Number.isNaN(until)) throw new S3Error('MalformedXML');
  if (until <= Date.now()) throw new S3Error('InvalidArgument', 'The retain until date must be in the future!');
  const bypass = (header(ctx, 'x-amz-bypass-governance-retention') ?? '').toLowerCase() === 'true';
  const rec = await ctx.store.updateObject(ctx.bucket, ctx.key, (r) => {
    const cur = r.retention;
    if (cur && cur.until > Date.now()) {
      // Retention can be extended; shortening or weakening it needs GOVERNANCE plus the bypass.
      // Only extending the same mode is free; any other change to a GOVERNANCE lock needs the
      // bypass header, and a COMPLIANCE lock cannot be changed at all.
      const change = mode !== cur.mode || until < cur.until;
      if (change && (cur.mode === 'COMPLIANCE' || !bypass)) throw new S3Error('AccessDenied', 'Object is WORM protected and cannot be overwritten');
    }
    r.retention = { mode, until };
  }, versionOf(ctx));
  return { status: 200, headers: rec.versioned ? { 'x-amz-version-id': rec.versionId } : {} };
}

export async function getRetention(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  await requireLock(ctx);
  const rec = await ctx.store.headObject(ctx.bucket, ctx.key, versionOf(ctx));
  if (!rec.retention) throw new S3Error('NoSuchObjectLockConfiguration');
  // Exact to the millisecond: a client that waits until this date must find the lock expired.
  return xmlReply(xmlDoc('Retention', [x('Mode', rec.retention.mode), x('RetainUntilDate', new Date(rec.retention.until).toISOString())]));
}

export async function putLegalHold(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  await requireLock(ctx);
  const doc = await parseXml(await readSmallBody(ctx, 64 * 1024), 'LegalHold');
  const status = text(doc, 'Status');
  if (status !== 'ON' && status !== 'OFF') throw new S3Error('MalformedXML');
  await ctx.store.updateObject(ctx.bucket, ctx.key, (r) => { r.legalHold = status === 'ON'; }, versionOf(ctx));
  return { status: 200 };
}

export async function getLegalHold(ctx: Ctx): Promise<Reply> {
  requireBucketKey(ctx);
  await requireLock(ctx);
  const rec = await ctx.store.headObject(ctx.bucket, ctx.key, versionOf(ctx));
  if (rec.legalHold === undefined) throw new S3Error('NoSuchObjectLockConfiguration');
  return xmlReply(xmlDoc('LegalHold', x('Status', rec.legalHold ? 'ON' : 'OFF')));
}
