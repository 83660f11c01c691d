/**
 * The PyTorch eager reference: models/train/sample_ddim.py (DDIM, eta 0, classifier-free guidance over one
 * [uncond, cond] batch) on THE SAME weights, read from the shipped ONNX folder by models/train/onnx_weights.py,
 * with the same steps, guidance and thread count. Its per-image time excludes PNG encoding (it makes none).
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { packageRoot } from '../common/package-root.js';

export interface PytorchReference {
  command: string;
  /** Median over `repeat` runs after one warm-up: encode + denoise + decode of one image. */
  per_image_ms: number;
  min_ms: number;
  runs_ms: number[];
  timings_ms: Record<string, number>;
  load_ms: number;
  wall_s: number;
}

export interface PytorchSettings {
  python: string;
  onnxDir: string;
  prompt: string;
  steps: number;
  guidance: number;
  threads: number;
  repeat: number;
}

export async function runPytorchReference(settings: PytorchSettings): Promise<PytorchReference> {
  const script = join(packageRoot(), 'models', 'train', 'sample_ddim.py');
  const args = [script, '--onnx', resolve(settings.onnxDir), '--prompt', settings.prompt, '--steps', String(settings.steps),
    '--guidance', String(settings.guidance), '--seed', '0', '--threads', String(settings.threads), '--repeat', String(settings.repeat), '--json'];
  const command = [settings.python, ...args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a))].join(' ');
  const started = performance.now();
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((done, fail) => {
    const child = spawn(settings.python, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { err += chunk.toString(); });
    child.on('error', fail);
    child.on('close', (exit) => done({ code: exit, stdout: out, stderr: err }));
  });
  const missing = stderr.split('\n').find((l) => l.startsWith('missing Python package'));
  if (code !== 0 && missing) throw new Error(missing); // models/train/needs.py: one line naming the package
  if (code !== 0) {
    // torch prints NNPACK warnings on some CPUs; show the end, where the real error is
    throw new Error(`Expected the PyTorch reference to exit 0, it exited ${code}: ${command}\n${stderr.split('\n').filter((l) => !l.includes('NNPACK')).slice(-15).join('\n')}`);
  }
  const line = stdout.trim().split('\n').at(-1) ?? '';
  let parsed: { timings_ms: Record<string, number>; runs_ms: number[]; load_ms: number };
  try {
    parsed = JSON.parse(line) as typeof parsed;
  } catch {
    throw new Error(`Expected one JSON line from the PyTorch reference, got ${JSON.stringify(line.slice(0, 200))}`);
  }
  return {
    command,
    per_image_ms: Number(parsed.timings_ms.total!.toFixed(2)),
    min_ms: Number(Math.min(...parsed.runs_ms).toFixed(2)),
    runs_ms: parsed.runs_ms.map((v) => Number(v.toFixed(2))),
    timings_ms: Object.fromEntries(Object.entries(parsed.timings_ms).map(([k, v]) => [k, Number(v.toFixed(2))])),
    load_ms: Number(parsed.load_ms.toFixed(1)),
    wall_s: Number(((performance.now() - started) / 1000).toFixed(2)),
  };
}
