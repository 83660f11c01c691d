/**
 * The captioner's out-of-domain check: is this picture like the ones the captioner was trained on?
 *
 * The builtin captioner knows only the drawn world; on a photograph, a screenshot or a drawing it still writes a
 * fluent, confident and wrong caption (its own scores do not drop reliably). What does change is where the image
 * lands in the encoder's feature space. The check measures that: the encoder's features averaged over positions
 * (`[B, N, F] -> [B, F]`), and their Mahalanobis distance to the training images' features, in the top-K principal
 * components plus the residual outside them (PCA Mahalanobis, "distance in feature space and distance from feature
 * space"). An image whose distance passes the calibrated threshold is out of domain.
 *
 * The statistics live in `domain.json` in the captioner folder (models/README.md); models/train/calibrate_domain.ts
 * writes them from seeded world images, and `npm run eval` measures the check on held-out world images and on real
 * photographs. A folder whose config.json says `"general_purpose": true` (a Flickr8k-trained captioner) has no check.
 * @see Lee et al., "A Simple Unified Framework for Detecting Out-of-Distribution Samples and Adversarial Attacks", 2018
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { PictalkError, describe } from '../common/errors.js';

export const DOMAIN_FILE = 'domain.json';

/** What `domain.json` holds (the JSON keys are snake_case, as in config.json). */
export interface DomainStats {
  /** The encoder graph the statistics were measured with, and its sha256: other features, other statistics. */
  encoderFile: string;
  encoderSha256: string;
  /** Features per image after averaging over positions. */
  dims: number;
  mean: Float64Array;                  // [F]
  /** Principal directions of the training features, orthonormal rows, largest variance first. */
  basis: Float64Array[];               // K x [F]
  variances: Float64Array;             // [K], the variance along each direction
  /** The mean variance of the F - K directions left out. */
  residualVariance: number;
  /** A distance above this is out of domain. */
  threshold: number;
}

/** One image's verdict: `score` is the distance divided by the threshold (above 1: out of domain). */
export interface DomainVerdict {
  inDomain: boolean;
  score: number;
}

export interface DomainCheck {
  readonly stats: DomainStats;
  /** The verdict for one image's pooled features. */
  judge(pooled: ArrayLike<number>): DomainVerdict;
}

/** Average the encoder's features of image `i` over positions: features [B, ...positions, F] -> [F]. */
export function poolFeatures(features: Float32Array, dims: readonly number[], i: number): Float32Array {
  const featureSize = dims[dims.length - 1]!;
  const perImage = dims.slice(1).reduce((a, b) => a * b, 1);
  const positions = perImage / featureSize;
  const pooled = new Float64Array(featureSize);
  const base = i * perImage;
  for (let p = 0; p < positions; p += 1) {
    const row = base + p * featureSize;
    for (let f = 0; f < featureSize; f += 1) pooled[f] = pooled[f]! + features[row + f]!;
  }
  return Float32Array.from(pooled, (v) => v / positions);
}

/** The squared PCA Mahalanobis distance of pooled features to the training features. */
export function domainDistance(stats: DomainStats, pooled: ArrayLike<number>): number {
  const { mean, basis, variances, residualVariance, dims } = stats;
  if (pooled.length !== dims) throw new PictalkError('model.invalid', `Expected ${dims} pooled encoder features for the domain check, got ${pooled.length}`);
  const centred = new Float64Array(dims);
  let total = 0;
  for (let f = 0; f < dims; f += 1) {
    centred[f] = pooled[f]! - mean[f]!;
    total += centred[f]! * centred[f]!;
  }
  let inside = 0;
  let explained = 0;
  basis.forEach((direction, k) => {
    let z = 0;
    for (let f = 0; f < dims; f += 1) z += direction[f]! * centred[f]!;
    inside += (z * z) / variances[k]!;
    explained += z * z;
  });
  // the part of the image's features outside the K directions, against the variance the training images have there
  const residual = Math.max(0, total - explained);
  return inside + (basis.length < dims ? residual / residualVariance : 0);
}

