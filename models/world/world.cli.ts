/**
 * Draw a builtin-world dataset in Flickr8k's folder format.
 *
 *   npm run world -- --out data/world --count 30000 --seed 1 [--split train|val|test|compositional|all] [--force]
 *
 * With no --split (or `all`), `count` images go 80/10/10 to train/val/test and 5% more to the
 * compositional split, all in one folder.
 */
import { pathToFileURL } from 'node:url';
import { describe, isPictalkError, PictalkError } from '../../common/errors.js';
import { integerOption, optionText, readOptions } from '../cli-options.js';
import { SPLIT_NAMES, writeWorld, type SplitOption, type WorldOptions } from './dataset.writer.js';

export const USAGE = 'Usage: world --out DIR --count N --seed S [--split train|val|test|compositional|all] [--concurrency K] [--force]';

const SPLIT_OPTIONS: readonly string[] = [...SPLIT_NAMES, 'all'];

/** Parse and validate the command line (without `node` and the script). */
export function parseWorldArgs(argv: readonly string[]): Omit<WorldOptions, 'onProgress'> | 'help' {
  const values = readOptions(argv, { known: ['out', 'count', 'seed', 'split', 'concurrency', 'force'], flags: ['force'], usage: USAGE });
  if (values === 'help') return 'help';
  const text = (name: string): string | undefined => optionText(values, name);
  const out = text('out');
  if (out === undefined || out.trim() === '') throw new PictalkError('input.invalid', `Expected \`--out DIR\`, got ${describe(out)}. ${USAGE}`);
  const count = integerOption('count', text('count'), 1, 10_000_000);
  const seed = integerOption('seed', text('seed'), 0, 2 ** 32 - 1);
  const split = text('split') ?? 'all';
  if (!SPLIT_OPTIONS.includes(split)) {
    throw new PictalkError('input.invalid', `Expected \`--split\` to be one of ${SPLIT_OPTIONS.join(', ')}, got ${describe(split)}`, { option: 'split' });
  }
  const concurrency = values.has('concurrency') ? integerOption('concurrency', text('concurrency'), 1, 256) : undefined;
  return { out, count, seed, split: split as SplitOption, force: values.get('force') === true, ...(concurrency === undefined ? {} : { concurrency }) };
}

export async function main(argv: readonly string[]): Promise<number> {
  let options: ReturnType<typeof parseWorldArgs>;
  try {
    options = parseWorldArgs(argv);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const started = Date.now();
  let lastReport = started;
  const onProgress = (done: number, total: number): void => {
    const now = Date.now();
    if (done === total || now - lastReport >= 1000) {
      lastReport = now;
      const rate = done / Math.max(0.001, (now - started) / 1000);
      process.stderr.write(`world: ${done}/${total} images (${rate.toFixed(0)}/s)\n`);
    }
  };
  let summary: Awaited<ReturnType<typeof writeWorld>>;
  try {
    summary = await writeWorld({ ...options, onProgress });
  } catch (error) {
    // pictalk's own errors are the user's to fix (a used folder): a message, not a stack
    if (!isPictalkError(error)) throw error;
    process.stderr.write(`${error.message}\n`);
    return 2;
  }
  const counts = Object.entries(summary.counts).filter(([, n]) => n > 0).map(([s, n]) => `${s} ${n}`).join(', ');
  process.stdout.write(`Wrote ${summary.images} images (${counts}) to ${summary.out} in ${summary.seconds.toFixed(1)} s\n`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
