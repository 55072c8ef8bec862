#!/usr/bin/env node
// The `kiln` command. The TypeScript sources are compiled to dist/ by `npm ci` (prepare script).
'use strict';
const path = require('node:path');
// Reed-Solomon, fs and fsync all run on libuv's pool; its default of 4 threads would queue
// shard writes of concurrent requests behind each other. Must be set before first use.
// (KILN_POOL_DEFAULT tells --workers that the size was not chosen by the user: it shares it out.)
if (!process.env.UV_THREADPOOL_SIZE) { process.env.UV_THREADPOOL_SIZE = '16'; process.env.KILN_POOL_DEFAULT = '1'; }
let cli;
try {
  cli = require(path.join(__dirname, '..', 'dist', 'server', 'cli.js'));
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND') {
    process.stderr.write('kiln: not built yet; run `npm ci` (or `npm run build`) first\n');
    process.exit(1);
  }
  throw e;
}
cli.main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`kiln: ${err && err.message ? err.message : err}\n`);
  process.exit(1);
});
