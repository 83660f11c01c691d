/**
 * Content rules for prompts: not empty, not too long, nothing on the space's blocklist.
 * Blocklist patterns are moderator-edited: plain words and phrases (matched as whole words, any case), or
 * `/regex/flags` (always case-insensitive), validated when added so a bad pattern never reaches a request.
 */
import { PictalkError, describe } from '../../common/errors.js';

export const MAX_PATTERN_CHARS = 200;
const MAX_WORD_CHARS = 64;
const REGEX_FORM = /^\/(.+)\/([a-z]*)$/s;
const ALLOWED_FLAGS = new Set(['i', 'm', 's', 'u']);
const WORD_FORM = /^[\p{L}\p{N}][\p{L}\p{N}\p{M}'_ -]*$/u;
// A quantified group that itself ends in a quantifier, `(a+)+` or `(\w*)*`: the classic catastrophic backtracking.
const NESTED_QUANTIFIER = /\((?:[^()\\]|\\.)*[+*}]\)[+*{]/;

export interface BlockPattern {
  /** The normalised text that is stored and shown to moderators. */
  source: string;
  kind: 'word' | 'regex';
  regex: RegExp;
}

const escapeRegex = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Validate and compile a moderator's pattern; throws `input.invalid` saying what was expected. */
export function parseBlockPattern(input: string): BlockPattern {
  const text = typeof input === 'string' ? input.trim() : input;
  if (typeof text !== 'string' || text.length === 0) {
    throw new PictalkError('input.invalid', `Expected a blocklist pattern (a word, or /regex/), got ${describe(input)}`);
  }
  if (text.length > MAX_PATTERN_CHARS) {
    throw new PictalkError('input.too_large', `Expected a blocklist pattern of at most ${MAX_PATTERN_CHARS} characters, got ${text.length}`);
  }
  const regexForm = REGEX_FORM.exec(text);
  if (regexForm) {
    const [, body = '', flags = ''] = regexForm;
    const bad = [...flags].find((flag) => !ALLOWED_FLAGS.has(flag));
    if (bad !== undefined || new Set(flags).size !== flags.length) {
      throw new PictalkError('input.invalid', `Expected regex flags from \`imsu\` (each once), got ${describe(flags)}`);
    }
    if (NESTED_QUANTIFIER.test(body)) {
      throw new PictalkError('input.invalid', `Expected a regex without nested quantifiers like \`(a+)+\` (they can hang the bot), got ${describe(text)}`);
    }
    let regex: RegExp;
    try {
      regex = new RegExp(body, flags.includes('i') ? flags : `${flags}i`);
    } catch (error) {
      throw new PictalkError('input.invalid', `Expected a valid regular expression, got ${describe(text)}: ${(error as Error).message}`);
    }
    if (regex.test('')) {
      throw new PictalkError('input.invalid', `Expected a regex that does not match empty text (it would block everything), got ${describe(text)}`);
    }
    return { source: text, kind: 'regex', regex };
  }
  const word = text.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ');
  if (word.length > MAX_WORD_CHARS || !WORD_FORM.test(word)) {
    throw new PictalkError('input.invalid',
      `Expected a word or phrase (letters, digits, spaces, ' - _; at most ${MAX_WORD_CHARS} characters) or /regex/, got ${describe(text)}`);
  }
  const body = word.split(' ').map(escapeRegex).join('\\s+');
  return { source: word, kind: 'word', regex: new RegExp(`(?<![\\p{L}\\p{N}_])${body}(?![\\p{L}\\p{N}_])`, 'iu') };
}

/** True when any pattern matches. Stored patterns that no longer compile are skipped (they were valid when added). */
export function matchesBlocklist(text: string, patterns: readonly string[]): boolean {
  const normalised = text.normalize('NFKC');
  for (const pattern of patterns) {
    let compiled: BlockPattern;
    try {
      compiled = parseBlockPattern(pattern);
    } catch {
      continue;
    }
    if (compiled.regex.test(normalised)) return true;
  }
  return false;
}

/** Check a prompt (or negative prompt) and return it trimmed. */
export function checkPrompt(name: string, value: unknown, maxChars: number, blocklist: readonly string[], required = true): string {
  if (typeof value !== 'string') {
    throw new PictalkError('input.invalid', `Expected \`${name}\` to be text, got ${describe(value)}`);
  }
  const text = value.trim();
  if (required && text.length === 0) {
    throw new PictalkError('input.invalid', `Expected \`${name}\` to describe an image, got an empty one`);
  }
  const length = [...text].length;
  if (length > maxChars) {
    throw new PictalkError('input.too_large', `Expected \`${name}\` to be at most ${maxChars} characters, got ${length}`,
      { limit: maxChars, length });
  }
  // The matched word stays out of the message: replies can be public, and repeating it is what a blocklist prevents.
  if (text.length > 0 && matchesBlocklist(text, blocklist)) {
    throw new PictalkError('content.blocked', `\`${name}\` matches this space's blocklist`, { field: name });
  }
  return text;
}
