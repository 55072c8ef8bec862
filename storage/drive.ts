// One drive path (one NVMe device). Knows where things live on it, how to commit a directory
// atomically, and whether it is usable. It never decides quorum: the erasure set does.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { closeFile, writeFrame, writeShardFile } from './native';

export type DriveState = 'online' | 'offline' | 'faulty';

export class Drive {
  state: DriveState = 'online';
  lastError = '';
  /** Set when the drive missed writes (replacement, or offline during a write): heal before trusting. */
  needsHeal = false;

  constructor(readonly root: string, readonly slot: number, readonly durable: boolean) {}

  get sysDir(): string { return path.join(this.root, '.kiln'); }
  get tmpRoot(): string { return path.join(this.sysDir, 'tmp'); }
  get trashRoot(): string { return path.join(this.sysDir, 'trash'); }
  get indexDir(): string { return path.join(this.sysDir, 'index'); }
  /** Value log of the index replica on this drive (bodies of inline objects; value-log.ts). */
  get vlogDir(): string { return path.join(this.sysDir, 'vlog'); }
  get formatFile(): string { return path.join(this.sysDir, 'format.json'); }
  get dataRoot(): string { return path.join(this.root, 'data'); }

  /**
   * Scratch space of a write in flight. Named after the process: with `--workers N` several
   * processes write here, and the one that outlives a killed worker removes what it left.
   */
  tmpPath(id: string): string { return path.join(this.tmpRoot, `${process.pid}.${id}`); }
  /** Data dirs fan out by the first two hex digits so no directory grows without bound. */
  dataPath(dataDir: string): string { return path.join(this.dataRoot, dataDir.slice(0, 2), dataDir); }
  shardFile(dataDir: string): string { return path.join(this.dataPath(dataDir), 'shard'); }

  get online(): boolean { return this.state === 'online'; }

  fail(err: unknown): void {
    this.state = 'faulty';
    this.lastError = err instanceof Error ? err.message : String(err);
    this.needsHeal = true;
  }

  async prepare(): Promise<void> {
    await fsp.mkdir(this.tmpRoot, { recursive: true });
    await fsp.mkdir(this.trashRoot, { recursive: true });
    await fsp.mkdir(this.dataRoot, { recursive: true });
    // A crash leaves half-written uploads in tmp/ and half-deleted dirs in trash/: neither is
    // referenced by the index, so both are dropped whole at start.
    await emptyDir(this.tmpRoot);
    await emptyDir(this.trashRoot);
  }

  /** Fan-out dirs known to exist (they are never removed): no mkdir for each commit. */
  private readonly fanOut = new Set<string>();

  /** Atomic commit of a tmp dir into the data tree: rename, then fsync the parent (durable mode). */
  async commit(tmpId: string, dataDir: string): Promise<void> {
    const dest = this.dataPath(dataDir);
    const parent = path.dirname(dest);
    const makeParent = async () => { await fsp.mkdir(parent, { recursive: true }); this.fanOut.add(parent); };
    if (!this.fanOut.has(parent)) await makeParent();
    try {
      await fsp.rename(this.tmpPath(tmpId), dest);
    } catch (e) {
      // The fan-out dir went away behind our back (an operator's cleanup): make it again, once.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || !this.fanOut.delete(parent)) throw e;
      await makeParent();
      await fsp.rename(this.tmpPath(tmpId), dest);
    }
    if (this.durable) await fsyncDir(parent);
  }

  /**
   * A shard file of one frame (a one-block object) made in tmp, written, synced and committed as
   * data dir `dataDir` — what writeShards and commit() do in ~9 thread-pool round trips, in one
   * task of the addon. Resolves to the frame's CRC; on an error the tmp dir may remain.
   */
  async writeOneFrame(dataDir: string, data: Buffer): Promise<number> {
    const tmp = this.tmpPath(dataDir);
    const dest = this.dataPath(dataDir);
    if (writeShardFile) return writeShardFile([tmp, path.join(tmp, 'shard'), dest, path.dirname(dest)], data, this.durable);
    await fsp.mkdir(tmp, { recursive: true });
    const fh = await fsp.open(path.join(tmp, 'shard'), 'w');
    let c: number;
    try {
      c = await writeFrame(fh, 0, data);
      if (this.durable) await fh.sync();
    } finally {
      await closeFile(fh);
    }
    await this.commit(dataDir, dataDir);
    return c;
  }

  /** A data dir could not be moved out of data/ this run: it may be an orphan now (clean-mark.ts). */
  removeFailed = false;

  /** Remove a data dir: rename into trash first so a crash never leaves a half-deleted dir in data/. */
  async remove(dataDir: string): Promise<void> {
    const trash = path.join(this.trashRoot, `${process.pid}.${dataDir}.${process.hrtime.bigint()}`);
    try {
      await fsp.rename(this.dataPath(dataDir), trash);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      // Every caller (a write below quorum, a delete, the sweep) shrugs it off: remembered here.
      this.removeFailed = true;
      throw e;
    }
    await fsp.rm(trash, { recursive: true, force: true });
  }

  /** Drop what process `pid` (a killed worker) left in tmp/ and trash/: nothing refers to it. */
  async sweepProcess(pid: number): Promise<number> {
    let n = 0;
    for (const dir of [this.tmpRoot, this.trashRoot]) {
      for (const e of await fsp.readdir(dir).catch(() => [] as string[])) {
        if (!e.startsWith(`${pid}.`)) continue;
        await fsp.rm(path.join(dir, e), { recursive: true, force: true }).catch(() => undefined);
        n++;
      }
    }
    return n;
  }

  async removeTmp(tmpId: string): Promise<void> {
    await fsp.rm(this.tmpPath(tmpId), { recursive: true, force: true }).catch(() => undefined);
  }

  async capacity(): Promise<{ total: number; free: number }> {
    const s = await fsp.statfs(this.root);
    return { total: s.blocks * s.bsize, free: s.bavail * s.bsize };
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const h = await fsp.open(dir, 'r');
  try { await h.sync(); } finally { await h.close(); }
}

/** Replace `file` with `text` so that a crash leaves the old or the new file, never a torn one: temp name, fsync, rename, fsync the dir. */
export async function writeFileDurable(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp`;
  const h = await fsp.open(tmp, 'w');
  try { await h.writeFile(text); await h.sync(); } finally { await h.close(); }
  await fsp.rename(tmp, file);
  await fsyncDir(path.dirname(file));
}

/** Remove `file` (and a temp copy writeFileDurable may have left) for good: the dir is synced after. */
export async function removeDurable(file: string): Promise<void> {
  await fsp.rm(file, { force: true });
  await fsp.rm(`${file}.tmp`, { force: true });
  await fsyncDir(path.dirname(file));
}

async function emptyDir(dir: string): Promise<void> {
  for (const name of await fsp.readdir(dir)) {
    await fsp.rm(path.join(dir, name), { recursive: true, force: true });
  }
}
