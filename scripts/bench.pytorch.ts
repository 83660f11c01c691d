/**
 * The PyTorch eager reference: models/train/sample_ddim.py (DDIM, eta 0, classifier-free guidance over one
 * [uncond, cond] batch) on THE SAME weights, read from the shipped ONNX folder by models/train/onnx_weights.py,
 * with the same steps, guidance and thread count. Its per-image time excludes PNG encoding (it makes none).
 *
 * The reference stays loaded in a child process (`sample_ddim.py --serve`) and makes its images in blocks when asked,
 * so that the bench can time a block of its own images, then a block of the reference's, and so on: both sides are
 * timed in the same minutes of the host, whose speed moves by a third from one minute to the next
 * (scripts/BENCH.md, "The round of the alternating reference").
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../common/package-root.js';
import { round, summarize } from './bench.stats.js';

export interface PytorchReference {
  command: string;
  /** Median over every timed run (after one warm-up): encode + denoise + decode of one image. */
  per_image_ms: number;
  min_ms: number;
  /** Every timed run, in the order made; `blocks` says how they were grouped. */
  runs_ms: number[];
  /** Median per stage over every timed run. */
  timings_ms: Record<string, number>;
  /** Runs per block, in the order the blocks were made (between the TypeScript side's blocks). */
  blocks: number[];
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
}

/** The loaded reference: `run(n)` makes n more timed images; `result()` sums up every run so far. */
export class PytorchServer {
  private readonly lines: AsyncIterator<string>;
  private readonly runs: number[] = [];
  private readonly stages = new Map<string, number[]>();
  private readonly blocks: number[] = [];
  private stderr = '';
  private spawnError: Error | undefined;

  private constructor(private readonly child: ChildProcessWithoutNullStreams, readonly command: string,
    private readonly started: number, private loadMs = 0) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    child.stderr.on('data', (chunk: Buffer) => { this.stderr = (this.stderr + chunk.toString()).slice(-20_000); });
    child.once('error', (error) => { this.spawnError = error; });   // no such Python: it closes after this
    child.stdin.on('error', () => { /* a child that died: next() says why */ });
  }

  /** Start the child, load the weights and make its warm-up image. */
  static async open(settings: PytorchSettings): Promise<PytorchServer> {
    const script = join(packageRoot(), 'models', 'train', 'sample_ddim.py');
    const args = [script, '--onnx', resolve(settings.onnxDir), '--prompt', settings.prompt, '--steps', String(settings.steps),
      '--guidance', String(settings.guidance), '--seed', '0', '--threads', String(settings.threads), '--serve'];
    const command = [settings.python, ...args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a))].join(' ');
    const child = spawn(settings.python, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const server = new PytorchServer(child, command, performance.now());
    const ready = await server.next() as { ready?: boolean; load_ms?: number };
    if (ready.ready !== true) throw new Error(`Expected the PyTorch reference to say it is ready, it said ${JSON.stringify(ready)}`);
    server.loadMs = ready.load_ms ?? 0;
    return server;
  }

  /** Make `n` timed images now; their times in milliseconds. */
  async run(n: number): Promise<number[]> {
    this.child.stdin.write(`run ${n}\n`);
    const answer = await this.next() as { runs_ms?: number[]; timings_ms?: Record<string, number[]>; error?: string };
    if (!answer.runs_ms || answer.runs_ms.length !== n) throw new Error(`Expected ${n} runs from the PyTorch reference, got ${JSON.stringify(answer).slice(0, 200)}`);
    this.runs.push(...answer.runs_ms);
    for (const [stage, values] of Object.entries(answer.timings_ms ?? {})) this.stages.set(stage, [...(this.stages.get(stage) ?? []), ...values]);
    this.blocks.push(n);
    return answer.runs_ms;
  }

  result(): PytorchReference {
    const runs = summarize(this.runs);
    return {
      command: this.command,
      per_image_ms: runs.p50,
      min_ms: runs.min,
      runs_ms: this.runs.map((v) => round(v)),
      timings_ms: Object.fromEntries([...this.stages].map(([stage, values]) => [stage, summarize(values).p50])),
      blocks: [...this.blocks],
      load_ms: round(this.loadMs, 1),
      wall_s: round((performance.now() - this.started) / 1000),
    };
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((done) => this.child.once('close', () => done()));
    this.child.stdin.end('quit\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  /** The child's next JSON line; a child that exits first is an error naming what it printed. */
  private async next(): Promise<unknown> {
    const line = await this.lines.next();
    if (line.done) {
      const code = await new Promise<number | null>((done) => {
        if (this.child.exitCode !== null || this.child.signalCode !== null) done(this.child.exitCode);
        else this.child.once('close', (exit) => done(exit));
      });
      if (this.spawnError) throw new Error(`Expected to start the PyTorch reference: ${this.spawnError.message} (${this.command})`);
      const missing = this.stderr.split('\n').find((l) => l.startsWith('missing Python package'));
      if (missing) throw new Error(missing); // models/train/needs.py: one line naming the package
      // torch prints NNPACK warnings on some CPUs; show the end, where the real error is
      throw new Error(`Expected the PyTorch reference to keep running, it exited ${code}: ${this.command}\n${this.stderr.split('\n').filter((l) => !l.includes('NNPACK')).slice(-15).join('\n')}`);
    }
    try {
      return JSON.parse(line.value) as unknown;
    } catch {
      throw new Error(`Expected one JSON line from the PyTorch reference, got ${JSON.stringify(line.value.slice(0, 200))}`);
    }
  }
}
