#!/usr/bin/env node
// The `pictalk` command: runs the built command line (dist/adapters/cli.js; `npm install` builds dist through `prepare`).
import { existsSync } from 'node:fs';
import process from 'node:process';
import { URL, fileURLToPath } from 'node:url';

const cli = new URL('../dist/adapters/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write('pictalk: dist/ is missing; run `npm run build` in the package folder first\n');
  process.exit(1);
}
const { run } = await import(cli.href);
await run(process.argv.slice(2));
