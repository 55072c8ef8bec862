// The admin API behind `kiln admin`: JSON over HTTP under /_kiln/admin/ (an underscore can't
// start a bucket name, so it never shadows S3), root credentials only, SigV4-signed.
import type { Ctx, Reply } from './context';
import { S3Error } from './errors';
import { Access } from './auth/identity';
import type { Credentials } from './auth/identity';
import { readSmallBody } from './body';

export const ADMIN_PREFIX = '/_kiln/admin/';

export interface AdminReply { status: number; json: unknown }

export async function adminRequest(ctx: Ctx, credentials: Credentials, path: string): Promise<AdminReply> {
  if (!ctx.identity.root) throw new S3Error('AccessDenied');
  const parts = path.slice(ADMIN_PREFIX.length).split('/').filter(Boolean).map(decodeURIComponent);
  const [what, id] = parts;
  if (what === 'status' && ctx.method === 'GET') return { status: 200, json: await status(ctx) };
  if (what === 'keys' && ctx.method === 'GET' && !id) {
    const keys = await credentials.list();
    return { status: 200, json: keys.map(({ secretKey: _s, ...k }) => k) };
  }
  if (what === 'keys' && ctx.method === 'POST' && !id) {
    const body = JSON.parse((await readSmallBody(ctx, 64 * 1024)).toString('utf8') || '{}') as { buckets?: Record<string, Access>; accessKey?: string; secretKey?: string; description?: string; ownBuckets?: boolean };
    const buckets = body.buckets ?? {};
    for (const [b, a] of Object.entries(buckets)) if (a !== 'read' && a !== 'readwrite') throw new S3Error('InvalidArgument', `access for ${b} must be read or readwrite`);
    if (Object.keys(buckets).length === 0 && !body.ownBuckets) throw new S3Error('InvalidArgument', 'a key needs at least one bucket (or "*"), or --own-buckets');
    return { status: 200, json: await credentials.create(buckets, body.accessKey, body.secretKey, body.description, !!body.ownBuckets) };
  }
  if (what === 'keys' && ctx.method === 'DELETE' && id) {
    const had = await credentials.remove(id);
    if (!had) throw new S3Error('InvalidAccessKeyId');
    return { status: 200, json: { removed: id } };
  }
  if (what === 'heal' && ctx.method === 'POST') return { status: 200, json: { queued: await ctx.store.heal.sweep() } };
  throw new S3Error('NotImplemented', `admin: ${ctx.method} ${path}`);
}

async function status(ctx: Ctx): Promise<unknown> {
  const s = ctx.store;
  const drives = await Promise.all(s.drives.map(async (d) => {
    const cap = await d.capacity().catch(() => ({ total: 0, free: 0 }));
    return { path: d.root, slot: d.slot, state: d.state, needsHeal: d.needsHeal, lastError: d.lastError || undefined, totalBytes: cap.total, freeBytes: cap.free };
  }));
  return {
    deploymentId: s.deploymentId,
    layout: { data: s.set.data, parity: s.set.parity, blockSize: s.set.blockSize, writeQuorum: s.set.writeQuorum, readQuorum: s.set.readQuorum },
    durable: s.set.durable,
    drives,
    indexReplicas: s.index.online,
    // Bytes each replica's log holds against those still referenced: compaction works on the gap.
    indexLogs: await s.index.logUsage(),
    heal: await s.heal.status(),
    buckets: (await s.listBuckets()).length,
  };
}

/** An admin answer as a reply for app.ts's send(). */
export function jsonReply(r: AdminReply): Reply {
  return { status: r.status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(r.json, null, 2) };
}
