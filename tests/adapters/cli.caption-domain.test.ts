/**
 * `pictalk caption` with the builtin captioner on a drawn world picture and on real photographs: every image gets
 * `in_domain` in JSON; the plain output says which were declined, and `--guess` shows the captioner's guess for them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drawImage } from '../../models/eval/heldout.set.js';
import { WorldRenderer } from '../../models/world/world.renderer.js';
import { cli } from './cli.harness.js';

const ROOT = process.cwd();
const PHOTOS = ['astronaut.jpg', 'coffee.jpg'].map((name) => join(ROOT, 'tests/fixtures/photos', name));

describe('pictalk caption with the builtin captioner', () => {
  let dir: string;
  let world: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pictalk-cli-domain-'));
    world = join(dir, 'world.png');
    writeFileSync(world, (await drawImage(await WorldRenderer.create(), 1234, 'test', 0)).png);
  });
  afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

  it('gives every image in_domain beside its caption and score', async () => {
    const result = await cli(['caption', world, ...PHOTOS, '--json']);
    expect(result.code).toBe(0);
    const rows = JSON.parse(result.stdout) as Array<{ file: string; caption: string; score: number; in_domain: boolean; domain_score: number }>;
    expect(rows.map((row) => [row.file, row.in_domain])).toEqual([[world, true], [PHOTOS[0], false], [PHOTOS[1], false]]);
    for (const row of rows) {
      expect(row.caption.length).toBeGreaterThan(0);           // the guess stays available
      expect(typeof row.score).toBe('number');
      expect(row.domain_score > 1).toBe(!row.in_domain);
    }
  });

  it('says in the plain output when an image was declined, and shows the guess only with --guess', async () => {
    const plain = await cli(['caption', world, PHOTOS[0]!]);
    expect(plain.code).toBe(0);
    const [drawn, photo] = plain.stdout.trim().split('\n').map((line) => line.split('\t'));
    expect(drawn![1]).toMatch(/^[A-Z].*\.$/);
    expect(photo![1]).toMatch(/^declined: unlike the pictures this captioner knows \(domain score \d+\.\d\d, over 1 is out of domain\); --guess shows its guess$/);
    const guessed = await cli(['caption', PHOTOS[0]!, '--guess']);
    expect(guessed.stdout.split('\t')[1]).toMatch(/; best guess: [A-Z].*\.$/);
  });
});
