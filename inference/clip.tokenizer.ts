/**
 * CLIP's byte-level BPE tokenizer, reading a diffusers `tokenizer/` folder (vocab.json, merges.txt,
 * special_tokens_map.json, tokenizer_config.json) and giving the ids that transformers' current `CLIPTokenizer`
 * gives (transformers 5.x, backed by the tokenizers library: the class diffusers uses, which matches OpenAI's CLIP
 * tokenizer on CJK text), padded as Stable Diffusion pipelines call it:
 * `tokenizer(prompt, padding="max_length", max_length=model_max_length, truncation=True)`.
 *
 * The steps are the tokenizers library's: added (special) tokens are split out first, on the raw text or, for tokens
 * marked `normalized`, on the normalized text; the normalizer is NFC, each whitespace run to one space, lower case;
 * the pre-tokenizer keeps CLIP's regex matches (letter runs, single digits, symbol runs, English contractions) and
 * drops the rest; each word is byte-mapped and merged by BPE with `</w>` on its last symbol.
 *
 * No npm tokenizer fits: @huggingface/tokenizers wants a `tokenizer.json`, which diffusers folders do not carry.
 * @see transformers/models/clip/tokenization_clip.py (v5), tokenizers' added_vocabulary.rs, normalizers, bpe
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PictalkError, describe } from '../common/errors.js';

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

// Oniguruma's `\s`, the whitespace of the class's `Replace(Regex(r"\s+"), " ")` and of its split regex. JavaScript's
// `\s` differs: it takes U+FEFF and leaves out U+0085.
const WHITESPACE = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WHITESPACE_RUN = new RegExp(`[${WHITESPACE}]+`, 'gu');
// The class's split regex (case-sensitive: it runs after lower-casing): special tokens, English contractions,
// letter runs, single digits, runs of anything else but whitespace.
const WORD_PATTERN = new RegExp(`<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^${WHITESPACE}\\p{L}\\p{N}]+`, 'gu');
// The byte-level pre-tokenizer then splits each match again with GPT-2's regex (`use_regex`); only the two literal
// special-token alternatives change: `<|endoftext|>` becomes `<|`, `endoftext`, `|>`.
const BYTE_LEVEL_PATTERN = new RegExp(`'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WHITESPACE}\\p{L}\\p{N}]+|[${WHITESPACE}]+`, 'gu');
// The named special tokens, in the order transformers registers them: a later one sets the flags of a token it shares.
const SPECIAL_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;
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
  private readonly rawSpecialTokens: string[];          // longest first, matched on the raw text
  private readonly normalizedSpecialTokens: string[];   // longest first, matched on the normalized text
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
    // transformers 5 reads every merge line (no cap) after the `#version` header; a repeated pair keeps its last rank
    let rank = 0;
    files.merges.split('\n').forEach((line, index) => {
      if (line.startsWith('#version')) return;
      const parts = line.split(/\s+/).filter(Boolean);
      if (parts.length === 0) return;
      if (parts.length !== 2) throw invalid(`Expected line ${index + 1} of ${where('merges.txt')} to hold two symbols, got ${describe(line)}`, where('merges.txt'));
      this.ranks.set(`${parts[0]} ${parts[1]}`, rank++);
    });

    // The named special tokens and their `normalized` flags, as transformers 5's from_pretrained settles them: with an
    // `added_tokens_decoder` in tokenizer_config.json, its entries; without one, special_tokens_map.json over
    // tokenizer_config.json, where an object keeps its flag (default false) and a plain string is not normalized.
    const config = asObject(files.tokenizerConfig, where('tokenizer_config.json'));
    const map = asObject(files.specialTokensMap, where('special_tokens_map.json'));
    const addedDecoder = config.added_tokens_decoder;
    const declared = new Map<string, boolean>(); // content -> normalized
    if (typeof addedDecoder === 'object' && addedDecoder !== null) {
      for (const entry of Object.values(addedDecoder)) {
        const token = addedToken(entry, where('tokenizer_config.json'), 'added_tokens_decoder');
        if (token) declared.set(token.content, token.normalized ?? !(token.special ?? false)); // AddedToken's default
      }
    }
    const named = new Map<string, AddedToken>();
    for (const key of SPECIAL_KEYS) {
      const fromConfig = addedToken(config[key], where('tokenizer_config.json'), key);
      const fromMap = declared.size === 0 ? addedToken(map[key], where('special_tokens_map.json'), key) : undefined;
      const token = fromMap ?? fromConfig;
      if (token) named.set(key, token);
    }
    const text = (key: string, fallback: string) => named.get(key)?.content ?? fallback;
    const bos = text('bos_token', '<|startoftext|>');
    const eos = text('eos_token', '<|endoftext|>');
    const unk = text('unk_token', '<|endoftext|>');
    const pad = text('pad_token', '<|endoftext|>');
    const idOf = (token: string, key: string) => {
      const id = this.vocab.get(token);
      if (id === undefined) throw invalid(`Expected the ${key} ${JSON.stringify(token)} to be in ${where('vocab.json')}`, where('vocab.json'));
      return id;
    };
    this.bosId = idOf(bos, 'bos_token');
    this.eosId = idOf(eos, 'eos_token');
    this.unkId = idOf(unk, 'unk_token');
    this.padId = idOf(pad, 'pad_token');
    const flags = new Map(declared);
    for (const token of named.values()) {
      // a named token that the decoder declares is that very token; otherwise the later name sets its flag
      flags.set(token.content, declared.has(token.content) ? declared.get(token.content)! : (token.normalized ?? false));
    }
    const byLength = (a: string, b: string) => b.length - a.length;
    const usable = [...flags].filter(([content]) => content.length > 0);
    this.rawSpecialTokens = usable.filter(([, normalized]) => !normalized).map(([content]) => content).sort(byLength);
    this.normalizedSpecialTokens = usable.filter(([, normalized]) => normalized).map(([content]) => normalize(content)).sort(byLength);

    const maxLength = config.model_max_length;
    if (!Number.isInteger(maxLength) || (maxLength as number) < 2 || (maxLength as number) > 4096) {
      throw invalid(`Expected model_max_length in ${where('tokenizer_config.json')} to be an integer from 2 to 4096, got ${describe(maxLength)}`, where('tokenizer_config.json'));
    }
    this.modelMaxLength = maxLength as number;
  }

  /** The prompt's BPE tokens (strings like `cat</w>`), without bos/eos, before truncation. */
  tokenize(text: string): string[] {
    const tokens: string[] = [];
    for (const raw of splitOn(text, this.rawSpecialTokens)) {
      if (raw.special) { tokens.push(raw.text); continue; }
      for (const piece of splitOn(normalize(raw.text), this.normalizedSpecialTokens)) {
        if (piece.special) { tokens.push(piece.text); continue; }
        for (const match of piece.text.matchAll(WORD_PATTERN)) {
          const words = match[0].startsWith('<|') ? Array.from(match[0].matchAll(BYTE_LEVEL_PATTERN), (m) => m[0]) : [match[0]];
          for (const word of words) {
            let mapped = '';
            for (const byte of this.utf8.encode(word)) mapped += BYTE_TO_CHAR[byte];
            tokens.push(...this.bpe(mapped));
          }
        }
      }
    }
    return tokens;
  }

  /** A token's id (the unknown token's for one outside the vocabulary). */
  idOf(token: string): number {
    return this.vocab.get(token) ?? this.unkId;
  }

  /** A token's id, or undefined when the vocabulary lacks it (prompt chunking looks up `,</w>` this way). */
  tokenId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  /** The prompt's ids, padded to `modelMaxLength` (truncation keeps bos first and eos last). */
  encode(text: string): EncodedPrompt {
    const tokenIds = this.tokenize(text).map((token) => this.idOf(token));
    const room = this.modelMaxLength - 2;
    const kept = Math.min(tokenIds.length, room);
    const ids = new Int32Array(this.modelMaxLength).fill(this.padId);
    ids[0] = this.bosId;
    for (let i = 0; i < kept; i++) ids[i + 1] = tokenIds[i]!;
    ids[kept + 1] = this.eosId;
    return { ids, length: kept + 2, truncated: tokenIds.length > room };
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
 * The class's normalizer: NFC, each whitespace run to one space, then lower case one character at a time (Rust's
 * `char::to_lowercase`, so a final capital sigma becomes `σ`, not the `ς` that `String.prototype.toLowerCase`
 * picks from context). Control and format characters are kept; the byte-level BPE encodes them.
 */
