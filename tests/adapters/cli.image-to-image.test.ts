import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPngText } from '../../inference/image.codec.js';
import { cli } from './cli.harness.js';

const TINY_SD = join(process.cwd(), 'tests/fixtures/tiny-sd');
const PROMPT = 'a small red circle to the left of a big cat';

describe('pictalk imagine --image', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'pictalk-cli-i2i-')); });
  afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

  it('starts from a picture at a strength, reproducibly, and says how many steps ran', async () => {
    const start = join(dir, 'start.png');
    expect((await cli(['imagine', PROMPT, '--out', start, '--seed', '1', '--steps', '3', '--model', TINY_SD])).code).toBe(0);
    const args = ['imagine', PROMPT, '--seed', '2', '--steps', '10', '--scheduler', 'ddim', '--image', start, '--strength', '0.3', '--model', TINY_SD];
    const a = await cli([...args, '--out', join(dir, 'a.png')]);
    const b = await cli([...args, '--out', join(dir, 'b.png')]);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(a.stderr).toContain('10 steps (image-to-image at strength 0.3: the last 3 run)');
    expect(readFileSync(join(dir, 'a.png')).equals(readFileSync(join(dir, 'b.png')))).toBe(true);
    expect(readPngText(readFileSync(join(dir, 'a.png')))).toMatchObject({ strength: '0.3', seed: '2' });
  });

  it('exits 2 with a specific message for a strength of 7, a strength without a picture, a missing file and a non-picture', async () => {
    const start = join(dir, 'start.png');
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'not a picture');
    const out = join(dir, 'x.png');
    const cases: Array<[string[], string]> = [
      [['--image', start, '--strength', '7'], 'Expected `strength` to be a number above 0 and at most 1, got `7` (number)'],
      [['--strength', '0.5'], 'Expected an `image` to start from with `strength` `0.5` (number), got none'],
      [['--image', join(dir, 'nope.png')], `Expected a picture to start from at ${join(dir, 'nope.png')}: no such file`],
      [['--image', text], 'Expected a PNG, JPEG, WebP or GIF image'],
      [['--strength', 'half', '--image', start], 'Expected --strength to be a number, got "half"'],
    ];
    for (const [extra, message] of cases) {
      const result = await cli(['imagine', PROMPT, '--out', out, '--steps', '2', '--model', TINY_SD, ...extra]);
      expect([result.code, result.stderr]).toEqual([2, expect.stringContaining(message)]);
    }
  });
});
