// Who may do what. The root key pair comes from the environment; further access keys live in
// the index, each limited to listed buckets (or '*') with read-only or read-write rights.
import { randomBytes } from 'node:crypto';
import { ObjectStore, KvArea, randomToken } from '../../storage';
import { S3Error } from '../errors';
import type { Permission } from '../router';

export type Access = 'read' | 'readwrite';

export interface AccessKeyRecord {
  accessKey: string;
  secretKey: string;
  /** bucket name (or '*') → rights */
  buckets: Record<string, Access>;
  /** May create buckets and has full rights on the buckets it created (a tenant of its own). */
  ownBuckets?: boolean;
  created: number;
  description?: string;
}

export interface Identity {
  accessKey: string;
  root: boolean;
  anonymous: boolean;
  buckets: Record<string, Access>;
  ownBuckets?: boolean;
}

export const ANONYMOUS: Identity = { accessKey: '', root: false, anonymous: true, buckets: {} };

export class Credentials {
  private readonly kv: KvArea<AccessKeyRecord>;
  private cache = new Map<string, { rec: AccessKeyRecord | null; at: number }>();

  constructor(store: ObjectStore, private readonly rootUser: string, private readonly rootPassword: string) {
    this.kv = new KvArea<AccessKeyRecord>(store, 'access-keys');
  }

  private async record(accessKey: string): Promise<AccessKeyRecord | null> {
    const hit = this.cache.get(accessKey);
    // A short cache keeps a signature check off the index; key changes apply within a second.
    if (hit && Date.now() - hit.at < 1000) return hit.rec;
    const rec = (await this.kv.get(accessKey)) ?? null;
    if (this.cache.size > 10000) this.cache.clear();
    this.cache.set(accessKey, { rec, at: Date.now() });
    return rec;
  }

  secretFor = async (accessKey: string): Promise<string | undefined> => {
    if (accessKey === this.rootUser) return this.rootPassword;
    return (await this.record(accessKey))?.secretKey;
  };

  async identity(accessKey: string): Promise<Identity> {
    if (accessKey === this.rootUser) return { accessKey, root: true, anonymous: false, buckets: { '*': 'readwrite' } };
    const rec = await this.record(accessKey);
    if (!rec) throw new S3Error('InvalidAccessKeyId');
    return { accessKey, root: false, anonymous: false, buckets: rec.buckets, ownBuckets: rec.ownBuckets };
  }

  async create(buckets: Record<string, Access>, accessKey?: string, secretKey?: string, description?: string, ownBuckets = false): Promise<AccessKeyRecord> {
    const rec: AccessKeyRecord = {
      accessKey: accessKey ?? `KI${randomBytes(9).toString('hex').toUpperCase()}`,
      secretKey: secretKey ?? randomToken(30),
      buckets, created: Date.now(), description, ...(ownBuckets ? { ownBuckets: true } : {}),
    };
    if (rec.accessKey === this.rootUser) throw new Error('access key clashes with the root user');
    await this.kv.put(rec.accessKey, rec);
    this.cache.delete(rec.accessKey);
    return rec;
  }

  async remove(accessKey: string): Promise<boolean> {
    const had = await this.kv.get(accessKey);
    await this.kv.delete(accessKey);
    this.cache.delete(accessKey);
    return !!had;
  }

  async list(): Promise<AccessKeyRecord[]> {
    return (await this.kv.list()).map(([, v]) => v);
  }
}

/** May `who` perform an operation needing `perm` on `bucket` ('' = service level)? */
export function allowed(who: Identity, perm: Permission, bucket: string): boolean {
  if (who.root) return true;
  if (who.anonymous) return false;
  if (!bucket) return perm === 'read'; // ListBuckets: filtered to the key's buckets
  const rights = who.buckets[bucket] ?? who.buckets['*'];
  if (!rights) return false;
  return perm === 'read' ? true : rights === 'readwrite';
}

export function visibleBucket(who: Identity, bucket: string, owner?: string): boolean {
  return who.root || !!who.buckets[bucket] || !!who.buckets['*'] || (!!who.ownBuckets && owner === who.accessKey);
}