function normalize(text: string): string {
  const spaced = text.normalize('NFC').replace(WHITESPACE_RUN, ' ');
  if (!spaced.includes('\u03a3')) return spaced.toLowerCase(); // final sigma is toLowerCase's only context rule
  let out = '';
  for (const ch of spaced) out += ch.toLowerCase();
  return out;
}

/** Split `text` around the tokens (longest first), leftmost-longest, as the tokenizers library's added vocabulary. */
function splitOn(text: string, tokens: readonly string[]): { text: string; special: boolean }[] {
  if (tokens.length === 0 || text.length === 0) return text.length === 0 ? [] : [{ text, special: false }];
  const pieces: { text: string; special: boolean }[] = [];
  let start = 0;
  for (let i = 0; i < text.length;) {
    const token = tokens.find((t) => text.startsWith(t, i));
    if (token === undefined) { i++; continue; }
    if (i > start) pieces.push({ text: text.slice(start, i), special: false });
    pieces.push({ text: token, special: true });
    i += token.length;
    start = i;
  }
  if (start < text.length) pieces.push({ text: text.slice(start), special: false });
  return pieces;
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

interface AddedToken { content: string; normalized?: boolean; special?: boolean }

/** A special token is a string or an AddedToken object `{ content, normalized?, special? }`; absent gives undefined. */
function addedToken(value: unknown, file: string, key: string): AddedToken | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return { content: value, normalized: false };
  if (typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    const { content, normalized, special } = value as { content: string; normalized?: unknown; special?: unknown };
    return {
      content,
      ...(typeof normalized === 'boolean' ? { normalized } : {}),
      ...(typeof special === 'boolean' ? { special } : {}),
    };
  }
  throw invalid(`Expected ${key} in ${file} to be a string or an object with a content string, got ${describe(value)}`, file);
}