export function domainCheck(stats: DomainStats): DomainCheck {
  return {
    stats,
    judge(pooled) {
      const score = domainDistance(stats, pooled) / stats.threshold;
      return { inDomain: score <= 1, score };
    },
  };
}

export const sha256File = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

// ---- domain.json -------------------------------------------------------------------------------------------------

type Json = Record<string, unknown>;

function invalid(path: string, message: string): PictalkError {
  return new PictalkError('model.invalid', message, { path });
}

function numbers(value: unknown, what: string, path: string, length: number, positive = false): Float64Array {
  if (!Array.isArray(value) || value.length !== length || value.some((v) => typeof v !== 'number' || !Number.isFinite(v) || (positive && v <= 0))) {
    throw invalid(path, `Expected ${what} in ${path} to be ${length} ${positive ? 'positive ' : ''}numbers, got ${Array.isArray(value) ? `an array of ${value.length}` : describe(value)}`);
  }
  return Float64Array.from(value as number[]);
}

function positive(json: Json, key: string, path: string): number {
  const value = json[key];
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw invalid(path, `Expected \`${key}\` in ${path} to be a positive number, got ${describe(value)}`);
  }
  return value;
}

/**
 * Read and check `domain.json` against the encoder graph it belongs to: statistics measured with another encoder
 * would judge every image by the wrong features, so a mismatch is `model.invalid` (recalibrate).
 */
export function readDomainStats(path: string, encoderPath: string): DomainStats {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw invalid(path, `Expected valid JSON in ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw invalid(path, `Expected a JSON object in ${path}, got ${describe(json)}`);
  const o = json as Json;
  if (o.method !== 'pca-mahalanobis') throw invalid(path, `Expected \`method\` in ${path} to be pca-mahalanobis, got ${describe(o.method)}`);
  const dims = o.dims;
  if (typeof dims !== 'number' || !Number.isInteger(dims) || dims < 1) throw invalid(path, `Expected \`dims\` in ${path} to be a positive integer, got ${describe(dims)}`);
  const basisJson = o.basis;
  if (!Array.isArray(basisJson) || basisJson.length < 1 || basisJson.length > dims) {
    throw invalid(path, `Expected \`basis\` in ${path} to be 1 to ${dims} rows, got ${Array.isArray(basisJson) ? `${basisJson.length} rows` : describe(basisJson)}`);
  }
  const k = basisJson.length;
  const basis = basisJson.map((row, i) => numbers(row, `row ${i} of \`basis\``, path, dims));
  const encoderSha256 = o.encoder_sha256;
  const encoderFile = o.encoder_file;
  if (typeof encoderFile !== 'string' || typeof encoderSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(encoderSha256)) {
    throw invalid(path, `Expected \`encoder_file\` and a hex \`encoder_sha256\` in ${path}, got ${describe(encoderFile)} and ${describe(encoderSha256)}`);
  }
  if (encoderFile !== basename(encoderPath) || sha256File(encoderPath) !== encoderSha256) {
    throw invalid(path, `${path} was calibrated for another encoder than ${basename(encoderPath)}; run models/train/calibrate_domain.ts again `
      + 'for this folder (or set "general_purpose": true in config.json to turn the check off)');
  }
  return {
    encoderFile,
    encoderSha256,
    dims,
    mean: numbers(o.mean, '`mean`', path, dims),
    basis,
    variances: numbers(o.variances, '`variances`', path, k, true),
    residualVariance: positive(o, 'residual_variance', path),
    threshold: positive(o, 'threshold', path),
  };
}

// ---- fitting (models/train/calibrate_domain.ts) --------------------------------------------------------------------

/**
 * Eigen-decomposition of a symmetric matrix (row-major [n, n]) by cyclic Jacobi rotations: eigenvalues largest
 * first, with their unit eigenvectors as rows. Deterministic, exact to rounding; n of a few hundred takes a second.
 * @see Golub and Van Loan, Matrix Computations, 4th ed., section 8.5 (the cyclic Jacobi method)
 */
