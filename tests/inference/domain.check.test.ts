/**
 * The captioner's out-of-domain check: the eigen-decomposition and the fit it rests on, domain.json's validation, and
 * the builtin captioner's verdicts on drawn world pictures, on real photographs and with the check turned off.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  domainCheck, domainDistance, domainJson, fitDomainStats, poolFeatures, readDomainStats, sha256File, symmetricEigen, type DomainStats,
} from '../../inference/domain.check.js';
import { loadImageToText, type ImageToText } from '../../inference/image-to-text.pipeline.js';
import type { CaptionResult } from '../../inference/types.js';
import { drawImage } from '../../models/eval/heldout.set.js';
import { mulberry32 } from '../../models/world/random.js';
import { WorldRenderer } from '../../models/world/world.renderer.js';

const ROOT = process.cwd();
const BUILTIN = join(ROOT, 'models/builtin/captioner');
const PHOTOS = ['astronaut.jpg', 'coffee.jpg', 'chelsea.jpg', 'rocket.jpg'].map((name) => readFileSync(join(ROOT, 'tests/fixtures/photos', name)));

/** A standard normal from a seeded uniform stream (Box-Muller). */
const normal = (rng: () => number): number => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());

describe('symmetricEigen', () => {
  it('finds a known spectrum, largest first, with unit eigenvectors', () => {
    // [[2, 1, 0], [1, 2, 0], [0, 0, 5]]: eigenvalues 5, 3, 1
    const { values, vectors } = symmetricEigen(Float64Array.from([2, 1, 0, 1, 2, 0, 0, 0, 5]), 3);
    expect(Array.from(values)).toEqual([expect.closeTo(5, 12), expect.closeTo(3, 12), expect.closeTo(1, 12)]);
    expect(Math.abs(vectors[0]![2]!)).toBeCloseTo(1, 12);
    expect(Math.abs(vectors[1]![0]! * Math.SQRT2)).toBeCloseTo(1, 12);
    expect(vectors[1]![0]! * vectors[1]![1]!).toBeGreaterThan(0);       // (1, 1, 0) / sqrt 2 for 3
  });

  it('rebuilds a random symmetric matrix from its eigenpairs', () => {
    const n = 24;
    const rng = mulberry32(5);
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i += 1) for (let j = i; j < n; j += 1) a[i * n + j] = a[j * n + i] = rng() - 0.5;
    const { values, vectors } = symmetricEigen(a, n);
    for (let i = 0; i < n; i += 1) {
      for (let j = 0; j < n; j += 1) {
        let sum = 0;
        for (let k = 0; k < n; k += 1) sum += values[k]! * vectors[k]![i]! * vectors[k]![j]!;
        expect(sum).toBeCloseTo(a[i * n + j]!, 10);
      }
    }
    for (let k = 1; k < n; k += 1) expect(values[k]!).toBeLessThanOrEqual(values[k - 1]!);
  });
});

describe('fitDomainStats and domainDistance', () => {
  // 2000 points in 6 dimensions, spread 3, 1 and 0.1 along the first three axes, almost none along the rest
  const rng = mulberry32(11);
  const spread = [3, 1, 0.1, 0.01, 0.01, 0.01];
  const samples = Array.from({ length: 2000 }, () => Float64Array.from(spread, (s) => 10 + s * normal(rng)));
  const fitted = fitDomainStats(samples, 3);
  const stats: DomainStats = { ...fitted, threshold: 30, encoderFile: 'encoder.onnx', encoderSha256: '0'.repeat(64) };

  it('recovers the mean, the variances along the principal axes and the residual variance', () => {
    fitted.mean.forEach((m) => expect(m).toBeCloseTo(10, 0));
    expect(fitted.variances[0]).toBeCloseTo(9, 0);
    expect(fitted.variances[1]).toBeCloseTo(1, 0);
    expect(fitted.variances[2]).toBeCloseTo(0.01, 2);
    expect(fitted.residualVariance).toBeCloseTo(1e-4, 4);
    expect(Math.abs(fitted.basis[0]![0]!)).toBeCloseTo(1, 2);
  });

  it('is the squared Mahalanobis distance: the average training point is about as far as the dimensions', () => {
    const mean = samples.reduce((sum, s) => sum + domainDistance(stats, s), 0) / samples.length;
    expect(mean).toBeGreaterThan(5);
    expect(mean).toBeLessThan(7);
    // 6 standard deviations along the widest axis is as far as 0.6 along an axis the training points never leave
    const wide = Float64Array.from(fitted.mean);
    wide[0] = wide[0]! + 6 * 3;
    const off = Float64Array.from(fitted.mean);
    off[4] = off[4]! + 0.6;
    expect(domainCheck(stats).judge(wide).inDomain).toBe(false);
    expect(domainDistance(stats, wide)).toBeCloseTo(36, 0);
    expect(domainDistance(stats, off)).toBeCloseTo(36 * 100, -2);
    expect(domainCheck(stats).judge(fitted.mean).score).toBeCloseTo(0, 6);
  });

  it('pools features over positions, image by image', () => {
    // [2 images, 2 positions, 3 features]
    const features = Float32Array.from([1, 2, 3, 3, 4, 5, 10, 10, 10, 20, 20, 20]);
    expect(Array.from(poolFeatures(features, [2, 2, 3], 0))).toEqual([2, 3, 4]);
    expect(Array.from(poolFeatures(features, [2, 2, 3], 1))).toEqual([15, 15, 15]);
    expect(Array.from(poolFeatures(Float32Array.from([1, 2, 3, 4]), [2, 2], 1))).toEqual([3, 4]);
  });

  it('rejects wrong inputs with a specific message', () => {
    expect(() => fitDomainStats(samples.slice(0, 1), 1)).toThrow('Expected at least 2 feature vectors');
    expect(() => fitDomainStats(samples, 7)).toThrow('Expected `components` to be an integer from 1 to 6, got `7` (number)');
    expect(() => domainDistance(stats, [1, 2])).toThrow('Expected 6 pooled encoder features');
  });
});

