/**
 * Prompt weights and long prompts, as Stable Diffusion web UI (A1111) users write and expect them: `(word:1.3)`,
 * `(word)` (x 1.1), `[word]` (/ 1.1), `\(` `\)` `\[` `\]` `\\` escapes, `BREAK`; prompts longer than the text
 * encoder's window in chunks of `model_max_length - 2` tokens (75 for Stable Diffusion), each wrapped in bos/eos and
 * padded as the tokenizer pads, whose hidden states are concatenated along the sequence axis.
 *
 * The rules, and where they differ from A1111 and compel, are in models/README.md ("Prompt weights and long prompts").
 * A prompt with no emphasis that fits one chunk gives exactly the ids of `ClipTokenizer.encode`, and its hidden
 * states are not touched: plain prompts give the embeddings they always gave.
 * @see stable-diffusion-webui modules/prompt_parser.py (parse_prompt_attention), modules/sd_hijack_clip.py
 *   (tokenize_line, process_tokens), modules/sd_emphasis.py (EmphasisOriginal)
 */
import { PictalkError, describe } from '../common/errors.js';

/** The weights a prompt may give a word, after nesting multiplies them (`(x:99)` is refused). */
export const MIN_PROMPT_WEIGHT = 0;
export const MAX_PROMPT_WEIGHT = 2;
/** Most chunks one prompt may take (3 x 75 = 225 tokens for Stable Diffusion). */
export const MAX_PROMPT_CHUNKS = 3;
/** A1111's `comma_padding_backtrack` default: a full chunk moves the words after a comma this close to its end on. */
export const COMMA_BACKTRACK = 20;

const ROUND = 1.1;
const SQUARE = 1 / 1.1;

/** One stretch of text and its weight, or a `BREAK` (the next tokens start a new chunk). */
export type PromptPart = { kind: 'text'; text: string; weight: number } | { kind: 'break' };

// A1111's re_attention, alternative for alternative: escapes, a lone backslash, openers, `:weight)`, closers, text, `:`.
const ATTENTION = /\\\(|\\\)|\\\[|\\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|\]|[^\\()[\]:]+|:/gu;
const BREAK = /\s*\bBREAK\b\s*/su;
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)$/u;

const quote = (text: string): string => `\`${text.length > 40 ? `${text.slice(0, 39)}…` : text}\``;

/**
 * Split a prompt into weighted stretches as A1111's parse_prompt_attention does: `(` multiplies what follows up to
 * its `)` by 1.1, `[` ... `]` by 1/1.1, `(text:w)` by w; nesting multiplies; an opener never closed applies to the
 * rest of the prompt; a closer with nothing open, and a `:` not followed by a number and `)`, are plain text; `\`
 * escapes a bracket or a backslash, and a lone `\` is dropped. Neighbours of one weight are merged.
 * Throws `input.invalid` naming `name` for a weight that is not a number or falls outside 0 to 2.
 */
