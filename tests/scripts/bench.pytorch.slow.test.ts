/**
 * The bench's PyTorch reference as a loaded child (`models/train/sample_ddim.py --serve`): it makes its images in
 * the blocks it is asked for, sums them up, and a child that cannot start or dies is an error that says why.
 * Slow (about 10 s): it starts PyTorch and loads the shipped text-to-image weights. No timing is asserted.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PytorchServer } from '../../scripts/bench.pytorch.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const settings = {
  python: process.env.PYTHON ?? 'python3', onnxDir: path.join(ROOT, 'models/builtin/text-to-image'),
  prompt: 'a big red circle', steps: 2, guidance: 3, threads: 1,
};

describe('the PyTorch reference child', () => {
  it('makes the images it is asked for, block by block, and sums them up', async () => {
    const server = await PytorchServer.open(settings);
    try {
      const first = await server.run(2);
      const second = await server.run(1);
      expect(first).toHaveLength(2);
      expect(second).toHaveLength(1);
      for (const ms of [...first, ...second]) expect(Number.isFinite(ms) && ms > 0).toBe(true);
      const result = server.result();
      expect(result.blocks).toEqual([2, 1]);
      expect(result.runs_ms).toHaveLength(3);
      expect(result.min_ms).toBeLessThanOrEqual(result.per_image_ms);
      expect(result.per_image_ms).toBeLessThanOrEqual(Math.max(...result.runs_ms));
      expect(Object.keys(result.timings_ms)).toEqual(expect.arrayContaining(['encode', 'denoise', 'decode', 'total']));
      expect(result.command).toContain('--serve');
      expect(result.load_ms).toBeGreaterThan(0);
    } finally {
      await server.close();
    }
    await server.close(); // twice is fine
  }, 120_000);

  it('says why when the child cannot load its weights', async () => {
    await expect(PytorchServer.open({ ...settings, onnxDir: path.join(ROOT, 'no-such-folder') }))
      .rejects.toThrow(/Expected the PyTorch reference to keep running, it exited 1/);
  }, 120_000);

  it('says why when there is no such Python', async () => {
    await expect(PytorchServer.open({ ...settings, python: 'pictalk-no-such-python' })).rejects.toThrow(/ENOENT/);
  });
});
