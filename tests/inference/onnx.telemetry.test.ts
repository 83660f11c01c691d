/**
 * onnxruntime's telemetry stays off in pictalk's processes unless the operator turns it on: opening a model leaves no
 * telemetry queue under the home folder and no `mat-debug-PID.log` or `.ses` in the temporary folder
 * (inference/onnx.backend.ts, quietOnnxruntime). Each case is a real child process, with its home and temporary
 * folder pointed at a folder of its own: a test file's process.env is Jest's copy, not the one onnxruntime reads.
 * Whether onnxruntime writes anything with telemetry on depends on the host (a machine without a CA bundle, for one,
 * writes nothing), so the operator's case checks the setting that reaches onnxruntime, not the files.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = process.cwd();
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const BACKEND = pathToFileURL(join(ROOT, 'inference/onnx.backend.ts')).href;
const MODEL = join(ROOT, 'models/builtin/recognizer/recognizer.onnx');
const SCRIPT = `const { openModel } = await import(${JSON.stringify(BACKEND)});
const model = await openModel(${JSON.stringify(MODEL)});
process.stdout.write(String(process.env.ORT_DISABLE_TELEMETRY));
await model.dispose();
process.exit(0);`;

/** Open a model in a child process whose home and temporary folder are `dir`; its stdout, and what `dir` holds after. */
function openIn(dir: string, telemetry?: string): { said: string; left: string[] } {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== 'ORT_DISABLE_TELEMETRY'));
  const result = spawnSync(process.execPath, ['--import', TSX, '--input-type=module', '-e', SCRIPT], {
    cwd: ROOT, encoding: 'utf8', timeout: 60_000,
    env: { ...env, HOME: dir, TMPDIR: dir, ...(telemetry !== undefined ? { ORT_DISABLE_TELEMETRY: telemetry } : {}) },
  });
  if (result.status !== 0) throw new Error(`the child exited with ${result.status}: ${result.stderr}`);
  // tsx keeps its compile cache in the temporary folder (tsx-UID): not onnxruntime's
  return { said: result.stdout.trim(), left: readdirSync(dir).filter((name) => !/^tsx-\d+$/.test(name)).sort() };
}

describe('onnxruntime telemetry', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'pictalk-telemetry-')); });
  afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

  it('is off by default: opening a model writes nothing to the home or temporary folder', () => {
    const { said, left } = openIn(dir);
    expect(said).toBe('1');
    expect(left).toEqual([]);
  }, 70_000);

  it('is left as the operator set it (0: on)', () => {
    expect(openIn(dir, '0').said).toBe('0');
    expect(openIn(dir, 'yes').said).toBe('yes');
  }, 130_000);
});
