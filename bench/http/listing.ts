// The listing scenario's two halves, shared by run.ts (and its cells) and list-ab.ts: the bucket
// filled with empty objects under list/, and one ListObjectsV2 page of 1000 following a token.
import { LoadClient } from './client';
import { BUCKET, Target } from './targets';

/** PUT `keys` empty objects list/key-00000000... into the bench bucket, `conc` at a time. */
export async function fillList(t: Target, keys: number, conc: number): Promise<void> {
  const client = new LoadClient(t.port, conc, t.creds);
  let next = 0;
  const empty = Buffer.alloc(0);
  try {
    await Promise.all(Array.from({ length: conc }, async () => {
      while (next < keys) {
        const r = await client.request('PUT', `/${BUCKET}/list/key-${String(next++).padStart(8, '0')}`, { body: empty });
        if (r.status !== 200) throw new Error(`${t.name}: populate list: HTTP ${r.status}`);
      }
    }));
  } finally {
    client.close();
  }
}

/** One page of 1000 under list/ after `token` (none: the first); `next` is the following page's token. */
export async function listPage(client: LoadClient, token: string | undefined): Promise<{ status: number; bytes: number; next?: string }> {
  const q = [...(token ? [`continuation-token=${rfc3986(token)}`] : []), 'list-type=2', 'max-keys=1000', 'prefix=list%2F'].join('&');
  const r = await client.request('GET', `/${BUCKET}`, { query: q, keepBody: true });
  const m = /<NextContinuationToken>([^<]+)<\/NextContinuationToken>/.exec(r.body ?? '');
  const next = m ? m[1].replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'") : undefined;
  return { status: r.status, bytes: r.bytes, next };
}

function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
