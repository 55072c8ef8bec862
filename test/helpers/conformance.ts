// Runs one of the real-client conformance suites (conformance/) as a child process against a
// test server, with a bounded time: past it the child's whole process group is killed.
import { spawn } from 'node:child_process';
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const SUITE_LIMIT_MS = 7 * 60 * 1000;

export interface SuiteRun { code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; out: string }

export function runSuite(cmd: string, args: string[], env: NodeJS.ProcessEnv, limitMs = SUITE_LIMIT_MS): Promise<SuiteRun> {
  return new Promise((resolve) => {
    // Its own process group, so a timeout also ends what it started (aws, pytest workers).
    const child = spawn(cmd, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const killGroup = () => {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
    };
    const timer = setTimeout(() => { timedOut = true; killGroup(); }, limitMs);
    const onExit = () => killGroup();
    process.once('exit', onExit);
    child.on('error', (e) => { out += `\nspawn ${cmd}: ${e.message}\n`; });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      process.removeListener('exit', onExit);
      resolve({ code, signal, timedOut, out });
    });
  });
}

/** The last `n` lines of a child's output, for a failure message. */
export function tail(out: string, n: number): string {
  return out.trimEnd().split('\n').slice(-n).join('\n');
}
