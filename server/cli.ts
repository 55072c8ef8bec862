// `kiln`: the command line. `kiln server` runs Kiln; `kiln admin` talks to a running server.
import { parseArgs } from 'node:util';
import { nativeLoaded } from '../storage/native';
import { createServer } from './app';
import { isWorker, startPrimary, startWorker } from './cluster';
import type { ObjectStore } from '../storage';
import { buildConfig, splitAddress, SETTINGS, DEFAULT_ROOT_USER, DEFAULT_ROOT_PASSWORD } from './config';
import { adminCall } from './admin-client';

const USAGE = `kiln — S3-compatible object server for AI data pipelines

Usage:
  kiln server [options]        start the server
  kiln admin <command>         manage a running server (see kiln admin --help)
  kiln --help                  this text
`;

function serverHelp(): string {
  const rows = SETTINGS.map((s) => `  --${s.flag.padEnd(15)} ${s.env.padEnd(26)} ${s.help}${s.def ? ` (default ${s.def})` : ''}`);
  return `kiln server — start Kiln

Usage: kiln server [options]

Options (flag, environment variable, meaning):
${rows.join('\n')}
  Root credentials come from KILN_ROOT_USER and KILN_ROOT_PASSWORD
  (defaults ${DEFAULT_ROOT_USER} / ${DEFAULT_ROOT_PASSWORD}: change them for anything but a laptop).
`;
}

const ADMIN_HELP = `kiln admin — manage a running Kiln server

Usage:
  kiln admin status                                  drives, layout, heal queue
  kiln admin key create --bucket NAME[:read|:readwrite] [--bucket ...] [--own-buckets] [--access-key AK] [--secret-key SK]
                                                     --own-buckets: may create buckets, full rights on those
  kiln admin key list                                access keys and their buckets
  kiln admin key delete ACCESS_KEY
  kiln admin heal                                    queue a full heal sweep

Options:
  --endpoint URL   server URL (default http://KILN_ADDRESS or http://127.0.0.1:9000)
  Credentials: KILN_ROOT_USER / KILN_ROOT_PASSWORD.
`;

async function runServer(argv: string[]): Promise<void> {
  const options = Object.fromEntries(SETTINGS.map((s) => [s.flag, { type: 'string' as const }]));
  const { values } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: false });
  if (values.help) { process.stdout.write(serverHelp()); return; }
  const config = buildConfig(values as Record<string, string | undefined>);
  const { host, port } = splitAddress(config.address);
  // Before anything opens: a stop asked for while the drives open (seconds with millions of
  // objects) or workers start waits for that, then shuts down cleanly. Node's default for the
  // signal was to kill the process, a crash to the next start (which then sweeps for orphans).
  const serving = onStop();
  if (config.workers > 1 && isWorker()) {
    const kiln = await startWorker(config);
    await kiln.app.listen({ host, port });
    serving(() => kiln.close(), (sig) => kiln.app.log.info({ signal: sig }, 'shutting down: finishing requests in flight'));
    return;
  }
  process.stdout.write(`Kiln: opening ${config.drives.length} drives (${config.drives.join(', ')})\n`);
  let store: ObjectStore;
  let stopping: boolean;
  if (config.workers > 1) {
    const primary = await startPrimary(config);
    store = primary.store;
    stopping = serving(() => primary.close(), () => undefined);
  } else {
    const kiln = await createServer(config);
    await kiln.app.listen({ host, port });
    store = kiln.store;
    stopping = serving(() => kiln.close(), (sig) => kiln.app.log.info({ signal: sig }, 'shutting down: finishing requests in flight'));
  }
  if (stopping) return;
  const scheme = config.tlsCert ? 'https' : 'http';
  const usingDefaults = !process.env.KILN_ROOT_USER && !process.env.KILN_ROOT_PASSWORD;
  process.stdout.write([
    '',
    `Kiln is serving S3 on ${scheme}://${host}:${port}`,
    `  drives:      ${config.drives.join(', ')}  (${store.set.data} data + ${store.set.parity} parity, ${config.durable ? 'durable' : 'relaxed durability'})`,
    ...(config.workers > 1 ? [`  processes:   ${config.workers} HTTP workers + this one owning the index (pid ${process.pid})`] : []),
    `  access key:  ${config.rootUser}`,
    `  secret key:  ${config.rootPassword}${usingDefaults ? '   (default: set KILN_ROOT_USER / KILN_ROOT_PASSWORD)' : ''}`,
    `  try:         AWS_ACCESS_KEY_ID=${config.rootUser} AWS_SECRET_ACCESS_KEY=${config.rootPassword} aws --endpoint-url ${scheme}://${host}:${port} s3 ls`,
    ...(nativeLoaded ? [] : ['  warning:     the native addon (storage/native) is not built: CRC32C runs in JavaScript, slower. Run `npm run native`.']),
    '',
  ].join('\n'));
}

