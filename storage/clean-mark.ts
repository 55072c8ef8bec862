// A run that shuts down with nothing left half-done marks every drive, so the next start can
// skip the orphan sweep (every data dir on every drive listed, records read until each is
// named, beside serving). The mark names the deployment and the index's batch count at
// shutdown; the next start takes it only if every drive has it and the index still counts
// exactly that many batches, and removes it (synced) before anything is written. A run that
// crashes therefore never finds its own mark: its successor sweeps.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Drive, removeDurable, writeFileDurable } from './drive';

interface CleanMark { deployment: string; batches: string }

const markFile = (d: Drive) => path.join(d.sysDir, 'clean');

/** Mark every drive (all must be online; call after the index is closed). */
export async function writeCleanMarks(drives: Drive[], deployment: string, batches: bigint): Promise<void> {
  const text = JSON.stringify({ deployment, batches: batches.toString() } satisfies CleanMark);
  await Promise.all(drives.map((d) => writeFileDurable(markFile(d), text)));
}

/**
 * True when every drive carries a mark of this deployment at exactly `batches` index batches.
 * Every mark found is removed either way, durably, before the caller writes anything.
 */
export async function takeCleanMarks(drives: Drive[], deployment: string, batches: bigint): Promise<boolean> {
  const found = await Promise.all(drives.map(async (d) => {
    if (!d.online) return false;
    let mark: CleanMark;
    try {
      mark = JSON.parse(await fsp.readFile(markFile(d), 'utf8')) as CleanMark;
    } catch {
      return false; // none (or unreadable): removed below all the same
    }
    return mark.deployment === deployment && mark.batches === batches.toString();
  }));
  await Promise.all(drives.map(async (d) => {
    if (!d.online) return;
    // A drive that cannot drop its mark keeps it: out of this run, so the others' are gone.
    await removeDurable(markFile(d)).catch((e) => d.fail(e));
  }));
  return found.every(Boolean);
}