describe('domain.json', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pictalk-domain-'));
    cpSync(BUILTIN, join(dir, 'captioner'), { recursive: true });
  });
  afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

  it('is bound to the encoder it was calibrated with', () => {
    const folder = join(dir, 'captioner');
    const encoder = join(folder, 'encoder.int8.onnx');
    const stats = readDomainStats(join(folder, 'domain.json'), encoder);
    expect(stats.encoderSha256).toBe(sha256File(encoder));
    expect(() => readDomainStats(join(folder, 'domain.json'), join(folder, 'encoder.onnx')))
      .toThrow(/calibrated for another encoder than encoder\.onnx; run models\/train\/calibrate_domain\.ts again/);
  });

  it('writes what it reads back', () => {
    const folder = join(dir, 'captioner');
    const encoder = join(folder, 'encoder.int8.onnx');
    const stats = readDomainStats(join(folder, 'domain.json'), encoder);
    const copy = join(dir, 'copy.json');
    writeFileSync(copy, domainJson(stats, { note: 'round trip' }));
    const again = readDomainStats(copy, encoder);
    const probe = Float32Array.from(stats.mean, (m, i) => m + (i % 7) * 0.01);
    expect(domainDistance(again, probe)).toBeCloseTo(domainDistance(stats, probe), 1);
    expect(again.threshold).toBe(stats.threshold);
  });

  it('names a malformed field', () => {
    const folder = join(dir, 'captioner');
    const json = JSON.parse(readFileSync(join(folder, 'domain.json'), 'utf8')) as Record<string, unknown>;
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ ...json, variances: [1, 2] }));
    expect(() => readDomainStats(bad, join(folder, 'encoder.int8.onnx'))).toThrow(/Expected `variances` in .*bad\.json to be 32 positive numbers, got an array of 2/);
    writeFileSync(bad, JSON.stringify({ ...json, threshold: -1 }));
    expect(() => readDomainStats(bad, join(folder, 'encoder.int8.onnx'))).toThrow(/Expected `threshold` in .*bad\.json to be a positive number/);
    writeFileSync(bad, JSON.stringify({ ...json, method: 'knn' }));
    expect(() => readDomainStats(bad, join(folder, 'encoder.int8.onnx'))).toThrow('to be pca-mahalanobis, got `"knn"` (string)');
  });
});

describe('the builtin captioner\'s domain check', () => {
  let captioner: ImageToText;
  let world: Buffer[];
  let dir: string;
  beforeAll(async () => {
    captioner = await loadImageToText(BUILTIN);
    const renderer = await WorldRenderer.create();
    // the eval's seed: none of these were fitted or calibrated on
    world = await Promise.all([0, 1, 2, 3].map(async (index) => (await drawImage(renderer, 1234, 'test', index)).png));
    dir = mkdtempSync(join(tmpdir(), 'pictalk-general-'));
  });
  afterAll(async () => {
    await captioner.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('captions drawn world pictures and declines real photographs, keeping the guess', async () => {
    const results = (await captioner.captionBatch([...world, ...PHOTOS].map((image) => ({ image, beam: 2 })))) as CaptionResult[];
    expect(results.map((r) => r.inDomain)).toEqual([true, true, true, true, false, false, false, false]);
    for (const r of results.slice(0, 4)) expect(r.domainScore).toBeLessThan(1);
    for (const r of results.slice(4)) {
      expect(r.domainScore).toBeGreaterThan(1);
      expect(r.caption).toMatch(/^[A-Z].*\.$/);                  // the guess is still there, on request
    }
  });

  it('judges in captionBatch exactly what embed and the check say', async () => {
    const images = [world[0]!, PHOTOS[0]!];
    const pooled = await captioner.embed(images);
    expect(pooled[0]).toHaveLength(captioner.domain!.stats.dims);
    const results = (await captioner.captionBatch(images.map((image) => ({ image, beam: 1 })))) as CaptionResult[];
    results.forEach((r, i) => expect(r.domainScore).toBeCloseTo(captioner.domain!.judge(pooled[i]!).score, 6));
  });

  it('has no check in a folder that says it is general-purpose', async () => {
    const folder = join(dir, 'general');
    cpSync(BUILTIN, folder, { recursive: true });
    const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(folder, 'config.json'), JSON.stringify({ ...config, general_purpose: true }));
    const general = await loadImageToText(folder);
    try {
      expect(general.domain).toBeUndefined();
      const [result] = (await general.captionBatch([{ image: PHOTOS[0]!, beam: 1 }])) as CaptionResult[];
      expect(result!.inDomain).toBe(true);
      expect(result!.domainScore).toBeUndefined();
    } finally {
      await general.dispose();
    }
    writeFileSync(join(folder, 'config.json'), JSON.stringify({ ...config, general_purpose: 'yes' }));
    await expect(loadImageToText(folder)).rejects.toMatchObject({
      code: 'model.invalid', message: expect.stringContaining('Expected `general_purpose` in'),
    });
  });
});
