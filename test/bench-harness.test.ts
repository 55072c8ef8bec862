// The HTTP benchmark must keep working: a tiny run (fractions of a second per cell, no timing
// asserted) against Kiln and the minimal Node server, through the same lean SigV4 client,
// must report every cell without errors and clean up after itself.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

t.test('npm run bench, in miniature', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-bench-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'table.md');
  execFileSync(process.execPath, [path.join(__dirname, '..', 'bench', 'http', 'run.js'),
    '--targets', 'kiln,node-file', '--scenarios', 'put-4k,get-4k,get-1m,range-8m,list-1000,mixed-1m', '--seconds', '0.3',
    '--list-keys', '1200', '--rounds', '1', '--no-drive', '--dir', dir, '--out', out], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
  const md = readFileSync(out, 'utf8');
  const rows = md.split('\n').filter((l) => /^\| .* \| (kiln|node-file) \|/.test(l));
  const cell = (scenario: string, target: string) => rows.find((r) => r.startsWith(`| ${scenario}`) && r.includes(`| ${target} |`));
  for (const [scenario, targets] of [['PUT 4 KiB', ['kiln', 'node-file']], ['GET 4 KiB', ['kiln', 'node-file']], ['GET 1 MiB', ['kiln', 'node-file']],
    ['GET 8 MiB ranges', ['kiln', 'node-file']], ['ListObjectsV2', ['kiln']], ['mixed 1 MiB', ['kiln', 'node-file']]] as const) {
    for (const target of targets) {
      const row = cell(scenario, target);
      t.ok(row, `${scenario} on ${target} is reported`);
      const cols = row!.split('|').map((c) => c.trim());
      t.ok(Number(cols[3].replace(/,/g, '')) > 0, `${scenario} on ${target}: some operations completed`);
      t.equal(cols[8], '0', `${scenario} on ${target}: no errors`);
    }
  }
  t.match(md, /\| kiln \/ node-file ops\/s \| [0-9.]+ \|/, 'the ratio against the reference is printed');
  t.same(readdirSync(dir).filter((f) => f.startsWith('kiln-bench-')), [], 'the run removed its data');
});

t.test('the load from several client processes (--client-procs), node-mem reference', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-bench-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'table.md');
  execFileSync(process.execPath, [path.join(__dirname, '..', 'bench', 'http', 'run.js'),
    '--targets', 'kiln,node-mem', '--scenarios', 'put-4k,get-4k,range-8m', '--seconds', '0.3', '--warmup', '0.1',
    '--rounds', '1', '--no-drive', '--client-procs', '3', '--dir', dir, '--out', out], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
  const md = readFileSync(out, 'utf8');
  for (const scenario of ['PUT 4 KiB', 'GET 4 KiB', 'GET 8 MiB ranges']) {
    for (const target of ['kiln', 'node-mem']) {
      const row = md.split('\n').find((r) => r.startsWith(`| ${scenario}`) && r.includes(`| ${target} |`));
      t.ok(row, `${scenario} on ${target} is reported`);
      const cols = row!.split('|').map((c) => c.trim());
      t.ok(Number(cols[3].replace(/,/g, '')) > 0, `${scenario} on ${target}: some operations completed`);
      t.equal(cols[8], '0', `${scenario} on ${target}: no errors`);
    }
  }
  t.match(md, /\| GET 4 KiB \| kiln \/ node-mem ops\/s \| [0-9.]+ \|/, 'the ratio against Node\'s ceiling is printed');
});

t.test('listing A/B (list-ab.js), in miniature: keys PUT once, each server restarted on them, tokens followed', async (t) => {
  const root = path.join(__dirname, '..', '..');
  const before = new Set(readdirSync(tmpdir()).filter((f) => f.startsWith('kiln-list-ab-')));
  const md = execFileSync(process.execPath, [path.join(__dirname, '..', 'bench', 'http', 'list-ab.js'),
    '--servers', `${root},${root}/.`, '--keys', '1500', '--rounds', '1', '--seconds', '0.5', '--wait', '0'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });
  const rows = md.split('\n').filter((l) => l.startsWith(`| ${root}`));
  t.equal(rows.length, 2, 'one row per server');
  for (const r of rows) t.ok(Number(r.split('|')[2].trim()) > 0, 'pages were listed');
  t.same(readdirSync(tmpdir()).filter((f) => f.startsWith('kiln-list-ab-') && !before.has(f)), [], 'the run removed its data');
});
