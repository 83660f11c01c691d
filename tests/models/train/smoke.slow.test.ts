/**
 * The smoke version of the one command that re-trains every shipped model (models/train/train_all.sh --smoke):
 * draws a tiny world, trains the text-to-image model, the captioner and the recognizer for a few steps each,
 * exports them and reloads every graph in ONNX Runtime (the exporters fail when ONNX and PyTorch disagree).
 * Slow (about 60 s): it trains four small models in PyTorch and exports and reloads every graph.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { sha256File } from '../../../inference/domain.check.js';
import { loadImageToText } from '../../../inference/image-to-text.pipeline.js';
import { openModel } from '../../../inference/onnx.backend.js';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

describe('models/train/train_all.sh --smoke', () => {
  test('draws a tiny world, trains all three models a few steps, exports and reloads them', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pictalk-smoke-'));
    try {
      const args = ['--smoke', '--data', path.join(dir, 'world'), '--runs', path.join(dir, 'runs'), '--export', path.join(dir, 'export')];
      const { stdout } = await run(path.join(ROOT, 'models/train/train_all.sh'), args, { cwd: ROOT, timeout: 290_000, maxBuffer: 8 << 20 })
        .catch((error: { stdout?: string; stderr?: string; message: string }) => {
          throw new Error(`train_all.sh --smoke failed: ${error.message}\n${error.stdout ?? ''}\n${(error.stderr ?? '').slice(-3000)}`);
        });
      expect(stdout).toContain('done (status 0)');
      for (const file of ['text-to-image/unet/model.onnx', 'text-to-image/tokenizer/vocab.json', 'text-to-image/pictalk.json', 'captioner/decoder_step.onnx', 'captioner/encoder.int8.onnx', 'recognizer/recognizer.onnx']) {
        expect(existsSync(path.join(dir, 'export', file))).toBe(true);
      }
      // the UNet ships quantized, and the recognizer learned the judge's pictures too
      const extra = JSON.parse(readFileSync(path.join(dir, 'export', 'text-to-image', 'pictalk.json'), 'utf8')) as { unet_quantization?: { quantized?: string } };
      expect(extra.unet_quantization?.quantized).toMatch(/Conv/);
      // the recipe's UNet has no transformer at its top level (recipes/t2i.args), and its config says so as diffusers does
      const unet = JSON.parse(readFileSync(path.join(dir, 'export', 'text-to-image', 'unet', 'config.json'), 'utf8')) as { down_block_types: string[]; up_block_types: string[] };
      expect(unet.down_block_types).toEqual(['DownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D']);
      expect(unet.up_block_types).toEqual(['CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'UpBlock2D']);
      expect(existsSync(path.join(dir, 'world-judge', 'compositionalImages.txt'))).toBe(true);
      // the decoder was fine-tuned after the UNet, and the export took its checkpoint
      expect(readFileSync(path.join(dir, 'runs', 't2i-decoder.log'), 'utf8')).toMatch(/done: 5 steps/);
      expect(readFileSync(path.join(dir, 'runs', 't2i-export.log'), 'utf8')).toMatch(/t2i-decoder\/t2i.pt to .*decoder fine-tuned for 5 steps/);
      // the captioner trained in two stages: stage 2 froze stage 1's encoder under an attention decoder
      const captionerLog = readFileSync(path.join(dir, 'runs', 'captioner.log'), 'utf8');
      expect(captionerLog).toMatch(/encoder from .*captioner-encoder\/best\.pt/);
      expect(captionerLog).toMatch(/encoded \d+ train images with the frozen encoder/);
      const captioner = JSON.parse(readFileSync(path.join(dir, 'export', 'captioner', 'config.json'), 'utf8')) as { num_positions: number | null };
      expect(captioner.num_positions).toBe(64);   // --fine-grid: 8x8 cells of the 64x64 picture, not 4x4
      // the out-of-domain check was calibrated again for the encoder just quantized (a stale domain.json fails at load)
      const domain = JSON.parse(readFileSync(path.join(dir, 'export', 'captioner', 'domain.json'), 'utf8')) as { encoder_file: string; encoder_sha256: string };
      expect(domain.encoder_file).toBe('encoder.int8.onnx');
      expect(domain.encoder_sha256).toBe(sha256File(path.join(dir, 'export', 'captioner', 'encoder.int8.onnx')));
      // the colour-word decoder reads ahead, so its export carries the glimpse (models/README.md), through the int8
      // encoder too, and the pipeline captions with it
      const [decoder, encoder] = await Promise.all(['decoder_step.onnx', 'encoder.int8.onnx'].map((file) => openModel(path.join(dir, 'export', 'captioner', file))));
      try {
        expect(decoder!.inputNames).toEqual(['input_ids', 'h', 'c', 'context', 'features', 'feature_rows']);
        expect(decoder!.outputNames).toEqual(['logits', 'h_out', 'c_out', 'context_out']);
        expect(encoder!.outputNames).toEqual(['features', 'h0', 'c0', 'context0']);
      } finally {
        await Promise.all([decoder!.dispose(), encoder!.dispose()]);
      }
      const smokeCaptioner = await loadImageToText(path.join(dir, 'export', 'captioner'), { lanes: 1 });
      try {
        const result = await smokeCaptioner.caption({ image: readFileSync(path.join(ROOT, 'tests', 'fixtures', 'tiny-captioner', 'image-0.png')), beam: 3 });
        expect(Number.isFinite(result.score)).toBe(true);   // a 20-step model's words are noise; the search ran to its end
      } finally {
        await smokeCaptioner.dispose();
      }
      const recognizer = JSON.parse(readFileSync(path.join(dir, 'export', 'recognizer', 'config.json'), 'utf8')) as { trained_on: string };
      expect(recognizer.trained_on).toContain('world-judge');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
