/**
 * The Python training code's checks (models/train/), run as plain scripts: each prints `ok <check>` lines and
 * exits non-zero on the first failure. They need python3 with torch, onnx and onnxruntime.
 * Slow (about 80 s): each check starts python3 and imports PyTorch; the captioner checks train and export small
 * models, and one of them kills a training run and resumes it.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

async function python(args: string[], timeoutMs: number): Promise<string> {
  try {
    const { stdout } = await run('python3', args, { cwd: ROOT, timeout: timeoutMs, maxBuffer: 8 << 20 });
    return stdout;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`python3 ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${(e.stderr ?? '').slice(-3000)}`);
  }
}

describe('models/train (Python)', () => {
  // the check scripts that end with `<name>: all checks passed`
  test.each([
    ['the training tokenizer gives transformers 5\'s CLIP ids on the parity fixture', 'check_clip_bpe.py', 'clip_bpe', 60_000],
    ['dataset loaders read Flickr8k (token and Kaggle), Flickr30k (token and csv), Karpathy JSON and the world', 'check_datasets.py', 'datasets', 60_000],
    ['recognizer: scene labels, accuracy rule, smoke train and ONNX export', 'check_recognizer.py', 'recognizer', 180_000],
  ] as const)('%s', async (_what, script, name, timeoutMs) => {
    const out = await python([`tests/models/train/${script}`], timeoutMs);
    expect(out).toContain(`${name}: all checks passed`);
  }, 190_000);

  test('captioner: teacher forcing, fixture parity on ONNX, beam search, export errors, resume after kill -9', async () => {
    const out = await python(['tests/models/train/check_captioner.py'], 240_000);
    expect(out).toContain('ok resume continues from the checkpoint');
    expect(out).toContain('captioner: all checks passed');
  }, 250_000);

  test('caption smoke: trains a few steps on the fixture world, exports, reloads and captions', async () => {
    const out = await python(['models/train/train_caption.py', '--smoke', '--out', 'runs/captioner-smoke-test'], 120_000);
    expect(out).toMatch(/export check: max abs difference onnxruntime vs PyTorch = [0-9.e+-]+/);
    expect(out).toContain('smoke ok');
  }, 130_000);
});
