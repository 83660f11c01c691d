import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadClipTokenizer } from '../../inference/clip.tokenizer.js';
import { isPictalkError } from '../../inference/errors.js';

// Made by tests/fixtures/clip-tokenizer/make_fixture.py: tokenizers trained by models/train/clip_bpe.py, ids from
// transformers 4's pure-Python CLIPTokenizer ("slow") and transformers 5's tokenizers-backed one ("fast").
const FIXTURES = path.join(process.cwd(), 'tests', 'fixtures', 'clip-tokenizer');

interface Encoded { ids: number[]; length: number }
interface Cases {
  max_length: number;
  prompts: string[];
  tokenizers: Record<string, { slow: { results: Encoded[] }; fast: { results: Encoded[] }; slow_fast_differ: number[] }>;
}

const cases = JSON.parse(await readFile(path.join(FIXTURES, 'cases.json'), 'utf8')) as Cases;

describe.each(Object.keys(cases.tokenizers))('CLIP tokenizer parity with transformers (%s)', (name) => {
  const expected = cases.tokenizers[name]!;

  it.each(cases.prompts.map((prompt, index) => [index, prompt] as const))('prompt %i %j gives the Python class\'s ids', async (index, prompt) => {
    const tokenizer = await loadClipTokenizer(path.join(FIXTURES, name));
    const encoded = tokenizer.encode(prompt);
    expect(encoded.ids).toBeInstanceOf(Int32Array);
    expect(Array.from(encoded.ids)).toEqual(expected.slow.results[index]!.ids);
    expect(encoded.length).toBe(expected.slow.results[index]!.length);
    // where the two Python classes agree, that is the fast one's answer too
    if (!expected.slow_fast_differ.includes(index)) expect(Array.from(encoded.ids)).toEqual(expected.fast.results[index]!.ids);
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
    const dir = await mkdtemp(path.join(tmpdir(), 'clip-tok-'));
    await cp(path.join(FIXTURES, 'tokenizer-eot'), dir, { recursive: true });
    await rm(path.join(dir, 'merges.txt'));
    await expect(loadClipTokenizer(dir)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringContaining(path.join(dir, 'merges.txt')) });
  });

  it('refuses malformed JSON and a vocabulary without its special tokens', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'clip-tok-'));
    await cp(path.join(FIXTURES, 'tokenizer-eot'), dir, { recursive: true });
    await writeFile(path.join(dir, 'tokenizer_config.json'), '{ "model_max_length": 16,');
    const error = await loadClipTokenizer(dir).catch((e: unknown) => e);
    expect(isPictalkError(error) && error.code === 'model.invalid' && error.message.includes('tokenizer_config.json')).toBe(true);

    await cp(path.join(FIXTURES, 'tokenizer-eot', 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));
    await writeFile(path.join(dir, 'vocab.json'), JSON.stringify({ a: 0, b: 1 }));
    await expect(loadClipTokenizer(dir)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringContaining('<|startoftext|>') });
  });

  it('refuses a config without a usable model_max_length', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'clip-tok-'));
    await cp(path.join(FIXTURES, 'tokenizer-eot'), dir, { recursive: true });
    await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 1e30 }));
    await expect(loadClipTokenizer(dir)).rejects.toMatchObject({ code: 'model.invalid', message: expect.stringContaining('model_max_length') });
  });
});
