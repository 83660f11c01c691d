#!/usr/bin/env node
// The `pictalk` command: runs the built CLI (dist/inference/cli.js; `npm install` builds dist through `prepare`).
import { existsSync } from 'node:fs';
import process from 'node:process';
import { URL, fileURLToPath } from 'node:url';

const cli = new URL('../dist/inference/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write('pictalk: dist/ is missing; run `npm run build` in the package folder first\n');
  process.exit(1);
}
const { run } = await import(cli.href);

// `pictalk start`: the bot lives in bot/ and adapters/, which inference/ may not import, so the starter is handed in
// from here: adapters/main.ts is the composition root.
async function start(argv) {
  const entry = new URL('../dist/adapters/main.js', import.meta.url);
  if (!existsSync(fileURLToPath(entry))) {
    process.stderr.write('pictalk start: the bot entry dist/adapters/main.js is not built\n');
    return 1;
  }
  const { start: startBot } = await import(entry.href);
  return startBot(argv);
}

await run(process.argv.slice(2), start);
