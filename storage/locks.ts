// Two small coordination tools, both in-process.
// KeyLock serialises the short read-old/write-new commit step per object key (last writer
// wins, never a mix). ReadPins lets a reader hold the data dirs it is reading: a data dir
// replaced by an overwrite or delete is removed only after every reader that could still
// see it has finished (invariant 1: a read during an overwrite returns the old or new object whole).

export class KeyLock {
  private tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

export class ReadPins {
  private next = 1;
  private active = new Map<string, Set<number>>();
  /** Token → start (monotonic ns), in token order: the first entry is the oldest read in flight. */
  private starts = new Map<number, bigint>();
  private waiters = new Map<number, { remaining: Set<number>; key: string; fn: () => void }>();
  private nextWaiter = 1;

  acquire(key: string): () => void {
    const token = this.next++;
    let set = this.active.get(key);
    if (!set) this.active.set(key, (set = new Set()));
    set.add(token);
    this.starts.set(token, process.hrtime.bigint());
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.starts.delete(token);
      set!.delete(token);
      if (set!.size === 0 && this.active.get(key) === set) this.active.delete(key);
      for (const [id, w] of this.waiters) {
        if (w.key !== key || !w.remaining.delete(token)) continue;
        if (w.remaining.size === 0) { this.waiters.delete(id); w.fn(); }
      }
    };
  }

  /** Run fn once every reader of `key` active right now has released. */
  afterReaders(key: string, fn: () => void): void {
    const set = this.active.get(key);
    if (!set || set.size === 0) { fn(); return; }
    this.waiters.set(this.nextWaiter++, { remaining: new Set(set), key, fn });
  }

  get pending(): number { return this.waiters.size; }

  /** When the oldest read still in flight started (process.hrtime.bigint), if any. */
  oldest(): bigint | undefined {
    for (const t of this.starts.values()) return t;
    return undefined;
  }
}
