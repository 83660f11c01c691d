/**
 * Command-line options of the benchmark (scripts/bench.ts), validated up front with one message shape.
 */
import { PictalkError, describe } from '../common/errors.js';

export interface BenchOptions {
  /** One JSON object on stdout, nothing else; progress goes to stderr either way. */
  json: boolean;
  /** ORT intra-op threads and torch threads; 0 = onnxruntime's default. */
  threads: number;
  /** ORT intra-op threads of the pipelines behind the throughput levels; 0 = onnxruntime's default, as the bot runs. */
  throughputThreads: number;
  /** Timed runs per end-to-end measurement (imagine, speak, PyTorch); the cheap stages take 5x as many. */
  runs: number;
  skipPytorch: boolean;
  /** A shape check: one warm-up, one job per client in the throughput levels. Figures from it mean little. */
  quick: boolean;
  python: string;
  t2iDir: string;
  captionerDir: string;
  help: boolean;
  /** The cluster benchmark instead (scripts/bench.cluster.ts): hop latency and imagine scaling over Redis workers. */
  cluster: boolean;
  /** The Discord interactions endpoint's ack latency while the models are busy (scripts/bench.discord.ts). */
  discordHttp: boolean;
  /** What live previews cost the denoising (scripts/bench.previews.ts). */
  previews: boolean;
}

export const DEFAULT_THREADS = 1;
export const DEFAULT_RUNS = 20;

export const USAGE = `Usage: npm run bench -- [--json] [--threads N] [--runs N] [--skip-pytorch] [--quick] [--cluster] [--discord-http] [--previews]
  --json            print one JSON object on stdout (progress goes to stderr)
  --cluster         the cluster benchmark: a private Redis and worker processes (cluster_hop_p50_ms, scaling, vs single process)
  --discord-http    the Discord interactions endpoint: ack latency of 50 signed interactions at once while images generate
  --previews        what live previews cost the denoising: a preview at every step against none (preview_denoise_overhead)
  --threads N       onnxruntime intra-op threads and torch threads (default ${DEFAULT_THREADS}; 0 = onnxruntime's default)
  --throughput-threads N   onnxruntime threads for the throughput levels (default 0: onnxruntime's default, as the bot runs)
  --runs N          timed runs per end-to-end figure (default ${DEFAULT_RUNS}); cheap stages take 5x as many
  --skip-pytorch    leave out the PyTorch reference sampler (speedup_vs_pytorch is then null)
  --quick           a shape check: one warm-up, one job per client in the throughput levels
  --python CMD      the Python interpreter for the reference (default python3, or $PYTHON)
  --t2i DIR         text-to-image model folder (default models/builtin/text-to-image)
  --captioner DIR   captioner folder (default models/builtin/captioner)`;

function integer(name: string, raw: string | undefined, min: number, max: number): number {
  const value = raw === undefined || raw.trim() === '' ? Number.NaN : Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new PictalkError('input.invalid', `Expected \`${name}\` to be an integer from ${min} to ${max}, got ${describe(raw)}`);
  }
  return value;
}

export function parseBenchOptions(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const options: BenchOptions = {
    json: false, threads: DEFAULT_THREADS, throughputThreads: 0, runs: DEFAULT_RUNS, skipPytorch: false, quick: false,
    python: env.PYTHON?.trim() || 'python3',
    t2iDir: 'models/builtin/text-to-image', captionerDir: 'models/builtin/captioner', help: false, cluster: false, discordHttp: false, previews: false,
  };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      if (inline !== undefined) return inline;
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new PictalkError('input.invalid', `Expected a value after \`${flag}\`, got none`);
      i += 1;
      return next;
    };
    switch (flag) {
      case '--json': options.json = true; break;
      case '--skip-pytorch': options.skipPytorch = true; break;
      case '--quick': options.quick = true; break;
      case '--cluster': options.cluster = true; break;
      case '--discord-http': options.discordHttp = true; break;
      case '--previews': options.previews = true; break;
      case '--help': case '-h': options.help = true; break;
      case '--threads': options.threads = integer('--threads', value(), 0, 256); break;
      case '--throughput-threads': options.throughputThreads = integer('--throughput-threads', value(), 0, 256); break;
      case '--runs': options.runs = integer('--runs', value(), 1, 1000); break;
      case '--python': options.python = value(); break;
      case '--t2i': options.t2iDir = value(); break;
      case '--captioner': options.captionerDir = value(); break;
      default:
        throw new PictalkError('input.invalid', `Expected one of the options in the usage below, got ${describe(arg)}\n${USAGE}`);
    }
  }
  return options;
}
