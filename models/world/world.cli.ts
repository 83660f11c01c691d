/**
 * Draw a builtin-world dataset in Flickr8k's folder format.
 *
 *   npm run world -- --out data/world --count 30000 --seed 1 [--split train|val|test|compositional|all] [--force]
 *
 * With no --split (or `all`), `count` images go 80/10/10 to train/val/test and 5% more to the
 * compositional split, all in one folder.
 */
import { pathToFileURL } from 'node:url';
import { describe, isPictalkError, PictalkError } from '../../inference/errors.js';
import { SPLIT_NAMES, writeWorld, type SplitOption, type WorldOptions } from './dataset.writer.js';

export const USAGE = 'Usage: world --out DIR --count N --seed S [--split train|val|test|compositional|all] [--concurrency K] [--force]';

const SPLIT_OPTIONS: readonly string[] = [...SPLIT_NAMES, 'all'];

function integerOption(name: string, text: string | undefined, min: number, max: number): number {
  const value = text === undefined ? Number.NaN : Number(text);
  if (text === undefined || !/^-?\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new PictalkError('input.invalid', `Expected \`--${name}\` to be an integer from ${min} to ${max}, got ${describe(text)}`, { option: name });
  }
  return value;
}

/** Parse and validate the command line (without `node` and the script). */
export function parseWorldArgs(argv: readonly string[]): Omit<WorldOptions, 'onProgress'> | 'help' {
  const values = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') return 'help';
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(arg);
    if (m === null) throw new PictalkError('input.invalid', `Expected an option like \`--count\`, got ${describe(arg)}. ${USAGE}`);
    const name = m[1] as string;
    if (!['out', 'count', 'seed', 'split', 'concurrency', 'force'].includes(name)) {
      throw new PictalkError('input.invalid', `Unknown option \`--${name}\`. ${USAGE}`, { option: name });
    }
    if (values.has(name)) throw new PictalkError('input.invalid', `Option \`--${name}\` given twice`, { option: name });
    if (name === 'force') {
      if (m[2] !== undefined) throw new PictalkError('input.invalid', `Expected \`--force\` without a value, got ${describe(m[2])}`);
      values.set(name, true);
    } else if (m[2] !== undefined) {
      values.set(name, m[2]);
    } else {
      const value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) {
        throw new PictalkError('input.invalid', `Expected a value after \`--${name}\`, got ${describe(value)}`, { option: name });
      }
      values.set(name, value);
      i += 1;
    }
  }
  const text = (name: string): string | undefined => {
    const v = values.get(name);
    return typeof v === 'string' ? v : undefined;
  };
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