export function symmetricEigen(matrix: Float64Array, n: number): { values: Float64Array; vectors: Float64Array[] } {
  const a = Float64Array.from(matrix);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i += 1) v[i * n + i] = 1;
  const offNorm = (): number => {
    let sum = 0;
    for (let p = 0; p < n; p += 1) for (let q = p + 1; q < n; q += 1) sum += a[p * n + q]! * a[p * n + q]!;
    return Math.sqrt(sum);
  };
  let scale = 0;
  for (let i = 0; i < n * n; i += 1) scale += a[i]! * a[i]!;
  scale = Math.sqrt(scale);
  for (let sweep = 0; sweep < 100 && offNorm() > 1e-14 * scale; sweep += 1) {
    for (let p = 0; p < n - 1; p += 1) {
      for (let q = p + 1; q < n; q += 1) {
        const apq = a[p * n + q]!;
        if (Math.abs(apq) <= 1e-300) continue;
        const app = a[p * n + p]!;
        const aqq = a[q * n + q]!;
        // the rotation that zeroes a[p][q]: t = tan(theta), the smaller root
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k += 1) {
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k += 1) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k += 1) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j]! - a[i * n + i]!);
  return {
    values: Float64Array.from(order, (i) => a[i * n + i]!),
    vectors: order.map((i) => Float64Array.from({ length: n }, (_, k) => v[k * n + i]!)),
  };
}

/** Mean, top-`components` principal directions and residual variance of pooled training features. */
export function fitDomainStats(samples: readonly ArrayLike<number>[], components: number): Omit<DomainStats, 'threshold' | 'encoderFile' | 'encoderSha256'> {
  const count = samples.length;
  const dims = samples[0]?.length ?? 0;
  if (count < 2 || dims === 0) throw new PictalkError('input.invalid', `Expected at least 2 feature vectors to fit the domain statistics, got ${count}`);
  if (!Number.isInteger(components) || components < 1 || components > dims) {
    throw new PictalkError('input.invalid', `Expected \`components\` to be an integer from 1 to ${dims}, got ${describe(components)}`);
  }
  const mean = new Float64Array(dims);
  for (const sample of samples) for (let f = 0; f < dims; f += 1) mean[f] = mean[f]! + sample[f]! / count;
  const covariance = new Float64Array(dims * dims);   // [F, F], unbiased
  const centred = new Float64Array(dims);
  for (const sample of samples) {
    for (let f = 0; f < dims; f += 1) centred[f] = sample[f]! - mean[f]!;
    for (let i = 0; i < dims; i += 1) {
      const ci = centred[i]! / (count - 1);
      for (let j = i; j < dims; j += 1) covariance[i * dims + j] = covariance[i * dims + j]! + ci * centred[j]!;
    }
  }
  for (let i = 0; i < dims; i += 1) for (let j = 0; j < i; j += 1) covariance[i * dims + j] = covariance[j * dims + i]!;
  const { values, vectors } = symmetricEigen(covariance, dims);
  let trace = 0;
  for (let i = 0; i < dims; i += 1) trace += covariance[i * dims + i]!;
  let kept = 0;
  for (let k = 0; k < components; k += 1) kept += values[k]!;
  // a floor keeps a direction the training images never vary along from dividing by zero
  const floor = Math.max(values[0]! * 1e-6, 1e-12);
  return {
    dims,
    mean,
    basis: vectors.slice(0, components),
    variances: Float64Array.from(values.slice(0, components), (value) => Math.max(value, floor)),
    residualVariance: components < dims ? Math.max((trace - kept) / (dims - components), floor) : 1,
  };
}

/** The `domain.json` text of fitted statistics; numbers to 7 significant digits (float32 features). */
export function domainJson(stats: DomainStats, calibration: Record<string, unknown>): string {
  const round = (values: ArrayLike<number>): number[] => Array.from(values, (v) => Number(v.toPrecision(7)));
  return `${JSON.stringify({
    method: 'pca-mahalanobis',
    feature: 'encoder features averaged over positions',
    encoder_file: stats.encoderFile,
    encoder_sha256: stats.encoderSha256,
    dims: stats.dims,
    threshold: Number(stats.threshold.toPrecision(7)),
    residual_variance: Number(stats.residualVariance.toPrecision(7)),
    variances: round(stats.variances),
    calibration,
    mean: round(stats.mean),
    basis: stats.basis.map(round),
  })}\n`;
}
