// Crash consistency: a child process writes (PUTs, multipart uploads, deletes) and is killed
// with SIGKILL at a random moment, several rounds on the same drives. After every kill the
// reopened store lists only whole objects, holds every acknowledged write byte-exact, and once
// the orphan sweep ran keeps no data dir that no object references, and nothing in tmp.
import t, { Test } from 'tap';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { existsSync } from 'node:fs';
import { ObjectStore, Multipart, ObjectRecord } from '../storage';
import { tempDrives } from './helpers/drives';
import { readObject, md5, prng, dataDirsOn, entries } from './helpers/faults';
import { NS_INLINE, NS_UPLOAD, NS_PART } from '../storage/records';

const WRITER = path.join(__dirname, 'fixtures', 'crash-writer.js');
const ROUNDS = 6;
/** Safety net only: a round that never reaches its ack count is killed after this long. */
const HARD_CAP_MS = 60_000;
const SEED = Number(process.env.KILN_CRASH_SEED ?? 7341);

type Ev = { kind: 'begin-put'; key: string; md5: string } | { kind: 'ack'; key: string; md5: string }
  | { kind: 'begin-del'; key: string } | { kind: 'del'; key: string };

interface RoundResult { events: Ev[]; acks: number; killed: boolean; code: number | null; stderr: string }

function runWriter(drives: string[], seed: number, killAfterAcks: number, extraDelayMs: number): Promise<RoundResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.NODE_OPTIONS; // no test-runner loaders in the child
    const child = spawn(process.execPath, [WRITER, JSON.stringify({ drives, seed })], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const events: Ev[] = [];
    let acks = 0;
    let killed = false;
    let pending = '';
    let stderr = '';
    const kill = () => { if (!killed) { killed = true; child.kill('SIGKILL'); } };
    const cap = setTimeout(kill, HARD_CAP_MS);
    const onLine = (line: string) => {
      const f = line.split(' ');
      if (f[0] === 'BEGIN' && f[1] === 'PUT') events.push({ kind: 'begin-put', key: f[2], md5: f[3] });
      else if (f[0] === 'BEGIN' && f[1] === 'DEL') events.push({ kind: 'begin-del', key: f[2] });
      else if (f[0] === 'ACK') events.push({ kind: 'ack', key: f[1], md5: f[2] });
      else if (f[0] === 'DEL') events.push({ kind: 'del', key: f[1] });
      else return;
      if (f[0] === 'ACK' || f[0] === 'DEL') {
        acks++;
        // The kill lands a little after the N-th acknowledgement, usually in the middle of
        // the next operation (the delay only picks the moment; no assertion depends on it).
        if (acks === killAfterAcks) setTimeout(kill, extraDelayMs);
      }
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      pending += d;
      let i: number;
      while ((i = pending.indexOf('\n')) >= 0) { onLine(pending.slice(0, i)); pending = pending.slice(i + 1); }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    // 'close' comes after the pipes are drained: every line the child wrote has been seen.
    child.on('close', (code) => { clearTimeout(cap); resolve({ events, acks, killed, code, stderr }); });
  });
}

/** The ETag a record should carry for `data`: MD5, or for multipart MD5 of the parts' MD5s + "-N". */
function expectedEtag(rec: ObjectRecord, data: Buffer): string {
  if (!rec.multipart) return md5(data);
  const h = createHash('md5');
  let off = 0;
  for (const p of rec.parts) {
    h.update(createHash('md5').update(data.subarray(off, off + p.size)).digest());
    off += p.size;
  }
  return `${h.digest('hex')}-${rec.parts.length}`;
}

