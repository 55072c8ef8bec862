#!/usr/bin/env node
// The `kiln` command. The TypeScript sources are compiled to dist/ by `npm ci` (prepare script).
'use strict';
const path = require('node:path');
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
