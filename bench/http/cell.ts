// One benchmark cell: the operation a scenario repeats against one target, run either in the
// main bench process or, with --client-procs N, in N child processes of this file side by side
// (one Node client process tops out near one core: on a many-core machine it, not the server,
// would be measured). A child warms up, says 'ready', waits for 'go' (the parent reads the
// server's CPU between the two), measures and sends its raw figures back.
import { randomBytes } from 'node:crypto';
import { LoadClient, Credentials } from './client';
import { measure, warmUp, Raw } from './measure';
import { BUCKET } from './targets';
import { listPage } from './listing';

export type Kind = 'put' | 'get' | 'range' | 'list' | 'mixed';

export interface Scenario { id: string; what: string; kind: Kind; size: number; conc: number; objects: number; ref: string; maxOps: number; optIn?: boolean }

const MiB = 1024 * 1024;

export const objectKey = (s: Scenario, i: number) => `${s.kind === 'range' ? 'get-64m' : s.id}/obj-${String(i).padStart(6, '0')}`;

/** The operation of scenario `s`: op(i) returns the bytes moved, or -1 for a failure. */
export function opFor(client: LoadClient, s: Scenario, body: Buffer, runId: string): { op: (i: number) => Promise<number>; reset?: () => void } {
  const url = (k: string) => `/${BUCKET}/${k}`;
  const ok = (status: number, bytes: number) => (status >= 200 && status < 300 ? bytes : -1);
  switch (s.kind) {
    case 'put':
      return { op: async (i) => ok((await client.request('PUT', url(`${s.id}/${runId}-${i}`), { body: body.subarray(0, s.size) })).status, s.size) };
    case 'get':
      return {
        op: async (i) => {
          const r = await client.request('GET', url(objectKey(s, i % s.objects)));
          return ok(r.status, r.bytes === s.size ? r.bytes : -1);
        },
      };
    case 'range': {
      const span = 8 * MiB;
      return {
        op: async (i) => {
          const at = (i * 7 % (s.size / span)) * span;
          const r = await client.request('GET', url(objectKey(s, i % s.objects)), { headers: { range: `bytes=${at}-${at + span - 1}` } });
          return ok(r.status, r.bytes === span ? r.bytes : -1);
        },
      };
    }
    case 'mixed':
      return {
        op: async (i) => {
          if (i % 10 < 7) {
            const r = await client.request('GET', url(objectKey(s, i % s.objects)));
            return ok(r.status, r.bytes === s.size ? r.bytes : -1);
          }
          return ok((await client.request('PUT', url(`${s.id}/${runId}-w${i}`), { body: body.subarray(0, s.size) })).status, s.size);
        },
      };
    case 'list': {
      let token: string | undefined;
      return {
        op: async () => {
          const r = await listPage(client, token);
          if (r.status !== 200) return -1;
          token = r.next;
          return r.bytes;
        },
        reset: () => { token = undefined; },
      };
    }
  }
}

/** What the parent sends a child cell. */
export interface CellSpec {
  port: number; creds?: Credentials; scenario: Scenario; conc: number; maxOps: number; seconds: number;
  warm: { seconds: number; maxOps: number }; runId: string;
}

async function child(spec: CellSpec): Promise<void> {
  const client = new LoadClient(spec.port, spec.conc, spec.creds);
  const { op, reset } = opFor(client, spec.scenario, randomBytes(spec.scenario.size), spec.runId);
  await warmUp(spec.conc, op, { ...spec.warm, reset });
  await new Promise<void>((resolve) => {
    process.once('message', () => resolve());
    process.send!({ ready: true });
  });
  const raw: Raw = await measure(spec.conc, spec.maxOps, spec.seconds, op);
  client.close();
  process.send!({ raw }, () => process.disconnect());
}

if (require.main === module && process.send) {
  process.once('message', (spec: CellSpec) => { void child(spec); });
}
