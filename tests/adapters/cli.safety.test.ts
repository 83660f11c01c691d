import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './cli.harness.js';

// tests/fixtures/tiny-sd plus the tiny safety checker of tests/fixtures/tiny-safety, which flags about half of the
// pictures tiny-sd draws for this prompt (seeds 0 to 3 with 2 steps: some flagged, some not)
const ROOT = process.cwd();
const PROMPT = 'a small red circle to the left of a big cat';

describe('pictalk imagine with a safety checker in the model folder', () => {
  let dir: string;
  let model: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pictalk-cli-safety-'));
    model = join(dir, 'model');
    cpSync(join(ROOT, 'tests/fixtures/tiny-sd'), model, { recursive: true });
    for (const name of ['safety_checker', 'feature_extractor']) cpSync(join(ROOT, 'tests/fixtures/tiny-safety', name), join(model, name), { recursive: true });
  });
  afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

  it('writes the images the checker passes, not the flagged ones, and says which were withheld', async () => {
    const out = join(dir, 'cat.png');
    const result = await cli(['imagine', PROMPT, '--out', out, '--seed', '0', '--steps', '2', '--count', '4', '--model', model]);
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    const withheld = lines.filter((line) => line.includes('withheld by the safety checker'));
    expect(withheld.length).toBeGreaterThan(0);
    expect(withheld.length).toBeLessThan(4);
    for (const [i, line] of lines.entries()) {
      const path = join(dir, `cat-${i + 1}.png`);
      expect(line.startsWith(path)).toBe(true);
      expect(existsSync(path)).toBe(!line.includes('withheld'));
    }
    expect(result.stderr).toContain(`safety checker: ${withheld.length} of 4 withheld`);
  });

  it('says nothing about a checker when the folder has none', async () => {
    const result = await cli(['imagine', PROMPT, '--out', join(dir, 'plain.png'), '--seed', '0', '--steps', '2', '--model', join(ROOT, 'tests/fixtures/tiny-sd')]);
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain('withheld');
    expect(result.stderr).not.toContain('safety checker');
    expect(existsSync(join(dir, 'plain.png'))).toBe(true);
  });
});
