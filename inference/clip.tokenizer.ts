/**
 * CLIP's byte-level BPE tokenizer, reading a diffusers `tokenizer/` folder (vocab.json, merges.txt,
 * special_tokens_map.json, tokenizer_config.json) and giving the ids that Hugging Face's Python `CLIPTokenizer`
 * gives (its pure-Python class, on the path it takes when `ftfy` is absent), padded as Stable Diffusion pipelines
 * call it: `tokenizer(prompt, padding="max_length", max_length=model_max_length, truncation=True)`.
 *
 * No npm tokenizer fits: @huggingface/tokenizers wants a `tokenizer.json`, which diffusers folders do not carry, and
 * its CLIP normalizer differs from the Python class on control characters and CJK text.
 * @see transformers/models/clip/tokenization_clip.py (v4) and tokenization_utils.py (BasicTokenizer helpers)
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PictalkError, describe } from './errors.js';

export interface EncodedPrompt {
  /** [modelMaxLength]: bos, the prompt's tokens (truncated to fit), eos, then the pad id. */
  ids: Int32Array;
  /** Tokens before the padding, bos and eos included: the attention length. */
  length: number;
  /** Whether the prompt lost tokens to fit modelMaxLength. */
  truncated: boolean;
}

/** The four files, parsed; `loadClipTokenizer` reads them from a folder. */
export interface ClipTokenizerFiles {
  vocab: unknown;             // vocab.json: { token: id }
  merges: string;             // merges.txt, with its `#version` header line
  specialTokensMap: unknown;  // special_tokens_map.json
  tokenizerConfig: unknown;   // tokenizer_config.json
}

// The regex of the Python class: special tokens, English contractions, letter runs, single digits, other runs.
const WORD_PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+/giu;
// Python's slow class reads at most this many merges (49152 - 256 - 2), after skipping the header line.
const MAX_MERGES = 49152 - 256 - 2;
const CACHE_LIMIT = 20_000;

/** GPT-2's reversible map from the 256 bytes to printable characters (space becomes `Ġ`). */
const BYTE_TO_CHAR: readonly string[] = (() => {
  const table = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCharCode(printable ? b : 256 + extra++);
  }
  return table;
})();

export class ClipTokenizer {
  readonly modelMaxLength: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  private readonly unkId: number;
  private readonly vocab: Map<string, number>;
  private readonly ranks = new Map<string, number>();   // "first second" -> merge rank
  private readonly specialTokens: string[];             // longest first, matched before any cleaning
  private readonly cache = new Map<string, string[]>();
  private readonly utf8 = new TextEncoder();

  constructor(files: ClipTokenizerFiles, source = 'tokenizer') {
    const where = (name: string) => path.join(source, name);
    if (typeof files.vocab !== 'object' || files.vocab === null || Array.isArray(files.vocab)) {
      throw invalid(`Expected ${where('vocab.json')} to hold an object of token ids, got ${describe(files.vocab)}`, where('vocab.json'));
    }
    this.vocab = new Map();
    for (const [token, id] of Object.entries(files.vocab)) {
      if (!Number.isInteger(id) || (id as number) < 0) {
        throw invalid(`Expected the id of ${JSON.stringify(token)} in ${where('vocab.json')} to be a non-negative integer, got ${describe(id)}`, where('vocab.json'));
      }
      this.vocab.set(token, id as number);
    }
    const lines = files.merges.trim().split('\n').slice(1, 1 + MAX_MERGES);
    lines.forEach((line, rank) => {
      const parts = line.split(/\s+/).filter(Boolean);
      if (parts.length === 0) return;
      if (parts.length !== 2) throw invalid(`Expected line ${rank + 2} of ${where('merges.txt')} to hold two symbols, got ${describe(line)}`, where('merges.txt'));
      this.ranks.set(`${parts[0]} ${parts[1]}`, rank); // a repeated pair keeps its last rank, as Python's dict(zip()) does
    });

    // special_tokens_map.json overrides tokenizer_config.json, as transformers' from_pretrained does.
    const config = asObject(files.tokenizerConfig, where('tokenizer_config.json'));
    const map = asObject(files.specialTokensMap, where('special_tokens_map.json'));
    const special = (key: string, fallback: string) => tokenText(map[key], where('special_tokens_map.json'), key)
      ?? tokenText(config[key], where('tokenizer_config.json'), key) ?? fallback;
    const bos = special('bos_token', '<|startoftext|>');
    const eos = special('eos_token', '<|endoftext|>');
    const unk = special('unk_token', '<|endoftext|>');
    const pad = special('pad_token', '<|endoftext|>');
    const idOf = (token: string, key: string) => {
      const id = this.vocab.get(token);
      if (id === undefined) throw invalid(`Expected the ${key} ${JSON.stringify(token)} to be in ${where('vocab.json')}`, where('vocab.json'));
      return id;
    };
    this.bosId = idOf(bos, 'bos_token');
    this.eosId = idOf(eos, 'eos_token');
    this.unkId = idOf(unk, 'unk_token');
    this.padId = idOf(pad, 'pad_token');
    const added = config.added_tokens_decoder;
    const addedTexts = typeof added === 'object' && added !== null
      ? Object.values(added).map((entry) => tokenText(entry, where('tokenizer_config.json'), 'added_tokens_decoder')).filter((t): t is string => t !== undefined)
      : [];
    this.specialTokens = [...new Set([bos, eos, unk, pad, ...addedTexts])].filter((t) => this.vocab.has(t)).sort((a, b) => b.length - a.length);

    const maxLength = config.model_max_length;
    if (!Number.isInteger(maxLength) || (maxLength as number) < 2 || (maxLength as number) > 4096) {
      throw invalid(`Expected model_max_length in ${where('tokenizer_config.json')} to be an integer from 2 to 4096, got ${describe(maxLength)}`, where('tokenizer_config.json'));
    }
    this.modelMaxLength = maxLength as number;
  }

