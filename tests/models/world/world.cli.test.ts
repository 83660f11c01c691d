import { jest } from '@jest/globals';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { heldOutIn } from '../../../models/world/compositional.js';
import { SPLIT_FILES, splitCounts, writeWorld } from '../../../models/world/dataset.writer.js';
import { parseCaption } from '../../../models/world/parser.js';
import { sceneKey, type DrawnScene } from '../../../models/world/scene.js';
import { main, parseWorldArgs } from '../../../models/world/world.cli.js';

const lines = async (file: string): Promise<string[]> => (await readFile(file, 'utf8')).trimEnd().split('\n');

describe('world command line', () => {
  it('validates its options with clear errors', () => {
    expect(parseWorldArgs(['--out', 'd', '--count', '10', '--seed', '3'])).toEqual({ out: 'd', count: 10, seed: 3, split: 'all', force: false });
    expect(parseWorldArgs(['--out=d', '--count=10', '--seed=0', '--split=test', '--force'])).toMatchObject({ split: 'test', force: true });
    expect(() => parseWorldArgs(['--out', 'd', '--count', '1.5', '--seed', '1'])).toThrow('Expected `--count` to be an integer from 1 to 10000000, got `"1.5"` (string)');
    expect(() => parseWorldArgs(['--out', 'd', '--count', '0', '--seed', '1'])).toThrow(/--count/);
    expect(() => parseWorldArgs(['--out', 'd', '--count', '5'])).toThrow(/--seed/);
    expect(() => parseWorldArgs(['--count', '5', '--seed', '1'])).toThrow(/--out/);
    expect(() => parseWorldArgs(['--out', 'd', '--count', '5', '--seed', '1', '--colour', 'red'])).toThrow('Unknown option `--colour`');
    expect(() => parseWorldArgs(['--out', 'd', '--count', '5', '--seed', '1', '--split', 'dev'])).toThrow(/one of train, val, test, compositional, all/);
    expect(() => parseWorldArgs(['--out', 'd', '--count', '--seed', '1'])).toThrow('Expected a value after `--count`');
    expect(() => parseWorldArgs(['--out', 'd', '--count', '5', '--count', '6', '--seed', '1'])).toThrow(/twice/);
    expect(parseWorldArgs(['--help'])).toBe('help');
  });

  it('exits with status 2 and a message on bad options', async () => {
    const write = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await main(['--count', 'many'])).toBe(2);
      expect(String(write.mock.calls[0]?.[0])).toMatch(/--out/);
    } finally {
      write.mockRestore();
    }
  });

  it('splits 80/10/10 plus 5% compositional, or puts everything in one split', () => {
    expect(splitCounts(30000, 'all')).toEqual({ train: 24000, val: 3000, test: 3000, compositional: 1500 });
    expect(splitCounts(7, 'compositional')).toEqual({ train: 0, val: 0, test: 0, compositional: 7 });
  });
});

describe('world dataset', () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'world-')); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('writes the Flickr8k layout with five parseable captions per image and a compositional split', async () => {
    const out = path.join(dir, 'all');
    const summary = await writeWorld({ out, count: 60, seed: 5, split: 'all' });
    expect(summary.counts).toEqual({ train: 48, val: 6, test: 6, compositional: 3 });
    const images = (await readdir(path.join(out, 'Images'))).sort();
    expect(images).toHaveLength(63);
    const captionLines = await lines(path.join(out, 'captions.txt'));
    expect(captionLines[0]).toBe('image,caption');
    expect(captionLines).toHaveLength(1 + 63 * 5);
    const scenes = JSON.parse(await readFile(path.join(out, 'scenes.json'), 'utf8')) as Record<string, DrawnScene>;
    expect(Object.keys(scenes).sort()).toEqual(images);
    const perImage = new Map<string, string[]>();
    for (const line of captionLines.slice(1)) {
      const [file, caption, ...rest] = line.split(',');
      expect(rest).toEqual([]);
      perImage.set(file!, [...(perImage.get(file!) ?? []), caption!]);
      expect(sceneKey(parseCaption(caption!)!)).toBe(sceneKey(scenes[file!]!));
    }
    for (const captions of perImage.values()) expect(new Set(captions).size).toBe(5);
    const tokens = await lines(path.join(out, 'Flickr8k.token.txt'));
    expect(tokens).toHaveLength(63 * 5);
    expect(tokens[1]).toBe(`${captionLines[2]!.split(',')[0]}#1\t${captionLines[2]!.split(',')[1]}`);

    const split = async (name: keyof typeof SPLIT_FILES) => lines(path.join(out, SPLIT_FILES[name]));
    const [train, val, test, compositional] = await Promise.all([split('train'), split('val'), split('test'), split('compositional')]);
    expect([train.length, val.length, test.length, compositional.length]).toEqual([48, 6, 6, 3]);
    expect(new Set([...train, ...val, ...test, ...compositional]).size).toBe(63);
    for (const file of [...train, ...val, ...test]) expect(heldOutIn(scenes[file]!)).toEqual([]);
    for (const file of compositional) expect(heldOutIn(scenes[file]!).length).toBeGreaterThan(0);

    const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({ seed: 5, counts: summary.counts, captionsPerImage: 5 });
    expect(manifest.heldOut.map((h: { description: string }) => h.description)).toContain('green triangle');
    expect(manifest.vocabulary.colors.red).toHaveLength(3);
  });

  it('writes the same bytes for the same seed, and one split alone when asked', async () => {
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    await writeWorld({ out: a, count: 12, seed: 9, split: 'test' });
    await writeWorld({ out: b, count: 12, seed: 9, split: 'test', concurrency: 3 });
    expect((await readdir(a)).sort()).toEqual(['Flickr8k.token.txt', 'Flickr_8k.testImages.txt', 'Images', 'captions.txt', 'manifest.json', 'scenes.json']);
    for (const file of ['captions.txt', 'scenes.json', 'manifest.json', 'Images/test-000000.png', 'Images/test-000011.png']) {
      expect((await readFile(path.join(a, file))).equals(await readFile(path.join(b, file)))).toBe(true);
    }
  });

  it('refuses a folder that is not empty unless forced', async () => {
    const out = path.join(dir, 'used');
    await writeWorld({ out, count: 2, seed: 1, split: 'train' });
    await writeFile(path.join(out, 'Images', 'stale.png'), 'x');
    await expect(writeWorld({ out, count: 2, seed: 1, split: 'train' })).rejects.toThrow(/--force/);
    const write = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await main(['--out', out, '--count', '2', '--seed', '1'])).toBe(2);
      expect(String(write.mock.calls[0]?.[0])).toMatch(/Expected an empty or new output folder/);
    } finally {
      write.mockRestore();
    }
    await writeWorld({ out, count: 2, seed: 1, split: 'train', force: true });
    expect((await readdir(path.join(out, 'Images'))).sort()).toEqual(['train-000000.png', 'train-000001.png']);
  });
});
