/**
 * The one text grammar for typed commands (Slack slash-command text, the terminal), derived from the option specs:
 *   /imagine a red fox --seed 7 --negative "blurry, dark" --guidance=6.5
 * Flags may come anywhere, as `--flag value` or `--flag=value` (an em dash `—`, which chat clients make of a typed
 * `--`, counts as one); the words that are not flags, in order, make the prompt. "Double", “curly” and 'single'
 * quotes keep a value whole, and a quoted `--word` is a word. Values are typed by their spec (an integer flag needs
 * an integer); ranges are checked by the same specs in validateImagineOptions, so a refusal reads the same on every
 * platform. Pure: no I/O.
 */
import { PictalkError, describe } from '../../common/errors.js';
import type { ImagineOptions } from '../types.js';
import { IMAGINE_OPTIONS, expectation, type OptionSpec } from './option.spec.js';

export interface TextToken { text: string; quoted: boolean }

/**
 * Split on whitespace, keeping "double-quoted" (with `\"` inside), “curly-quoted” (macOS and phones turn typed quotes
 * curly) and 'single-quoted' runs as one token. A quote inside a word (`cat's`) is part of the word.
 */
export function tokenizeCommand(text: string): TextToken[] {
  const tokens: TextToken[] = [];
  const pattern = /"((?:[^"\\]|\\.)*)"|“([^”]*)”|'([^']*)'(?=\s|$)|(\S+)/g;
  for (const match of text.matchAll(pattern)) {
    if (match[1] !== undefined) tokens.push({ text: match[1].replace(/\\(.)/g, '$1'), quoted: true });
    else if (match[2] !== undefined) tokens.push({ text: match[2], quoted: true });
    else if (match[3] !== undefined) tokens.push({ text: match[3], quoted: true });
    else tokens.push({ text: match[4]!, quoted: false });
  }
  return tokens;
}

const FLAG = /^(?:--|—)([A-Za-z][A-Za-z-]*)(?:=(.*))?$/s;
const looksLikeFlag = (token: TextToken | undefined): boolean => token !== undefined && !token.quoted && FLAG.test(token.text);

/** One flag's text as its spec's type; a value of the wrong type is refused in the specs' message shape. */
export function optionValue(spec: OptionSpec, raw: string, usage = ''): number | string {
  const refuse = () => new PictalkError('input.invalid',
    `Expected \`${spec.name}\` to be ${expectation(spec)}, got ${describe(raw)}${usage ? `. ${usage}` : ''}`, { option: spec.name });
  switch (spec.type) {
    case 'integer':
      if (!/^[-+]?\d+$/.test(raw.trim())) throw refuse();
      return Number(raw);
    case 'number': {
      const value = /^[-+]?(\d+\.?\d*|\.\d+)$/.test(raw.trim()) ? Number(raw) : Number.NaN;
      if (!Number.isFinite(value)) throw refuse();
      return value;
    }
    case 'choice': {
      const choice = spec.choices.find((c) => c === raw.trim().toLowerCase());
      if (choice === undefined) throw refuse();
      return choice;
    }
    case 'string':
      return raw;
  }
}

export interface ParsedFlags { words: string[]; options: Record<string, number | string> }

/**
 * The words and the flags of a command's text, for the flags of `specs` (the positional option, e.g. the prompt, is
 * not a flag). `usage` ends every message so the user sees how to type it.
 */
export function parseFlags(text: string, specs: readonly OptionSpec[], command: string, usage: string): ParsedFlags {
  const tokens = tokenizeCommand(text);
  const words: string[] = [];
  const options: Record<string, number | string> = {};
  const known = specs.map((spec) => `--${spec.name}`).join(', ');
  for (let i = 0; i < tokens.length; i += 1) {
    const token = tokens[i]!;
    const match = token.quoted ? null : FLAG.exec(token.text);
    if (!match) {
      words.push(token.text);
      continue;
    }
    const flag = match[1]!.toLowerCase();
    const spec = specs.find((s) => s.name === flag);
    if (!spec) throw new PictalkError('input.invalid', `Unknown option \`--${flag}\`; ${command} knows ${known}. ${usage}`, { option: flag });
    if (spec.name in options) throw new PictalkError('input.invalid', `The option \`--${flag}\` is given twice. ${usage}`, { option: flag });
    let raw = match[2];
    if (raw === undefined) {
      const next = tokens[i + 1];
      if (next === undefined || looksLikeFlag(next)) {
        throw new PictalkError('input.invalid', `The option \`--${flag}\` needs a value. ${usage}`, { option: flag });
      }
      raw = next.text;
      i += 1;
    }
    options[spec.name] = optionValue(spec, raw, usage);
  }
  return { words, options };
}

/** `/imagine`'s flags: every option but the prompt, which is the words. */
export const IMAGINE_FLAGS: readonly OptionSpec[] = IMAGINE_OPTIONS.filter((spec) => spec.name !== 'prompt');

export const IMAGINE_USAGE = `Usage: \`/imagine <prompt> ${IMAGINE_FLAGS.map((spec) => `[--${spec.name} ${placeholder(spec)}]`).join(' ')}\``;

function placeholder(spec: OptionSpec): string {
  switch (spec.type) {
    case 'integer': return 'N';
    case 'number': return 'X';
    case 'choice': return 'NAME';
    case 'string': return '"..."';
  }
}

/** `/imagine` text into bot/'s options; a text with flags but no prompt is refused with the usage. */
export function parseImagineText(text: string, usage: string = IMAGINE_USAGE): ImagineOptions {
  const { words, options } = parseFlags(text, IMAGINE_FLAGS, '/imagine', usage);
  const prompt = words.join(' ').trim();
  if (prompt === '') throw new PictalkError('input.invalid', `Expected a prompt to draw, got none. ${usage}`, { option: 'prompt' });
  return { prompt, ...options } as ImagineOptions;
}
