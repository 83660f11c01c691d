/**
 * The option reader of the models' command lines (`npm run world`, `npm run eval`): `--name value`, `--name=value`
 * and value-less flags, each option at most once, unknown ones refused with the usage line.
 */
import { describe, PictalkError } from '../common/errors.js';

export type OptionValues = Map<string, string | true>;

/** Reads `argv` (without `node` and the script); 'help' for `--help` / `-h`. */
export function readOptions(argv: readonly string[], spec: { known: readonly string[]; flags: readonly string[]; usage: string }): OptionValues | 'help' {
  const values: OptionValues = new Map();
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') return 'help';
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
    if (m === null) throw new PictalkError('input.invalid', `Expected an option like \`--count\`, got ${describe(arg)}. ${spec.usage}`);
    const name = m[1]!;
    if (!spec.known.includes(name)) throw new PictalkError('input.invalid', `Unknown option \`--${name}\`. ${spec.usage}`, { option: name });
    if (values.has(name)) throw new PictalkError('input.invalid', `Option \`--${name}\` given twice`, { option: name });
    if (spec.flags.includes(name)) {
      if (m[2] !== undefined) throw new PictalkError('input.invalid', `Expected \`--${name}\` without a value, got ${describe(m[2])}`);
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
  return values;
}

/** The text of a valued option, undefined when absent. */
export function optionText(values: OptionValues, name: string): string | undefined {
  const value = values.get(name);
  return typeof value === 'string' ? value : undefined;
}

/** An integer option from `min` to `max`; a missing one is an error too. */
export function integerOption(name: string, text: string | undefined, min: number, max: number): number {
  const value = text === undefined ? Number.NaN : Number(text);
  if (text === undefined || !/^-?\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new PictalkError('input.invalid', `Expected \`--${name}\` to be an integer from ${min} to ${max}, got ${describe(text)}`, { option: name });
  }
  return value;
}
