// Kiln's own conformance suite (conformance/), driven by real clients against a real server:
// boto3 with its defaults and the AWS CLI. CI runs it through this file.
import t from 'tap';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { startServer } from './helpers/server';

const ROOT = path.resolve(__dirname, '..', '..');
const LIMIT_MS = 8 * 60 * 1000;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), LIMIT_MS);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

t.test('boto3 suite', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.close());
  const r = await run('python3', ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', 'conformance/boto3_suite.py'], srv.env());
  t.equal(r.code, 0, r.code === 0 ? 'boto3 suite passed' : r.out.slice(-6000));
  t.comment(r.out.trim().split('\n').slice(-1)[0] ?? '');
});

t.test('AWS CLI suite', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.close());
  const r = await run('bash', ['conformance/awscli_suite.sh'], srv.env());
  t.equal(r.code, 0, r.code === 0 ? 'AWS CLI suite passed' : r.out.slice(-6000));
  t.comment(`${(r.out.match(/^PASS /gm) ?? []).length} AWS CLI scenarios passed`);
});