async function checkStore(t: Test, drives: string[], known: Map<string, string | null>, events: Ev[], round: number): Promise<void> {
  // The killed writer took the clean marks at its start (clean-mark.ts): this start must sweep.
  t.same(drives.filter((d) => existsSync(path.join(d, '.kiln', 'clean'))), [], `round ${round}: no drive carries a clean mark after the kill`);
  const store = await ObjectStore.open({ drives });
  try {
    const list = await store.listObjects('b', { maxKeys: 100000 });
    const seen = new Map<string, string>();
    const referenced = new Set<string>();
    const inlineRefs = new Set<string>();
    for (const listed of list.objects) {
      const rec = await store.headObject('b', listed.key);
      t.same([listed.size, listed.etag, listed.mtime], [rec.size, rec.etag, rec.mtime], `round ${round}: ${rec.key} lists as it reads`);
      const data = await readObject(store, 'b', rec.key);
      t.equal(data.length, rec.size, `round ${round}: ${rec.key} has its recorded size`);
      t.equal(rec.etag, expectedEtag(rec, data), `round ${round}: ${rec.key} bytes match its ETag`);
      t.equal(rec.parts.reduce((s, p) => s + p.size, 0), rec.size);
      seen.set(rec.key, md5(data));
      for (const p of rec.parts) (p.inline ? inlineRefs : referenced).add(p.dataDir);
    }

    // Every key ends in its last acknowledged state, or in the state of the operation that
    // was in flight when the process died.
    const keys = new Set([...known.keys(), ...events.map((e) => e.key), ...seen.keys()]);
    for (const k of keys) {
      const evs = events.filter((e) => e.key === k);
      let lastAck = -1;
      evs.forEach((e, i) => { if (e.kind === 'ack' || e.kind === 'del') lastAck = i; });
      const ok = new Set<string | null>();
      if (lastAck >= 0) {
        const e = evs[lastAck];
        ok.add(e.kind === 'ack' ? e.md5 : null);
      } else ok.add(known.get(k) ?? null);
      for (const e of evs.slice(lastAck + 1)) {
        if (e.kind === 'begin-put') ok.add(e.md5);
        if (e.kind === 'begin-del') ok.add(null);
      }
      const now = seen.get(k) ?? null;
      t.ok(ok.has(now), `round ${round}: ${k} is ${now ?? 'absent'}, allowed: ${[...ok].map((x) => x ?? 'absent').join(' | ')}`);
      known.set(k, now);
    }

    // Uploads the crash interrupted are incomplete uploads: abort them, then sweep orphans.
    const mp = new Multipart(store, 1024);
    const aborted = await mp.expire(Date.now() + 1);
    const orphans = await store.collectOrphans(Date.now() + 1);
    const last = events[events.length - 1];
    t.comment(`round ${round}: ${list.objects.length} objects; killed ${last && last.kind.startsWith('begin') ? `during ${last.kind} ${last.key}` : 'between operations'}; ${aborted} uploads aborted, ${orphans} orphan dirs swept after the start-up sweep`);
    for (const d of drives) {
      const dirs = dataDirsOn(d);
      const stray = dirs.filter((x) => !referenced.has(x));
      t.same(stray, [], `round ${round}: ${path.basename(d)} holds no unreferenced data dirs`);
      const have = new Set(dirs);
      const missing = [...referenced].filter((x) => !have.has(x));
      t.same(missing, [], `round ${round}: ${path.basename(d)} holds every referenced shard`);
      t.same(entries(path.join(d, '.kiln', 'tmp')), [], `round ${round}: ${path.basename(d)} .kiln/tmp is empty`);
    }
    const leftovers: string[] = [];
    for await (const [k] of store.index.entries({})) {
      if (k[0] === NS_UPLOAD || k[0] === NS_PART) leftovers.push(k.toString('utf8'));
      if (k[0] === NS_INLINE && !inlineRefs.has(k.subarray(1).toString('utf8'))) leftovers.push(`inline ${k.subarray(1).toString('utf8')}`);
    }
    t.same(leftovers, [], `round ${round}: no upload, part or unreferenced inline entries`);
  } finally {
    await store.close();
  }
  for (const d of drives) t.same(entries(path.join(d, '.kiln', 'trash')), [], `round ${round}: ${path.basename(d)} .kiln/trash is empty after close`);
  // A quiet run (its sweep finished) marks the drives clean, so the next writer starts on marked
  // drives: its kill must leave none behind (checked at the next round's start).
  const quiet = await ObjectStore.open({ drives });
  await quiet.sweepFinished();
  await quiet.close();
  t.same(drives.filter((d) => !existsSync(path.join(d, '.kiln', 'clean'))), [], `round ${round}: a quiet run marked every drive clean`);
}

t.test(`SIGKILL during writes, ${ROUNDS} rounds on the same drives (seed ${SEED})`, async (t) => {
  const tmp = tempDrives(4, 'kiln-crash');
  t.teardown(tmp.cleanup);
  const rnd = prng(SEED);
  const known = new Map<string, string | null>();
  let totalAcks = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const killAfter = 3 + Math.floor(rnd() * 28); // 3..30 acknowledged operations
    const delay = Math.floor(rnd() * 40);
    const r = await runWriter(tmp.drives, SEED * 100 + round, killAfter, delay);
    const left = tmp.drives.reduce((n, d) => n + entries(path.join(d, '.kiln', 'tmp')).length, 0);
    t.comment(`round ${round}: ${left} half-written tmp dirs left by the kill`);
    t.ok(r.killed, `round ${round}: writer was killed (after ${r.acks} acks, aimed at ${killAfter} + ${delay} ms)`);
    t.equal(r.code, null, `round ${round}: writer did not exit on its own${r.stderr ? `: ${r.stderr}` : ''}`);
    t.ok(r.acks >= Math.min(killAfter, 3), `round ${round}: writer acknowledged writes before the kill`);
    totalAcks += r.acks;
    await checkStore(t, tmp.drives, known, r.events, round);
  }
  t.ok(totalAcks >= ROUNDS * 3, `${totalAcks} acknowledged operations over all rounds`);
});
