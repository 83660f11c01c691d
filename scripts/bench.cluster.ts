/**
 * The cluster benchmark (`npm run bench -- --cluster [--json]`): a private Redis, real `pictalk start --role worker`
 * processes on the builtin models with one onnxruntime thread each (PICTALK_THREADS=1) and every graph on one
 * inference thread (PICTALK_CAPTION_LANES=1: one-thread workers, as several workers sharing a machine one core each
 * run), and a ClusterClient in this process as the front.
 *
 * - cluster_hop_p50_ms / p99: from a front's submit to the `start` event it hears back, on an idle worker (loopback;
 *   caption jobs, run one at a time, so every job finds the worker idle).
 * - cluster_imagine_scaling_w2_w1: imagine jobs per second with two one-thread workers over one (closed loop).
 * - cluster_vs_single_process: one worker's imagine jobs per second over the single process's (an InferenceCore in
 *   this process on the same pipelines, same thread count and imagine batch, same clients and jobs).
 * The three are measured back to back in five rounds, one worker in the middle of each and the other two levels'
 * order swapped from round to round (the second worker started for its level and stopped after it); each ratio is
 * the median of the rounds'.
 * - redis_commands_per_imagine_job: Redis commands (INFO commandstats) per imagine job at one worker, everything
 *   counted: the front's, the worker's and BullMQ's own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from '../common/package-root.js';
import { ClusterClient } from '../inference/cluster/client.js';
import { loadBenchCore } from './bench.core.js';
import { benchImages, benchPrompts } from './bench.inputs.js';
import { percentile, summarize, type Summary } from './bench.stats.js';
import { closedLoop, type ThroughputLevel } from './bench.throughput.js';
import { redisCommand, startRedis, type RedisServer } from './redis.server.js';

export const CLUSTER_TARGETS = { cluster_hop_p50_ms: 20, cluster_hop_p99_ms: 100, cluster_imagine_scaling_w2_w1: 1.6, cluster_vs_single_process: 0.9 };

export interface ClusterBench {
  hop_ms: Summary & { p99: number };
  /** Each round: the three levels back to back, and the Redis commands per job at one worker. */
  rounds: Array<{ single_process: ThroughputLevel; w1: ThroughputLevel; w2: ThroughputLevel; commands_per_job: number }>;
  redis_commands_per_imagine_job: number;
  figures: Record<keyof typeof CLUSTER_TARGETS, number>;
}

const log = (line: string): void => { process.stderr.write(`bench: ${line}\n`); };
const round = (value: number): number => Number(value.toFixed(2));