  /** The prompt's BPE tokens (strings like `cat</w>`), without bos/eos, before truncation. */
  tokenize(text: string): string[] {
    const tokens: string[] = [];
    for (const piece of this.splitOnSpecialTokens(text)) {
      if (piece.special) { tokens.push(piece.text); continue; }
      for (const match of basicClean(piece.text).matchAll(WORD_PATTERN)) {
        let mapped = '';
        for (const byte of this.utf8.encode(match[0])) mapped += BYTE_TO_CHAR[byte];
        tokens.push(...this.bpe(mapped));
      }
    }
    return tokens;
  }

  /** The prompt's ids, padded to `modelMaxLength` (truncation keeps bos first and eos last). */
  encode(text: string): EncodedPrompt {
    const tokenIds = this.tokenize(text).map((token) => this.vocab.get(token) ?? this.unkId);
    const room = this.modelMaxLength - 2;
    const kept = Math.min(tokenIds.length, room);
    const ids = new Int32Array(this.modelMaxLength).fill(this.padId);
    ids[0] = this.bosId;
    for (let i = 0; i < kept; i++) ids[i + 1] = tokenIds[i]!;
    ids[kept + 1] = this.eosId;
    return { ids, length: kept + 2, truncated: tokenIds.length > room };
  }

  /** Split the raw text around special tokens (transformers matches added tokens before any cleaning). */
  private splitOnSpecialTokens(text: string): { text: string; special: boolean }[] {
    const pieces: { text: string; special: boolean }[] = [];
    let start = 0;
    for (let i = 0; i < text.length;) {
      const token = this.specialTokens.find((t) => text.startsWith(t, i));
      if (token === undefined) { i++; continue; }
      if (i > start) pieces.push({ text: text.slice(start, i), special: false });
      pieces.push({ text: token, special: true });
      i += token.length;
      start = i;
    }
    if (start < text.length) pieces.push({ text: text.slice(start), special: false });
    return pieces;
  }

  /** Byte-level BPE of one word, `</w>` on its last symbol; lowest merge rank first, all its occurrences at once. */
  private bpe(token: string): string[] {
    const cached = this.cache.get(token);
    if (cached) return cached;
    let word = token.split(''); // byte-mapped text: every character is in the BMP
    word[word.length - 1] += '</w>';
    while (word.length > 1) {
      let best = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i < word.length - 1; i++) {
        const rank = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (rank !== undefined && rank < best) { best = rank; first = word[i]!; second = word[i + 1]!; }
      }
      if (best === Infinity) break;
      const merged: string[] = [];
      for (let i = 0; i < word.length;) {
        if (word[i] === first && i < word.length - 1 && word[i + 1] === second) { merged.push(first + second); i += 2; }
        else { merged.push(word[i]!); i += 1; }
      }
      word = merged;
    }
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(token, word);
    return word;
  }
}

/** Read and parse the four files of a `tokenizer/` folder. */
export async function loadClipTokenizer(dir: string): Promise<ClipTokenizer> {
  const read = async (name: string) => {
    const file = path.join(dir, name);
    try {
      return await readFile(file, 'utf8');
    } catch (error) {
      throw new PictalkError('model.invalid', `Expected the tokenizer file ${file}, could not read it: ${(error as Error).message}`, { path: file }, { cause: error });
    }
  };
  const readJson = async (name: string) => {
    const text = await read(name);
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      const file = path.join(dir, name);
      throw new PictalkError('model.invalid', `Expected ${file} to be JSON: ${(error as Error).message}`, { path: file }, { cause: error });
    }
  };
  const [vocab, merges, specialTokensMap, tokenizerConfig] = await Promise.all([
    readJson('vocab.json'), read('merges.txt'), readJson('special_tokens_map.json'), readJson('tokenizer_config.json'),
  ]);
  return new ClipTokenizer({ vocab, merges, specialTokensMap, tokenizerConfig }, dir);
}

/**
 * The Python class's cleaning without ftfy (BasicTokenizer with strip_accents=False, no punctuation split):
 * drop NUL, U+FFFD and control/format characters; whitespace to spaces; spaces around CJK ideographs; NFC;
 * split on whitespace; lower-case each word; join with single spaces.
 */
function basicClean(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || /\p{Zs}/u.test(ch)) out += ' ';
    else if (cp === 0 || cp === 0xfffd || /\p{C}/u.test(ch)) continue;
    else if (isCjk(cp)) out += ` ${ch} `;
    else out += ch;
  }
  return out.normalize('NFC').split(/\s+/).filter(Boolean).map((word) => word.toLowerCase()).join(' ');
}

function isCjk(cp: number): boolean {
  return (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x20000 && cp <= 0x2a6df)
    || (cp >= 0x2a700 && cp <= 0x2b73f) || (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b820 && cp <= 0x2ceaf)
    || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f);
}

function invalid(message: string, file: string): PictalkError {
  return new PictalkError('model.invalid', message, { path: file });
}

function asObject(value: unknown, file: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(`Expected ${file} to hold a JSON object, got ${describe(value)}`, file);
  }
  return value as Record<string, unknown>;
}

/** A special token is a string or an AddedToken object `{ content: "..." }`; absent gives undefined. */
function tokenText(value: unknown, file: string, key: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') return (value as { content: string }).content;
  throw invalid(`Expected ${key} in ${file} to be a string or an object with a content string, got ${describe(value)}`, file);
}
