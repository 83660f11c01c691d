import { readFileSync } from 'node:fs';
/**
 * Small measuring tools for the benchmark: timing summaries, a memory sampler and the machine's facts.
 */
import { cpus, freemem, loadavg, totalmem } from 'node:os';

export interface Summary {
  n: number;
  p50: number;
  p95: number;
  min: number;
  max: number;
  mean: number;
}

/** `value` rounded to `digits` decimals (0.01 by default), as every figure of the bench is reported. */
export const round = (value: number, digits = 2): number => Number(value.toFixed(digits));

/** Nearest-rank percentile (p in 0..100) of sorted values: the smallest value with at least p% at or below it. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** p50 / p95 / min / max / mean of millisecond samples, rounded to 0.01 ms. */
export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length);
  return {
    n: sorted.length,
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    min: round(sorted[0] ?? Number.NaN),
    max: round(sorted.at(-1) ?? Number.NaN),
    mean: round(mean),
  };
}

/** Time `fn` `runs` times after `warmup` untimed calls; milliseconds per call. */
export async function timeRuns(runs: number, warmup: number, fn: (i: number) => Promise<unknown> | unknown): Promise<number[]> {
  for (let i = 0; i < warmup; i += 1) await fn(-1 - i);
  const out: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    const started = performance.now();
    await fn(i);
    out.push(performance.now() - started);
  }
  return out;
}

/** Samples process.memoryUsage().rss on a timer; the peak it saw, and the kernel's max RSS at the end. */
export class MemorySampler {
  private peakRss = 0;
  private peakHeap = 0;
  private samples = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs = 25) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample(): void {
    const usage = process.memoryUsage();
    this.samples += 1;
    if (usage.rss > this.peakRss) this.peakRss = usage.rss;
    if (usage.heapUsed > this.peakHeap) this.peakHeap = usage.heapUsed;
  }

  stop(): { rss_peak_sampled_mb: number; max_rss_mb: number; heap_used_peak_mb: number; samples: number } {
    clearInterval(this.timer);
    this.sample();
    const mb = (bytes: number): number => round(bytes / 2 ** 20, 1);
    return {
      rss_peak_sampled_mb: mb(this.peakRss),
      // resourceUsage().maxRSS is in kilobytes (getrusage ru_maxrss on Linux): the true peak of this process
      max_rss_mb: mb(process.resourceUsage().maxRSS * 1024),
      heap_used_peak_mb: mb(this.peakHeap),
      samples: this.samples,
    };
  }
}

export interface MachineFacts {
  cpus: number;
  cpu_model: string;
  /** /proc/cpuinfo's family, model and stepping, its MHz, and the flags that decide onnxruntime's kernels. */
  cpu_id: string;
  cpu_mhz: number | null;
  cpu_flags: string[];
  node: string;
  platform: string;
  arch: string;
  total_mem_mb: number;
  free_mem_mb_at_start: number;
  /** 1, 5 and 15 minute load averages when the bench started (the machine may be shared). */
  loadavg_start: number[];
}

/**
 * The CPU flags onnxruntime's kernels are chosen by (MLAS: AVX2/FMA for float, AVX-512, VNNI and AMX for int8,
 * F16C/BF16), as /proc/cpuinfo lists them; empty where there is no /proc/cpuinfo.
 */
const KERNEL_FLAGS = ['sse4_1', 'avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx_vnni',
  'avx512_bf16', 'avx512_fp16', 'amx_tile', 'amx_int8', 'amx_bf16'];

function cpuInfo(): { id: string; mhz: number | null; flags: string[] } {
  let text = '';
  try { text = readFileSync('/proc/cpuinfo', 'utf8'); } catch { return { id: 'unknown', mhz: null, flags: [] }; }
  const first = text.split('\n\n')[0] ?? '';
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(first)?.[1]?.trim();
  const have = new Set((field('flags') ?? '').split(/\s+/));
  const mhz = Number(field('cpu MHz'));
  return {
    id: `family ${field('cpu family') ?? '?'} model ${field('model') ?? '?'} stepping ${field('stepping') ?? '?'}`,
    mhz: Number.isFinite(mhz) ? Math.round(mhz) : null,
    flags: KERNEL_FLAGS.filter((flag) => have.has(flag)),
  };
}

export function machineFacts(): MachineFacts {
  const list = cpus();
  const info = cpuInfo();
  return {
    cpus: list.length,
    cpu_model: list[0]?.model ?? 'unknown',
    cpu_id: info.id,
    cpu_mhz: info.mhz,
    cpu_flags: info.flags,
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    total_mem_mb: Math.round(totalmem() / 2 ** 20),
    free_mem_mb_at_start: Math.round(freemem() / 2 ** 20),
    loadavg_start: loadavg().map((v) => round(v)),
  };
}

export const loadAverage = (): number[] => loadavg().map((v) => round(v));
