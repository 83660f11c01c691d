/**
 * The eval command end to end on the tiny random fixtures (numbers near zero: the models are untrained), and its
 * option and error handling.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_DIRS, parseEvalArgs } from '../../../models/eval/eval.options.js';
import { SKIMAGE_DATA_DIR } from '../../../models/eval/ood.images.js';
import { runMain } from './run-main.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const FIXTURES = [
  '--t2i', path.join(ROOT, 'tests', 'fixtures', 'tiny-sd'),
  '--captioner', path.join(ROOT, 'tests', 'fixtures', 'tiny-captioner'),
  '--recognizer', path.join(ROOT, 'tests', 'models', 'eval', 'fixtures', 'tiny-recognizer'),
];

const RATE_KEYS = [
  'caption_bleu1', 'caption_bleu2', 'caption_bleu3', 'caption_bleu4', 'caption_bleu4_ceiling', 'caption_exact', 'caption_exact_compositional',
  'recognizer_accuracy_gt', 't2i_all_correct_single', 't2i_all_correct_pair', 't2i_all_correct_compositional', 't2i_all_correct',
  't2i_object', 't2i_count', 't2i_color', 't2i_size', 't2i_position', 'cycle_agreement',
  't2i_autoencoder_ceiling_single', 't2i_autoencoder_ceiling_pair', 't2i_autoencoder_ceiling_compositional',
];

describe('eval command line', () => {
  it('prints one JSON object with every metric in [0, 1], counts, settings and timings (tiny fixtures)', async () => {
    // seed 82: its two text-to-image prompts fit the tiny UNet's fixed window of 16 positions (14 tokens), which
    // refuses a longer prompt rather than cut it off
    const { code, stdout, stderr } = await runMain([...FIXTURES, '--json', '--count', '6', '--t2i-count', '2', '--steps', '2', '--seed', '82', '--candidates', '2']);
    expect(stderr).toMatch(/drawing 6 test \+ 3 compositional images \(seed 82\)/);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const report = JSON.parse(lines[0]!) as Record<string, unknown>;
    for (const key of RATE_KEYS) {
      expect(typeof report[key]).toBe('number');
      expect(report[key]).toBeGreaterThanOrEqual(0);
      expect(report[key]).toBeLessThanOrEqual(1);
    }
    // the ceiling depends on the grammar alone
    expect(report.caption_bleu4_ceiling).toBeGreaterThan(0.3);
    expect(report.caption_cider_d_ceiling).toBeGreaterThan(report.caption_cider_d as number);
    expect(report.counts).toMatchObject({ test_images: 6, compositional_images: 3, t2i_prompts: 6, t2i_prompts_per_category: 2 });
    expect(report.settings).toMatchObject({ seed: 82, beam: 3, t2i: { steps: 2, guidance: 7.5, scheduler: 'pndm', width: 32, height: 32, candidates: 2 } });
    expect(report.models).toEqual({ t2i: 'tests/fixtures/tiny-sd', captioner: 'tests/fixtures/tiny-captioner', recognizer: 'tests/models/eval/fixtures/tiny-recognizer' });
    const timings = report.timings_ms as Record<string, number>;
    for (const key of ['load', 'draw', 'caption', 'recognizer', 't2i', 'total']) expect(timings[key]).toBeGreaterThanOrEqual(0);
  }, 60_000);

  it('prints a readable table without --json, and runs only the parts asked for', async () => {
    const { code, stdout } = await runMain([...FIXTURES, '--count', '3', '--only', 'caption']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/BLEU-4 of a fresh grammar caption \(ceiling\)\s+0\.\d{4}\s+caption_bleu4_ceiling/);
    expect(stdout).not.toMatch(/t2i_all_correct/);
  }, 30_000);

  it('exits 2 with a message naming the missing model folder and its option', async () => {
    const { code, stderr } = await runMain(['--json', '--count', '2', '--captioner', 'no/such/captioner']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/Expected a captioner model folder at .*no\/such\/captioner, found none \(pass `--captioner DIR`/);
    const t2i = await runMain([...FIXTURES.slice(2), '--t2i', 'missing-t2i', '--only', 't2i']);
    expect(t2i.code).toBe(2);
    expect(t2i.stderr).toMatch(/text-to-image model folder at .*missing-t2i.*`--t2i DIR`/);
  });

  it('validates its options with clear errors', () => {
    expect(parseEvalArgs([])).toMatchObject({
      json: false, seed: 1234, count: 300, compositional: 150, t2iCount: 25,
      t2iDir: DEFAULT_DIRS.t2i, captionerDir: DEFAULT_DIRS.captioner, recognizerDir: DEFAULT_DIRS.recognizer, parts: ['caption', 't2i', 'recognizer', 'domain'],
      photosDir: SKIMAGE_DATA_DIR, photosGiven: false, photoCrops: 20, synthesized: 200,
    });
    expect(parseEvalArgs(['--photos', 'pics', '--photo-crops', '3', '--synthesized', '0'])).toMatchObject({ photosDir: 'pics', photosGiven: true, photoCrops: 3, synthesized: 0 });
    expect(() => parseEvalArgs(['--photo-crops', '0'])).toThrow('Expected `--photo-crops` to be an integer from 1 to 1000, got `"0"` (string)');
    expect(() => parseEvalArgs(['--photos', ''])).toThrow('Expected `--photos` to be a folder');
    expect(parseEvalArgs(['--count=5', '--guidance', '3.5', '--scheduler', 'ddim', '--only', 't2i,caption'])).toMatchObject({
      count: 5, compositional: 3, guidance: 3.5, scheduler: 'ddim', parts: ['t2i', 'caption'],
    });
    expect(() => parseEvalArgs(['--count', '0'])).toThrow('Expected `--count` to be an integer from 1 to 100000, got `"0"` (string)');
    expect(() => parseEvalArgs(['--seed', '-1'])).toThrow(/--seed/);
    expect(() => parseEvalArgs(['--guidance', 'lots'])).toThrow('Expected `--guidance` to be a number from 0 to 30');
    expect(() => parseEvalArgs(['--scheduler', 'karras'])).toThrow(/one of pndm, ddim/);
    expect(() => parseEvalArgs(['--only', 'speech'])).toThrow(/--only/);
    expect(parseEvalArgs(['--candidates', '8'])).toMatchObject({ candidates: 8 });
    expect(() => parseEvalArgs(['--candidates', '9'])).toThrow('Expected `--candidates` to be an integer from 1 to 8');
    expect(() => parseEvalArgs(['--colour'])).toThrow('Unknown option `--colour`');
    expect(() => parseEvalArgs(['--json', '--json'])).toThrow(/twice/);
    expect(parseEvalArgs(['--help'])).toBe('help');
  });
});
