// The format record on each drive ties it to one deployment and one slot. A drive put back in
// the wrong slot is placed by its record; a foreign drive is refused; an empty one is a
// replacement that gets formatted and then healed (never trusted as holding data).
import { promises as fsp } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Drive, writeFileDurable } from './drive';
import { StorageError } from './errors';

export interface FormatRecord {
  version: 1;
  deploymentId: string;
  driveId: string;
  slot: number;
  drives: number;
  data: number;
  parity: number;
  blockSize: number;
}

export interface Layout { data: number; parity: number; blockSize: number }

async function readFormat(root: string): Promise<FormatRecord | null | 'unreadable'> {
  try {
    const txt = await fsp.readFile(`${root}/.kiln/format.json`, 'utf8');
    return JSON.parse(txt) as FormatRecord;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    return 'unreadable';
  }
}

async function writeFormat(root: string, rec: FormatRecord): Promise<void> {
  await fsp.mkdir(`${root}/.kiln`, { recursive: true });
  await writeFileDurable(`${root}/.kiln/format.json`, JSON.stringify(rec, null, 2));
}

export interface FormattedSet { deploymentId: string; layout: Layout; drives: Drive[] }

/**
 * Load or create the format of a drive set. Returns drives ordered by slot. Paths that cannot
 * be created or read come back offline; it is the caller's job to check quorum.
 */
export async function loadFormat(paths: string[], wanted: Layout, durable: boolean, readOnly = false): Promise<FormattedSet> {
  const found = await Promise.all(paths.map(async (p) => {
    try {
      await fsp.mkdir(p, { recursive: true });
      return await readFormat(p);
    } catch {
      return 'unreadable' as const;
    }
  }));
  const existing = found.filter((f): f is FormatRecord => f !== null && f !== 'unreadable');
  let deploymentId: string;
  let layout: Layout;
  if (existing.length === 0) {
    deploymentId = randomUUID();
    layout = wanted;
  } else {
    // The majority deployment wins; drives from any other deployment are foreign.
    const counts = new Map<string, number>();
    for (const f of existing) counts.set(f.deploymentId, (counts.get(f.deploymentId) ?? 0) + 1);
    deploymentId = [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
    const ref = existing.find((f) => f.deploymentId === deploymentId)!;
    if (ref.drives !== paths.length) {
      throw new StorageError('DriveFormatMismatch', `deployment ${deploymentId} has ${ref.drives} drives, ${paths.length} given`);
    }
    layout = { data: ref.data, parity: ref.parity, blockSize: ref.blockSize };
  }

  const slots: (Drive | undefined)[] = new Array(paths.length);
  const replacements: string[] = [];
  const offline: string[] = [];
  paths.forEach((p, i) => {
    const f = found[i];
    if (f === 'unreadable') { offline.push(p); return; }
    if (f === null) { replacements.push(p); return; }
    if (f.deploymentId !== deploymentId) {
      throw new StorageError('DriveFormatMismatch', `drive ${p} belongs to deployment ${f.deploymentId}, not ${deploymentId}`);
    }
    if (f.slot < 0 || f.slot >= paths.length || slots[f.slot]) {
      throw new StorageError('DriveFormatMismatch', `drive ${p} claims slot ${f.slot}, which is invalid or taken`);
    }
    slots[f.slot] = new Drive(p, f.slot, durable);
  });
  const fresh = existing.length === 0;
  for (const p of [...replacements, ...offline]) {
    const slot = slots.findIndex((d) => d === undefined);
    const d = new Drive(p, slot, durable);
    slots[slot] = d;
    if (offline.includes(p)) { d.state = 'offline'; d.lastError = 'format unreadable'; continue; }
    // A worker process never formats: the owner did at start; a drive blank now is out until restart.
    if (readOnly) { d.state = 'offline'; d.lastError = 'not formatted'; continue; }
    await writeFormat(p, {
      version: 1, deploymentId, driveId: randomUUID(), slot, drives: paths.length,
      data: layout.data, parity: layout.parity, blockSize: layout.blockSize,
    });
    if (!fresh) d.needsHeal = true;
  }
  return { deploymentId, layout, drives: slots as Drive[] };
}
