/**
 * models/train/onnx_weights.py: the PyTorch reference loads its weights straight from an exported ONNX folder.
 * Runs tests/models/train/check_onnx_weights.py (python3 with torch, onnx, onnxruntime) on the tiny fixture, and
 * tests/models/train/check_levels_without_attention.py on a tiny UNet without attention at its top level.
 * Slow (about 10 s): python3 imports PyTorch and onnxruntime and compares a sampled image.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Runs one of the Python checks; a failure shows its output and the tail of its stderr. */
async function check(script: string): Promise<string> {
  try {
    return (await run('python3', [script], { cwd: ROOT, timeout: 110_000, maxBuffer: 8 << 20 })).stdout;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${path.basename(script)} failed: ${e.message}\n${e.stdout ?? ''}\n${(e.stderr ?? '').split('\n').filter((l) => !l.includes('NNPACK')).slice(-30).join('\n')}`);
  }
}

describe('onnx_weights.py', () => {
  test('loads the tiny folder by parameter name, matches onnxruntime and the parity arrays, and refuses broken graphs', async () => {
    const stdout = await check('tests/models/train/check_onnx_weights.py');
    expect(stdout).toContain('ok loaded networks match onnxruntime');
    expect(stdout).toContain('ok DDIM on the ONNX weights reproduces the parity arrays');
    expect(stdout).toContain('ok a weight of the wrong shape fails');
    expect(stdout).toContain('ok a missing weight fails and is named');
    expect(stdout).toContain('onnx weights: all checks passed');
  }, 120_000);

  test('a UNet whose top level has no attention exports, loads back, shares its latents and continues training', async () => {
    const stdout = await check('tests/models/train/check_levels_without_attention.py');
    expect(stdout).toContain('ok a DownBlock2D level has no transformer');
    expect(stdout).toContain('ok it exports with diffusers block types');
    expect(stdout).toContain('ok onnx_weights.py loads it back and matches onnxruntime');
    expect(stdout).toContain('ok t2i_share_latents.py rewrites it from the first level with attention, to the bit');
    expect(stdout).toContain('ok up_block_types that do not mirror down_block_types fail');
    expect(stdout).toContain('ok --init-from drops the transformers of a level that loses attention');
    expect(stdout).toContain('levels without attention: all checks passed');
  }, 120_000);
});
