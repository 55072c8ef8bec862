// Reading a closed index replica as it stands on a drive: LevelDB entries with inline bodies
// resolved through the drive's value log (their pointers differ from replica to replica).
import * as path from 'node:path';
import { Level } from 'level';
import { NS_INLINE } from '../../storage/records';
import { readPointer } from '../../storage/value-log';

/** Every entry of the closed replica in `indexDir` (a drive's .kiln/index) but its checkpoint, as hex strings (key → value). */
export async function dumpReplica(indexDir: string): Promise<Map<string, string>> {
  const vlogDir = path.join(path.dirname(indexDir), 'vlog');
  const db = new Level<Buffer, Buffer>(indexDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  const out = new Map<string, string>();
  try {
    for await (const [k, v] of db.iterator()) {
      if (k.length === 2 && k[0] === 0 && k[1] === 0x63) continue; // the replica's checkpoint: its own log position
      const value = k[0] === NS_INLINE ? readPointer(vlogDir, v) : v;
      out.set(k.toString('hex'), value ? value.toString('hex') : `unreadable pointer ${v.toString('hex')}`);
    }
  } finally {
    await db.close();
  }
  return out;
}