/** A real worker process: the built command line, `start --role worker`, one onnxruntime thread, one inference thread. */
export async function startWorker(redis: RedisServer, name: string): Promise<ChildProcess> {
  const cli = join(packageRoot(), 'dist/adapters/cli.js');
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(DISCORD_|SLACK_|PICTALK_)/.test(key)));
  // it ends with the bench, whatever ends it (Ctrl-C, a kill): scripts/exit-with-owner.mjs
  const owned = pathToFileURL(join(packageRoot(), 'scripts/exit-with-owner.mjs')).href;
  const child = spawn(process.execPath, ['--import', owned, cli, 'start', '--role', 'worker'], {
    env: { ...env, PICTALK_REDIS_URL: redis.url, PICTALK_THREADS: '1', PICTALK_CAPTION_LANES: '1' }, stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => { output += chunk.toString(); if (output.includes('worker ready')) resolve(); };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}: ${output.slice(-2000)}`)));
  });
  return child;
}

/** Stop a worker (SIGTERM) and wait for it to exit. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

async function commandsServed(redis: RedisServer): Promise<number> {
  const info = String(await redisCommand(redis.port, 'INFO', 'stats'));
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? Number.NaN);
}

export async function benchCluster(options: { t2iDir: string; captionerDir: string; quick: boolean; runs: number }): Promise<ClusterBench> {
  const prompts = benchPrompts(256);
  const images = await benchImages(8);
  const clients = 8;
  const jobs = options.quick ? 8 : Math.max(48, 2 * options.runs);
  const warmup = options.quick ? 0 : 8;
  const hops = options.quick ? 20 : 200;
  const rounds = options.quick ? 1 : 5;
  const imagine = (offset: number) => (i: number) => ({ kind: 'imagine' as const, request: { prompt: prompts[(offset + i) % prompts.length]!, seed: offset + i } });

  // the single process: the same pipelines, one thread, one inference thread, the same imagine batch, in this process
  const backend = { executionProvider: 'cpu' as const, intraOpThreads: 1 };
  const { core, close: closeCore } = await loadBenchCore(options, backend, 1);

  const redis = await startRedis();
  const workers: ChildProcess[] = [];
  let client: ClusterClient | undefined;
  // interrupted (Ctrl-C): leave no worker or Redis behind
  const abandon = (): void => {
    for (const worker of workers) worker.kill('SIGKILL');
    redis.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', abandon);
  process.once('SIGTERM', abandon);
  try {
    workers.push(await startWorker(redis, 'worker-1'));
    client = await ClusterClient.open({ redisUrl: redis.url, maxPerUser: 100 });
    const front = client;
    // as the bot does: a job's claim ends once its reply is out (else the front would keep renewing every job it ran)
    const cluster = {
      submit: async (owner: Parameters<ClusterClient['submit']>[0], input: Parameters<ClusterClient['submit']>[1]) => {
        const handle = await front.submit(owner, input);
        return { id: handle.id, on: handle.on.bind(handle), result: handle.result.finally(() => front.release(handle.id)) };
      },
    };

    log(`cluster: hop from submit to start, ${hops} caption jobs one at a time on an idle worker`);
    const hopMs: number[] = [];
    for (let i = -10; i < hops; i += 1) {
      const submitted = performance.now();
      let started = 0;
      const handle = await cluster.submit({ userId: 'bench-hop', spaceId: 'bench' }, { kind: 'caption', request: { image: images[Math.abs(i) % images.length]! } });
      handle.on('start', () => { started = performance.now(); });
      await handle.result;
      if (i >= 0 && started > 0) hopMs.push(started - submitted);
    }

    // the three levels back to back in rounds, the median round's ratios reported: on a shared machine a level
    // measured a minute after another also measures whatever else ran in between
    log(`cluster: ${rounds} round${rounds > 1 ? 's' : ''} of single process, one worker, two workers; ${clients} clients, ${jobs} imagine jobs each`);
    await closedLoop(core, clients, warmup, imagine(4000));
    await closedLoop(cluster, clients, warmup, imagine(4500));
    const levels: Array<{ single_process: ThroughputLevel; w1: ThroughputLevel; w2: ThroughputLevel; commands_per_job: number }> = [];
    for (let r = 0; r < rounds; r += 1) {
      const offset = 5000 + 1000 * r;
      // one worker in the middle of each round, the other two levels before and after it, their order swapped from
      // round to round: a host that speeds up or slows down during a round moves both ratios' two sides alike
      const singleLevel = (): Promise<ThroughputLevel> => closedLoop(core, clients, jobs, imagine(offset));
      const twoWorkers = async (): Promise<ThroughputLevel> => {
        // the second worker for this level only: started, warmed up, measured, stopped
        const second = await startWorker(redis, 'worker-2');
        workers.push(second);
        try {
          await closedLoop(cluster, clients, warmup, imagine(offset + 900));
          return await closedLoop(cluster, clients, jobs, imagine(offset + 600));
        } finally {
          await stop(second);
        }
      };
      const first = r % 2 === 0 ? await singleLevel() : await twoWorkers();
      const before = await commandsServed(redis);
      const w1 = await closedLoop(cluster, clients, jobs, imagine(offset + 300));
      const commands = ((await commandsServed(redis)) - before) / jobs;
      const last = r % 2 === 0 ? await twoWorkers() : await singleLevel();
      const [singleProcess, w2] = r % 2 === 0 ? [first, last] : [last, first];
      levels.push({ single_process: singleProcess, w1, w2, commands_per_job: round(commands) });
      log(`  round ${r + 1}: ${singleProcess.jobs_per_s}, ${w1.jobs_per_s}, ${w2.jobs_per_s} jobs/s`);
    }
    const median = (values: number[]): number => summarize(values).p50;
    const scaling = median(levels.map((l) => l.w2.jobs_per_s / l.w1.jobs_per_s));
    const vsSingle = median(levels.map((l) => l.w1.jobs_per_s / l.single_process.jobs_per_s));
    const hop = { ...summarize(hopMs), p99: round(percentile([...hopMs].sort((a, b) => a - b), 99)) };
    return {
      hop_ms: hop,
      rounds: levels,
      redis_commands_per_imagine_job: median(levels.map((l) => l.commands_per_job)),
      figures: {
        cluster_hop_p50_ms: round(hop.p50),
        cluster_hop_p99_ms: hop.p99,
        cluster_imagine_scaling_w2_w1: round(scaling),
        cluster_vs_single_process: round(vsSingle),
      },
    };
  } finally {
    process.off('SIGINT', abandon);
    process.off('SIGTERM', abandon);
    await client?.close();
    await Promise.all(workers.map(stop));
    await redis.stop();
    await closeCore();
  }
}
