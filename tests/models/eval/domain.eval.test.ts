/**
 * The eval's `domain` part with the builtin captioner: real photographs (the test fixtures, under the sample file
 * names the eval looks for), synthesized screenshots and drawings, and held-out world images; and its pictures.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asShared, availablePhotos, drawingSvg, photoCrops, screenshotSvg, synthesized } from '../../../models/eval/ood.images.js';
import { runMain } from './run-main.js';

const ROOT = process.cwd();

describe('the eval\'s out-of-domain part', () => {
  let photos: string;
  beforeAll(() => {
    photos = mkdtempSync(join(tmpdir(), 'pictalk-photos-'));
    for (const [fixture, name] of [['astronaut.jpg', 'astronaut.png'], ['coffee.jpg', 'coffee.png'], ['chelsea.jpg', 'chelsea.png'], ['rocket.jpg', 'rocket.jpg']]) {
      copyFileSync(join(ROOT, 'tests/fixtures/photos', fixture!), join(photos, name!));
    }
  });
  afterAll(() => { rmSync(photos, { recursive: true, force: true }); });

  it('reports the share of photographs declined and of world images still captioned, with sample counts', async () => {
    const { code, stdout } = await runMain(['--only', 'domain', '--json', '--count', '8', '--photos', photos, '--photo-crops', '3', '--synthesized', '4']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as Record<string, unknown> & { counts: Record<string, number>; settings: { domain: Record<string, unknown> } };
    expect(report.ood_photos_declined).toBe(1);
    expect(report.ood_world_captioned).toBe(1);
    expect(report.ood_world_shared_captioned).toBe(1);
    for (const key of ['ood_screenshots_declined', 'ood_drawings_declined']) {
      expect(report[key]).toBeGreaterThanOrEqual(0);
      expect(report[key]).toBeLessThanOrEqual(1);
    }
    expect(report.counts).toMatchObject({ ood_world: 12, ood_photos: 12, ood_photo_sources: 4, ood_screenshots: 4, ood_drawings: 4 });
    expect(report.settings.domain).toMatchObject({ photos, photo_crops: 3 });
  }, 60_000);

  it('refuses a --photos folder without sample photographs, before any work', async () => {
    const { code, stderr } = await runMain(['--only', 'domain', '--photos', join(ROOT, 'tests/fixtures/tiny-sd')]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/Expected scikit-image's sample photographs \(astronaut\.png, coffee\.png, \.\.\.\) in `--photos` .*tiny-sd, found none/);
  });

  it('draws the same pictures for the same seed, and others for another', async () => {
    expect(availablePhotos(photos)).toEqual(['astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg']);
    const [a, b] = await Promise.all([photoCrops(photos, 5, 2, ['coffee.png']), photoCrops(photos, 5, 2, ['coffee.png'])]);
    expect(a.map((image) => image.bytes)).toEqual(b.map((image) => image.bytes));
    expect((await photoCrops(photos, 6, 1, ['coffee.png']))[0]!.bytes).not.toEqual(a[0]!.bytes);
    expect(screenshotSvg(5, 1)).toEqual(screenshotSvg(5, 1));
    expect(drawingSvg(5, 1).svg).not.toEqual(drawingSvg(5, 2).svg);
    const [shot] = await synthesized('screenshot', 5, 1);
    expect(shot!.bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
    const png = shot!.bytes;
    expect(await asShared(png, 5, 0)).toEqual(await asShared(png, 5, 0));
    expect((await asShared(png, 5, 0))[0]).toBe(0xff);          // a JPEG
  });
});