/**
 * SIGTERM / SIGINT: finish what is in flight, then exit. Handlers go in at once; the returned
 * function is called once serving, with how to close (true: a stop that came before is under
 * way now). A second signal while start-up goes on exits at once (the operator insists; the
 * next start sweeps for orphans, as after a crash).
 */
function onStop(): (close: () => Promise<void>, announce: (sig: string) => void) => boolean {
  let asked: string | undefined;
  let stop: ((sig: string) => Promise<void>) | undefined;
  const signal = (sig: string): void => {
    if (asked) {
      if (!stop) { process.stderr.write(`kiln: ${sig} again: exiting without finishing start-up\n`); process.exit(1); }
      return;
    }
    asked = sig;
    if (stop) void stop(sig);
    else process.stderr.write(`kiln: ${sig}: stopping once start-up has finished\n`);
  };
  process.on('SIGTERM', () => signal('SIGTERM'));
  process.on('SIGINT', () => signal('SIGINT'));
  return (close, announce) => {
    stop = async (sig) => {
      announce(sig);
      try { await close(); } finally { process.exit(0); }
    };
    if (asked) void stop(asked);
    return asked !== undefined;
  };
}

async function runAdmin(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { endpoint: { type: 'string' }, bucket: { type: 'string', multiple: true }, 'own-buckets': { type: 'boolean' }, 'access-key': { type: 'string' }, 'secret-key': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help || positionals.length === 0) { process.stdout.write(ADMIN_HELP); return; }
  const endpoint = values.endpoint ?? `http://${process.env.KILN_ADDRESS ?? '127.0.0.1:9000'}`;
  const call = (method: string, path: string, body?: unknown) => adminCall(endpoint, method, path, body);
  const [cmd, sub, arg] = positionals;
  let out: unknown;
  if (cmd === 'status') out = await call('GET', 'status');
  else if (cmd === 'heal') out = await call('POST', 'heal');
  else if (cmd === 'key' && sub === 'list') out = await call('GET', 'keys');
  else if (cmd === 'key' && sub === 'delete' && arg) out = await call('DELETE', `keys/${encodeURIComponent(arg)}`);
  else if (cmd === 'key' && sub === 'create') {
    const buckets: Record<string, string> = {};
    for (const b of values.bucket ?? []) {
      const [name, access = 'readwrite'] = b.split(':');
      buckets[name] = access === 'rw' ? 'readwrite' : access === 'ro' ? 'read' : access;
    }
    out = await call('POST', 'keys', { buckets, accessKey: values['access-key'], secretKey: values['secret-key'], ownBuckets: values['own-buckets'] });
  } else {
    process.stderr.write(ADMIN_HELP);
    process.exitCode = 2;
    return;
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (cmd === 'server') return runServer(rest);
  if (cmd === 'admin') return runAdmin(rest);
  process.stdout.write(USAGE);
  if (cmd && cmd !== '--help' && cmd !== '-h' && cmd !== 'help') process.exitCode = 2;
}