export function parsePromptWeights(text: string, name = 'prompt'): PromptPart[] {
  const parts: PromptPart[] = [];
  const round: { at: number; from: number }[] = [];   // open `(`: index into parts, index into text
  const square: number[] = [];
  const multiply = (start: number, by: number): void => {
    for (let p = start; p < parts.length; p += 1) {
      const part = parts[p]!;
      if (part.kind === 'text') part.weight *= by;
    }
  };
  const plain = (piece: string): void => {
    piece.split(BREAK).forEach((stretch, i) => {
      if (i > 0) parts.push({ kind: 'break' });
      parts.push({ kind: 'text', text: stretch, weight: 1 });
    });
  };
  for (const match of text.matchAll(ATTENTION)) {
    const token = match[0];
    const weight = match[1];
    if (token.startsWith('\\')) parts.push({ kind: 'text', text: token.slice(1), weight: 1 });
    else if (token === '(') round.push({ at: parts.length, from: match.index });
    else if (token === '[') square.push(parts.length);
    else if (weight !== undefined && round.length > 0) {
      const open = round.pop()!;
      const written = text.slice(open.from, match.index + token.length);
      if (!NUMBER.test(weight)) throw invalid(`Expected a number after \`:\` in ${quote(written)} of \`${name}\`, got ${quote(weight)}`, name);
      const value = Number(weight);
      if (!(value >= MIN_PROMPT_WEIGHT && value <= MAX_PROMPT_WEIGHT)) {
        throw invalid(`Expected the weight in ${quote(written)} of \`${name}\` to be a number from ${MIN_PROMPT_WEIGHT} to ${MAX_PROMPT_WEIGHT}, got \`${weight}\``, name);
      }
      multiply(open.at, value);
    } else if (token === ')' && round.length > 0) multiply(round.pop()!.at, ROUND);
    else if (token === ']' && square.length > 0) multiply(square.pop()!, SQUARE);
    else plain(token);
  }
  for (const open of round) multiply(open.at, ROUND);
  for (const at of square) multiply(at, SQUARE);
  if (parts.length === 0) parts.push({ kind: 'text', text: '', weight: 1 });

  // nesting multiplies: check what each stretch ends with, not only the numbers written
  for (const part of parts) {
    if (part.kind === 'text' && part.text !== '' && !(part.weight >= MIN_PROMPT_WEIGHT && part.weight <= MAX_PROMPT_WEIGHT)) {
      throw invalid(`Expected the weight of ${quote(part.text)} in \`${name}\` to be from ${MIN_PROMPT_WEIGHT} to ${MAX_PROMPT_WEIGHT} `
        + `(nested brackets multiply), got ${Number(part.weight.toFixed(4))}`, name);
    }
  }
  // merge neighbours of one weight, as A1111 does
  const merged: PromptPart[] = [];
  for (const part of parts) {
    const last = merged[merged.length - 1];
    if (part.kind === 'text' && last?.kind === 'text' && last.weight === part.weight) last.text += part.text;
    else merged.push(part.kind === 'text' ? { ...part } : part);
  }
  return merged;
}

/** The text the model reads: the stretches without their brackets and escapes, a `BREAK` as a space. */
export function promptText(parts: readonly PromptPart[]): string {
  return parts.map((part) => (part.kind === 'break' ? ' ' : part.text)).join('');
}

/** What chunking needs of the tokenizer (`ClipTokenizer` has it). */
export interface ChunkingTokenizer {
  readonly modelMaxLength: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  tokenize(text: string): string[];
  idOf(token: string): number;
  /** The id of a token in the vocabulary, undefined when it is not there. */
  tokenId(token: string): number | undefined;
}

/** A prompt as the text encoder takes it: `chunks` rows of `modelMaxLength` ids, and a weight per id. */
export interface PromptChunks {
  /** [chunks, L]: bos, up to L - 2 tokens, eos, the pad id. */
  ids: Int32Array;
  /** [chunks, L]: each id's weight (1 for bos, eos and padding); undefined when every weight is 1. */
  weights: Float32Array | undefined;
  chunks: number;
  /** The prompt's tokens, bos, eos and padding left out. */
  tokens: number;
}

/**
 * A1111's tokenize_line: each stretch tokenized on its own, the tokens laid into chunks of L - 2; a chunk that fills
 * up with a comma among its last `COMMA_BACKTRACK` tokens moves the tokens after that comma into the next chunk;
 * `BREAK` closes the chunk at once. An empty prompt is one chunk (bos, eos, padding).
 */
export function chunkPrompt(parts: readonly PromptPart[], tokenizer: ChunkingTokenizer): PromptChunks {
  const length = tokenizer.modelMaxLength;
  const room = length - 2;
  if (room < 1) throw new PictalkError('model.invalid', `Expected a tokenizer model_max_length of at least 3 to hold bos, a token and eos, got ${length}`);
  const comma = tokenizer.tokenId(',</w>');
  const rows: { ids: number[]; weights: number[] }[] = [];
  let chunk: { ids: number[]; weights: number[] } = { ids: [], weights: [] };
  let lastComma = -1;
  let tokens = 0;
  const next = (): void => {
    rows.push(chunk);
    chunk = { ids: [], weights: [] };
    lastComma = -1;
  };
  for (const part of parts) {
    if (part.kind === 'break') { next(); continue; }
    for (const token of tokenizer.tokenize(part.text)) {
      const id = tokenizer.idOf(token);
      tokens += 1;
      if (id === comma) {
        lastComma = chunk.ids.length;
      } else if (COMMA_BACKTRACK > 0 && chunk.ids.length === room && lastComma !== -1 && chunk.ids.length - lastComma <= COMMA_BACKTRACK) {
        const at = lastComma + 1;
        const moved = { ids: chunk.ids.slice(at), weights: chunk.weights.slice(at) };
        chunk.ids.length = at;
        chunk.weights.length = at;
        next();
        chunk = moved;
      }
      if (chunk.ids.length === room) next();
      chunk.ids.push(id);
      chunk.weights.push(part.weight);
    }
  }
  if (chunk.ids.length > 0 || rows.length === 0) next();

  const ids = new Int32Array(rows.length * length).fill(tokenizer.padId);
  const weights = new Float32Array(rows.length * length).fill(1);
  rows.forEach((row, r) => {
    const at = r * length;
    ids[at] = tokenizer.bosId;
    ids.set(row.ids, at + 1);
    ids[at + 1 + row.ids.length] = tokenizer.eosId;
    weights.set(row.weights, at + 1);
  });
  return { ids, weights: weights.every((w) => w === 1) ? undefined : weights, chunks: rows.length, tokens };
}

