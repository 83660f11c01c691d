/**
 * Why two cluster workers give less than twice one on a 2-core machine: real `pictalk start --role worker` processes
 * (one onnxruntime thread each) behind a ClusterClient in this process, 8 clients of imagine jobs, first one worker
 * (48 jobs), then two (96 jobs); each worker's CPU per job, thread by thread from /proc, and the cores it used
 * (scripts/BENCH.md). One worker's main and helper threads run beside its inference thread on the idle second core;
 * two workers must find that CPU on the two cores they already fill.
 *
 *   npm run -s build && npx tsx scripts/measure/cluster-threads.ts [rounds]
 */
import type { ChildProcess } from 'node:child_process';
import { ClusterClient } from '../../inference/cluster/client.js';
import { startWorker, stop } from '../bench.cluster.js';
import { benchPrompts } from '../bench.inputs.js';
import { closedLoop } from '../bench.throughput.js';
import { startRedis } from '../redis.server.js';
import { perJob, threadTicks } from './proc-threads.js';

const rounds = Number(process.argv[2] ?? 2);
const redis = await startRedis();
const client = await ClusterClient.open({ redisUrl: redis.url, maxPerUser: 100 });
const prompts = benchPrompts(256);
const imagine = (offset: number) => (i: number) => ({ kind: 'imagine' as const, request: { prompt: prompts[(offset + i) % prompts.length]!, seed: offset + i } });

/** One closed loop over `workers`; per worker: cores used and CPU ms per job of the whole loop, by thread. */
async function level(label: string, workers: ChildProcess[], jobs: number, offset: number): Promise<number> {
  const before = workers.map((w) => threadTicks(w.pid!));
  const result = await closedLoop(client, 8, jobs, imagine(offset));
  const lines = workers.map((w, k) => {
    const rows = perJob(before[k]!, threadTicks(w.pid!), jobs);
    const total = rows.reduce((sum, r) => sum + r.cpuPerJob, 0);
    return `  worker ${k + 1}: ${(total * jobs / result.seconds).toFixed(2)} cores; CPU ms per job of the loop: `
      + rows.slice(0, 5).map((r) => `${r.name} ${(1000 * r.cpuPerJob).toFixed(1)}`).join(', ');
  });
  process.stdout.write(`${label}: ${result.jobs_per_s} jobs/s over ${jobs} jobs\n${lines.join('\n')}\n`);
  return result.jobs_per_s;
}

const first = await startWorker(redis, 'worker-1');
try {
  await closedLoop(client, 8, 8, imagine(100));
  for (let round = 0; round < rounds; round += 1) {
    const one = await level('one worker', [first], 48, 1000 + 500 * round);
    const second = await startWorker(redis, 'worker-2');
    try {
      await closedLoop(client, 8, 8, imagine(300));
      const two = await level('two workers', [first, second], 96, 2000 + 500 * round);
      process.stdout.write(`round ${round + 1}: two workers over one ${(two / one).toFixed(2)}\n`);
    } finally {
      await stop(second);
    }
  }
} finally {
  await client.close();
  await stop(first);
  await redis.stop();
}
