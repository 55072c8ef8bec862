// A small key-value area in the replicated index for the server's own records (access keys,
// sessions). Values are JSON; writes go through the same group commit as object metadata.
import { ObjectStore } from './object-store';
import { key, keyPrefix, prefixEnd, decodeJson, encodeJson, NS_KEYS } from './records';

export class KvArea<T> {
  constructor(private readonly store: ObjectStore, private readonly area: string) {}

  async get(id: string): Promise<T | undefined> {
    const v = await this.store.index.get(key(NS_KEYS, this.area, id));
    return v ? decodeJson<T>(v) : undefined;
  }

  async put(id: string, value: T): Promise<void> {
    await this.store.index.batch([{ type: 'put', key: key(NS_KEYS, this.area, id), value: encodeJson(value) }]);
  }

  async delete(id: string): Promise<void> {
    await this.store.index.batch([{ type: 'del', key: key(NS_KEYS, this.area, id) }]);
  }

  async list(): Promise<[string, T][]> {
    const p = keyPrefix(NS_KEYS, this.area);
    const out: [string, T][] = [];
    for await (const [k, v] of this.store.index.entries({ gte: p, lt: prefixEnd(p) })) out.push([k.toString('utf8', p.length), decodeJson<T>(v)]);
    return out;
  }
}
