/**
 * The recognizer on drawn images: the ONNX path on the tiny random fixture always, and the shipped recognizer's
 * accuracy on a few freshly drawn images when models/builtin/recognizer exists (it is trained separately).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { drawSplit } from '../../../models/eval/heldout.set.js';
import { loadRecognizer, readRecognizerConfig } from '../../../models/eval/recognizer.js';
import { judgeScene } from '../../../models/eval/scene.judge.js';
import { WorldRenderer } from '../../../models/world/world.renderer.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const TINY = path.join(ROOT, 'tests', 'models', 'eval', 'fixtures', 'tiny-recognizer');
const BUILTIN = path.join(ROOT, 'models', 'builtin', 'recognizer');
const hasBuiltin = existsSync(path.join(BUILTIN, 'recognizer.onnx'));

describe('recognizer on ONNX Runtime', () => {
  let renderer: WorldRenderer;
  beforeAll(async () => { renderer = await WorldRenderer.create(); });

  it('reads a folder and decodes valid scene structures from drawn images (tiny random fixture)', async () => {
    const recognizer = await loadRecognizer(TINY, { maxBatch: 3 });
    try {
      const images = await drawSplit(renderer, 99, 'test', 5);
      const scenes = await recognizer.recognize(images.map((i) => i.png));    // two batches: 3 + 2
      expect(scenes).toHaveLength(5);
      for (const scene of scenes) {
        expect(scene.objects.length).toBeGreaterThanOrEqual(1);
        expect(scene.objects.length).toBeLessThanOrEqual(3);
        expect(scene.axis === null).toBe(scene.objects.length === 1);
        for (const o of scene.objects) expect(recognizer.config.labels.names).toContain(o.name);
      }
      // deterministic, and batching does not change a result
      expect(await recognizer.recognize([images[4]!.png])).toEqual([scenes[4]]);
    } finally {
      await recognizer.dispose();
    }
  });

  it('fails with a message naming the folder when it is missing or incomplete', () => {
    expect(() => readRecognizerConfig(path.join(ROOT, 'no-such-recognizer'))).toThrow(/Expected a recognizer folder at .*no-such-recognizer, found none/);
    expect(() => readRecognizerConfig(path.join(ROOT, 'tests', 'fixtures', 'tiny-captioner'))).toThrow(/recognizer\.onnx|labels/);
  });

  const builtin = hasBuiltin ? it : it.skip;
  if (!hasBuiltin) {
    console.info('skipped: the shipped recognizer accuracy check needs models/builtin/recognizer/recognizer.onnx (train it with models/train/recognizer.py --export models/builtin/recognizer)');
  }
  builtin('the shipped recognizer reads freshly drawn test and compositional images (scene accuracy >= 0.9)', async () => {
    const recognizer = await loadRecognizer(BUILTIN);
    try {
      const images = [...await drawSplit(renderer, 4321, 'test', 24), ...await drawSplit(renderer, 4321, 'compositional', 8)];
      const seen = await recognizer.recognize(images.map((i) => i.png));
      const right = images.filter((image, k) => judgeScene(image.scene, seen[k]!).all).length;
      expect(right / images.length).toBeGreaterThanOrEqual(0.9);
    } finally {
      await recognizer.dispose();
    }
  }, 60_000);
});
