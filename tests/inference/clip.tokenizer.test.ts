import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadClipTokenizer } from '../../inference/clip.tokenizer.js';
import { isPictalkError } from '../../common/errors.js';

// Made by tests/fixtures/clip-tokenizer/make_fixture.py: two tokenizers trained by models/train/clip_bpe.py on a
// multilingual corpus (pad `<|endoftext|>` as SD 1.x, pad `!` as SD 2.x), and the ids that transformers 5's
// CLIPTokenizer (the class diffusers uses) gives for prompts in many scripts and emoji forms.
const FIXTURES = path.join(process.cwd(), 'tests', 'fixtures', 'clip-tokenizer');

interface Encoded { ids: number[]; length: number; full: number[] }
interface Cases {
  max_length: number;
  prompts: string[];
  tokenizers: Record<string, { version: string; class: string; results: Encoded[] }>;
}

const cases = JSON.parse(await readFile(path.join(FIXTURES, 'cases.json'), 'utf8')) as Cases;

/** A copy of a fixture tokenizer folder to break, in a temporary folder removed after the tests. */
const copies: string[] = [];
async function copyOf(name: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'clip-tok-'));
  copies.push(dir);
  await cp(path.join(FIXTURES, name), dir, { recursive: true });
  return dir;
}
afterAll(async () => { await Promise.all(copies.map((dir) => rm(dir, { recursive: true, force: true }))); });

describe.each(Object.keys(cases.tokenizers))('CLIP tokenizer parity with transformers (%s)', (name) => {
  const expected = cases.tokenizers[name]!;

  it('was made with the current class (transformers 5)', () => {
    expect(expected.class).toBe('transformers.models.clip.tokenization_clip.CLIPTokenizer');
    expect(Number(expected.version.split('.')[0])).toBeGreaterThanOrEqual(5);
  });

  it.each(cases.prompts.map((prompt, index) => [index, prompt] as const))('prompt %i %j gives transformers\' ids', async (index, prompt) => {
    const tokenizer = await loadClipTokenizer(path.join(FIXTURES, name));
    const want = expected.results[index]!;
    const tokens = tokenizer.tokenize(prompt);
    expect(tokens.map((token) => tokenizer.idOf(token))).toEqual(want.full);
    const encoded = tokenizer.encode(prompt);
    expect(encoded.ids).toBeInstanceOf(Int32Array);
    expect(Array.from(encoded.ids)).toEqual(want.ids);
    expect(encoded.length).toBe(want.length);
    expect(encoded.truncated).toBe(want.full.length > cases.max_length - 2);
  });
});

// Made by tests/fixtures/clip-tokenizer/make_fuzz.py: seeded random prompts mixing many scripts, marks, emoji forms,
// control characters and the special tokens, with transformers 5's ids for each (padded ids up to the last real token).
interface Fuzz {
  seed: number;
  prompts: string[];
  tokenizers: Record<string, { version: string; class: string; pad_id: number; results: Array<{ ids: number[]; padded_to: number; full: number[] }> }>;
}
const fuzz = JSON.parse(await readFile(path.join(FIXTURES, 'fuzz.json'), 'utf8')) as Fuzz;

describe.each(Object.keys(fuzz.tokenizers))('CLIP tokenizer parity with transformers on random prompts (%s)', (name) => {
  it(`gives transformers' ids for every one of ${fuzz.prompts.length} prompts`, async () => {
    const expected = fuzz.tokenizers[name]!;
    expect(expected.class).toBe('transformers.models.clip.tokenization_clip.CLIPTokenizer');
    const tokenizer = await loadClipTokenizer(path.join(FIXTURES, name));
    expect(tokenizer.padId).toBe(expected.pad_id);
    const differing: Array<{ index: number; prompt: string }> = [];
    fuzz.prompts.forEach((prompt, index) => {
      const want = expected.results[index]!;
      const padded = [...want.ids, ...new Array<number>(want.padded_to - want.ids.length).fill(expected.pad_id)];
      const full = tokenizer.tokenize(prompt).map((token) => tokenizer.idOf(token));
      const encoded = tokenizer.encode(prompt);
      const same = JSON.stringify(full) === JSON.stringify(want.full) && JSON.stringify(Array.from(encoded.ids)) === JSON.stringify(padded)
        && encoded.length === want.ids.length;
      if (!same) differing.push({ index, prompt });
    });
    expect(differing.slice(0, 5)).toEqual([]);
  });
});

describe('CLIP tokenizer', () => {
  it('pads with the pad token of the files, truncates keeping eos last, and says so', async () => {
    const eot = await loadClipTokenizer(path.join(FIXTURES, 'tokenizer-eot'));
    const bang = await loadClipTokenizer(path.join(FIXTURES, 'tokenizer-bang'));
    expect(eot.padId).toBe(eot.eosId);
    expect(bang.padId).toBe(0); // "!" is the first byte symbol
    const empty = bang.encode('');
    expect(Array.from(empty.ids.slice(0, 3))).toEqual([bang.bosId, bang.eosId, 0]);
    expect(empty).toMatchObject({ length: 2, truncated: false });
    const long = eot.encode('word '.repeat(100));
    expect(long.ids.length).toBe(cases.max_length);
    expect(long.ids[cases.max_length - 1]).toBe(eot.eosId);
    expect(long).toMatchObject({ length: cases.max_length, truncated: true });
  });

  it('refuses a folder with a missing file, naming the path', async () => {
    const dir = await copyOf('tokenizer-eot');
    await rm(path.join(dir, 'merges.txt'));
    await expect(loadClipTokenizer(dir)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringContaining(path.join(dir, 'merges.txt')) });
  });

  it('refuses malformed JSON and a vocabulary without its special tokens', async () => {
    const dir = await copyOf('tokenizer-eot');
    await writeFile(path.join(dir, 'tokenizer_config.json'), '{ "model_max_length": 16,');
    const error = await loadClipTokenizer(dir).catch((e: unknown) => e);
    expect(isPictalkError(error) && error.code === 'model.invalid' && error.message.includes('tokenizer_config.json')).toBe(true);

    await cp(path.join(FIXTURES, 'tokenizer-eot', 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));
    await writeFile(path.join(dir, 'vocab.json'), JSON.stringify({ a: 0, b: 1 }));
    await expect(loadClipTokenizer(dir)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringContaining('<|startoftext|>') });
  });

  it('refuses a config without a usable model_max_length', async () => {
    const dir = await copyOf('tokenizer-eot');
    await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 1e30 }));
    await expect(loadClipTokenizer(dir)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringContaining('model_max_length') });
  });
});
