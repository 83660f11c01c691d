import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { main, numberedPath, type CliIo } from '../../adapters/cli.js';
import { packageRoot } from '../../common/package-root.js';
import { readPngText } from '../../inference/image.codec.js';
import { writeNpy } from '../../inference/npy.js';
import { cli } from './cli.harness.js';

const ROOT = process.cwd();
const TINY_SD = join(ROOT, 'tests/fixtures/tiny-sd');
const TINY_CAPTIONER = join(ROOT, 'tests/fixtures/tiny-captioner');

describe('pictalk command line', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'pictalk-cli-')); });
  afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

  it('finds the package root from its own file, not the cwd', () => {
    expect(packageRoot()).toBe(ROOT);
    expect(numberedPath('/x/cat.png', 1, 3)).toBe('/x/cat-2.png');
    expect(numberedPath('/x/cat.png', 0, 1)).toBe('/x/cat.png');
  });

  it('imagines count images into numbered files with settings in their metadata', async () => {
    const out = join(dir, 'cat.png');
    const result = await cli(['imagine', 'a big cat', '--out', out, '--seed', '9', '--steps', '2', '--count', '2',
      '--scheduler', 'ddim', '--negative', 'a dog', '--guidance', '6.5', '--upscale', '2', '--model', TINY_SD]);
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.code).toBe(0);
    expect(existsSync(out)).toBe(false);
    const second = readPngText(readFileSync(join(dir, 'cat-2.png')));
    expect(second).toMatchObject({ prompt: 'a big cat', negative_prompt: 'a dog', seed: '10', steps: '2', guidance: '6.5', scheduler: 'ddim' });
    expect(result.stdout).toContain(join(dir, 'cat-1.png'));
    expect(result.stdout).toContain('64x64');
  });

  it('takes the model from PICTALK_T2I_MODEL, relative to the cwd', async () => {
    const out = join(dir, 'env.png');
    const result = await cli(['imagine', 'x', '--out', out, '--steps', '1'], { PICTALK_T2I_MODEL: 'tests/fixtures/tiny-sd' });
    expect(result.code).toBe(0);
    expect(existsSync(out)).toBe(true);
  });

  it('reads initial latents from a .npy file and checks their shape against the model', async () => {
    const good = join(dir, 'good.npy');
    const bad = join(dir, 'bad.npy');
    writeFileSync(good, writeNpy(new Float32Array(4 * 8 * 8), [1, 4, 8, 8]));
    writeFileSync(bad, writeNpy(new Float32Array(4 * 4 * 4), [1, 4, 4, 4]));
    expect((await cli(['imagine', 'x', '--out', join(dir, 'l.png'), '--steps', '1', '--latents', good, '--model', TINY_SD])).code).toBe(0);
    const result = await cli(['imagine', 'x', '--out', join(dir, 'l.png'), '--latents', bad, '--model', TINY_SD]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('[1, 4, 8, 8]');
  });

  it('exits 2 with a clear message on unknown options and bad values', async () => {
    const unknown = await cli(['imagine', 'x', '--out', 'a.png', '--sed', '1']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("'--sed'");
    expect(unknown.stderr).toContain('Usage:');
    const notInt = await cli(['imagine', 'x', '--out', 'a.png', '--steps', 'ten']);
    expect(notInt.code).toBe(2);
    expect(notInt.stderr).toContain('Expected --steps to be an integer, got "ten"');
    const scheduler = await cli(['imagine', 'x', '--out', 'a.png', '--scheduler', 'heun']);
    expect(scheduler.code).toBe(2);
    expect(scheduler.stderr).toContain('"heun"');
    const range = await cli(['imagine', 'x', '--out', join(dir, 'r.png'), '--steps', '500', '--model', TINY_SD]);
    expect(range.code).toBe(2);
    expect(range.stderr).toContain('`500`');
    expect((await cli(['imagine', 'x'])).stderr).toContain('--out');
    expect((await cli(['imagine', '--out', 'a.png'])).code).toBe(2);
    expect((await cli(['paint', 'x'])).code).toBe(2);
    expect((await cli([])).code).toBe(2);
  });

  it('exits 1 naming the path when the model folder is missing or broken', async () => {
    const missing = join(dir, 'no-model');
    const result = await cli(['imagine', 'x', '--out', join(dir, 'm.png'), '--model', missing]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(missing);
    expect(result.stderr).toContain('model.invalid');
  });

  it('captions files, as text or JSON, and names an unreadable file', async () => {
    const parity = JSON.parse(readFileSync(join(TINY_CAPTIONER, 'parity.json'), 'utf8')) as { images: { file: string; beam: { tokens: string[] } }[] };
    const files = parity.images.map((image) => join(TINY_CAPTIONER, image.file));
    const json = await cli(['caption', ...files, '--beam', '3', '--json', '--captioner', TINY_CAPTIONER]);
    expect(json.code).toBe(0);
    const rows = JSON.parse(json.stdout) as { file: string; caption: string; tokens: string[]; score: number }[];
    expect(rows.map((row) => row.tokens)).toEqual(parity.images.map((image) => image.beam.tokens));
    expect(rows[0]!.file).toBe(files[0]);
    const text = await cli(['caption', files[0]!], { PICTALK_CAPTIONER: TINY_CAPTIONER });
    expect(text.code).toBe(0);
    expect(text.stdout.split('\t')[0]).toBe(files[0]);
    const missing = await cli(['caption', join(dir, 'nope.png'), '--captioner', TINY_CAPTIONER]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(join(dir, 'nope.png'));
    const notImage = join(dir, 'notes.txt');
    writeFileSync(notImage, 'hello');
    const bad = await cli(['caption', files[0]!, notImage, '--captioner', TINY_CAPTIONER]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(notImage);
    expect(bad.stderr).toContain('input.unsupported');
    expect((await cli(['caption', files[0]!, '--beam', 'wide'])).code).toBe(2);
  });

  it('speaks text into an Ogg file', async () => {
    const out = join(dir, 'hello.ogg');
    const result = await cli(['speak', 'Hello there.', '--out', out]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(readFileSync(out).subarray(0, 4).toString('latin1')).toBe('OggS');
    expect((await cli(['speak', 'x'])).code).toBe(2);
  }, 60_000);

  it('runs the starter it is handed for `start` (adapters/main.ts\'s by default)', async () => {
    const started: string[][] = [];
    const io: CliIo = { stdout: () => {}, stderr: () => {}, env: {}, cwd: ROOT, start: async (argv) => { started.push(argv); return 0; } };
    expect(await main(['start', '--platform', 'local'], io)).toBe(0);
    expect(started).toEqual([['--platform', 'local']]);
    expect((await cli(['--help'])).stdout).toContain('pictalk imagine');
  });

  it('reads its model settings through adapters/config.ts: a bad PICTALK_EXECUTION_PROVIDER is a usage error naming it', async () => {
    const errors: string[] = [];
    const io: CliIo = { stdout: () => {}, stderr: (text) => errors.push(text), env: { PICTALK_EXECUTION_PROVIDER: 'tpu' }, cwd: ROOT };
    expect(await main(['caption', join(ROOT, 'package.json')], io)).toBe(2);
    expect(errors.join('')).toMatch(/Expected PICTALK_EXECUTION_PROVIDER to be `cpu` or `cuda`, got `"tpu"`/);
  });

  it('runs as a process and sets its exit code', () => {
    // tsx by file URL: the child runs in a temporary cwd where the bare name would not resolve
    const tsx = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
    const run = (args: string[]) => spawnSync(process.execPath, ['--import', tsx, join(ROOT, 'adapters/cli.ts'), ...args],
      { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    const bad = run(['imagine', 'x', '--out', 'a.png', '--bogus']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("Unknown option '--bogus'");
    const good = run(['imagine', 'a cat', '--out', 'proc.png', '--steps', '1', '--model', TINY_SD]);
    expect(good.stderr).not.toContain('Error');
    expect(good.status).toBe(0);
    expect(existsSync(join(dir, 'proc.png'))).toBe(true);
  }, 60_000);
});
