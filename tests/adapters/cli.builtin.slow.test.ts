/**
 * The command line end to end on the shipped builtin models, as a user runs it: imagine, caption, speak.
 * (Speed lives in `npm run bench`; this checks behaviour only.)
 * Slow (about 20 s): every command is a new Node process that loads the shipped models.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { decodeImage, readPngText } from '../../inference/image.codec.js';
import { parseCaption } from '../../models/world/parser.js';

const ROOT = process.cwd();
const BUILTIN = join(ROOT, 'models/builtin/text-to-image/model_index.json');
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

(existsSync(BUILTIN) ? describe : describe.skip)('pictalk on the builtin models', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'pictalk-cli-builtin-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const pictalk = (args: string[]) => spawnSync(process.execPath, ['--import', TSX, join(ROOT, 'adapters/cli.ts'), ...args],
    { cwd: dir, encoding: 'utf8', timeout: 90_000 });

  it('imagines the same PNG for the same seed, with its settings in the metadata, and captions and speaks it', async () => {
    const prompt = 'a big blue square';
    const first = pictalk(['imagine', prompt, '--out', 'a.png', '--seed', '11']);
    expect(first.stderr).not.toMatch(/error/i);
    expect(first.status).toBe(0);
    expect(pictalk(['imagine', prompt, '--out', 'b.png', '--seed', '11']).status).toBe(0);
    expect(pictalk(['imagine', prompt, '--out', 'c.png', '--seed', '12', '--scheduler', 'euler-a', '--upscale', '2']).status).toBe(0);
    const a = readFileSync(join(dir, 'a.png'));
    expect(readFileSync(join(dir, 'b.png')).equals(a)).toBe(true);
    expect(await decodeImage(a)).toMatchObject({ width: 64, height: 64 });
    expect(await decodeImage(readFileSync(join(dir, 'c.png')))).toMatchObject({ width: 128, height: 128 });
    const text = readPngText(a);
    // the folder's own defaults (pictalk.json) are what an imagine without options uses
    const defaults = JSON.parse(readFileSync(join(ROOT, 'models/builtin/text-to-image/pictalk.json'), 'utf8')) as { scheduler: string; steps: number; guidance: number; candidates: number };
    expect(defaults.candidates).toBeGreaterThan(1);
    expect(text).toMatchObject({
      prompt, seed: '11', scheduler: defaults.scheduler, guidance: String(defaults.guidance), steps: String(defaults.steps),
      model: 'pictalk-builtin-t2i', candidates: String(defaults.candidates),
    });
    expect(first.stderr).toContain(`best of ${defaults.candidates} by the captioner`);

    const caption = pictalk(['caption', 'a.png', 'c.png', '--json']);
    expect(caption.status).toBe(0);
    const captions = (JSON.parse(caption.stdout) as Array<{ caption: string }>).map((entry) => entry.caption);
    expect(captions).toHaveLength(2);
    // whatever the model drew, the captioner speaks the world's language
    for (const sentence of captions) expect(parseCaption(sentence)).not.toBeNull();

    const speak = pictalk(['speak', captions[0]!, '--out', 'a.ogg']);
    expect(speak.status).toBe(0);
    expect(readFileSync(join(dir, 'a.ogg')).subarray(0, 4).toString('latin1')).toBe('OggS');
  }, 240_000);

  it('refuses bad input with a specific message and exit code 2', () => {
    const empty = pictalk(['imagine', '   ', '--out', 'x.png']);
    expect(empty.status).toBe(2);
    expect(empty.stderr).toMatch(/prompt/i);
    const size = pictalk(['imagine', 'a cat', '--out', 'x.png', '--width', '30']);
    expect(size.status).toBe(2);
    expect(size.stderr).toMatch(/width/);
    const corrupt = join(dir, 'corrupt.png');
    writeFileSync(corrupt, Buffer.from('not a png at all'));
    const bad = pictalk(['caption', corrupt]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/corrupt\.png|unsupported|image/i);
  }, 120_000);
});