/**
 * Parse and chunk one prompt, refusing more than `maxChunks` chunks with `input.too_large`. `fixedLength` says the
 * model's UNet takes exactly one chunk (its graph fixes the text length), which the message then names.
 */
export function planPrompt(text: string, tokenizer: ChunkingTokenizer, name = 'prompt', maxChunks = MAX_PROMPT_CHUNKS, fixedLength = false): PromptChunks {
  const plan = chunkPrompt(parsePromptWeights(text, name), tokenizer);
  if (plan.chunks > maxChunks) {
    const room = tokenizer.modelMaxLength - 2;
    const message = fixedLength
      ? `Expected \`${name}\` to fit in ${room} tokens: this model's UNet takes a text of exactly ${tokenizer.modelMaxLength} positions, so it cannot take a longer prompt in chunks; got ${plan.tokens} tokens${plan.chunks > 1 && plan.tokens <= room ? ' (BREAK starts a new chunk)' : ''}`
      : `Expected \`${name}\` to fit in ${maxChunks} chunks of ${room} tokens (${maxChunks * room} tokens; BREAK and a comma near a chunk's end start a new one), got ${plan.chunks} chunks (${plan.tokens} tokens)`;
    throw new PictalkError('input.too_large', message, { limit: maxChunks * room, tokens: plan.tokens });
  }
  return plan;
}

/**
 * A1111's original emphasis on one chunk's hidden states `hidden` [L, D], in place: scale each position's vector by
 * its weight, then rescale the whole chunk so that its mean is what it was. Means are taken in float64 and the
 * products rounded to float32 (A1111 computes in the model's dtype).
 *
 * The rescale is skipped where it is ill-conditioned: when the factor falls outside [1 / largest weight, 1 / smallest
 * weight] (where it always lies when the mean does not come from values cancelling out), the chunk's mean is near 0
 * and the factor is rounding noise. A1111 would multiply the whole chunk by it (the builtin text encoder's hidden
 * states have mean ~1e-5 and a weight of 1.4 on one word gives a factor of 2.8). Returns whether it rescaled.
 */
export function applyEmphasis(hidden: Float32Array, weights: Float32Array, dim: number): boolean {
  if (hidden.length !== weights.length * dim) {
    throw new PictalkError('inference.failed', `Expected hidden states of ${weights.length} x ${dim} values for the prompt weights, got ${describe(hidden.length)}`);
  }
  let before = 0;
  for (const value of hidden) before += value;
  let after = 0;
  let least = Infinity;
  let most = 0;
  for (let t = 0; t < weights.length; t += 1) {
    const w = weights[t]!;
    least = Math.min(least, w);
    most = Math.max(most, w);
    for (let i = t * dim; i < (t + 1) * dim; i += 1) {
      hidden[i] = Math.fround(hidden[i]! * w);
      after += hidden[i]!;
    }
  }
  const scale = Math.fround(before / after);
  const slack = 1e-6;
  if (!(scale >= (1 / most) * (1 - slack) && scale <= (1 / least) * (1 + slack))) return false;
  for (let i = 0; i < hidden.length; i += 1) hidden[i] = Math.fround(hidden[i]! * scale);
  return true;
}

function invalid(message: string, name: string): PictalkError {
  return new PictalkError('input.invalid', message, { option: name });
}
