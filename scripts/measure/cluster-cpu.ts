/**
 * Where the CPU goes while one cluster worker runs imagine jobs: CPU seconds of the worker process, the front (this
 * process) and Redis over one closed loop (8 clients, 48 imagine jobs), against the wall time; then the single process's
 * CPU seconds for the same loop on the same pipelines in this process.
 *
 *   npm run -s build && npx tsx scripts/measure/cluster-cpu.ts
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../common/package-root.js';
import { builtinModelDir } from '../../common/package-root.js';
import { ClusterClient } from '../../inference/cluster/client.js';
import { InferenceCore } from '../../inference/core.js';
import { loadImageToText } from '../../inference/image-to-text.pipeline.js';
import { createMetricsRegistry } from '../../inference/metrics.js';
import { loadTextToImage } from '../../inference/text-to-image.pipeline.js';
import { benchPrompts } from '../bench.inputs.js';
import { closedLoop } from '../bench.throughput.js';
import { startRedis } from '../redis.server.js';

const ticks = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);      // utime + stime, in clock ticks (100 per second)
};
const redis = await startRedis();
const redisPid = Number(readFileSync(join(redis.dir, 'server.log'), 'utf8').match(/pid=(\d+)/)?.[1] ?? Number.NaN);
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(DISCORD_|SLACK_|PICTALK_)/.test(key)));
const worker = spawn(process.execPath, [join(packageRoot(), 'dist/adapters/cli.js'), 'start', '--role', 'worker'], {
  env: { ...env, PICTALK_REDIS_URL: redis.url, PICTALK_THREADS: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
});
await new Promise<void>((resolve) => worker.stdout!.on('data', (chunk: Buffer) => { if (chunk.toString().includes('worker ready')) resolve(); }));
const client = await ClusterClient.open({ redisUrl: redis.url, maxPerUser: 100 });
const prompts = benchPrompts(256);
const input = (offset: number) => (i: number) => ({ kind: 'imagine' as const, request: { prompt: prompts[(offset + i) % prompts.length]!, seed: offset + i } });
await closedLoop(client, 8, 8, input(100));
for (let round = 0; round < 2; round += 1) {
  const before = { worker: ticks(worker.pid!), redis: ticks(redisPid), front: process.cpuUsage() };
  const level = await closedLoop(client, 8, 48, input(1000 * (round + 1)));
  const front = process.cpuUsage(before.front);
  process.stdout.write(`round ${round + 1}: ${level.jobs_per_s} jobs/s over ${level.seconds} s; CPU s: worker ${((ticks(worker.pid!) - before.worker) / 100).toFixed(2)}, `
    + `front ${((front.user + front.system) / 1e6).toFixed(2)}, redis ${((ticks(redisPid) - before.redis) / 100).toFixed(2)}\n`);
}
await client.close();
worker.kill('SIGTERM');
await new Promise((resolve) => worker.once('exit', resolve));
// the single process: the same pipelines and settings in this process
const backend = { executionProvider: 'cpu' as const, intraOpThreads: 1 };
const captioner = await loadImageToText(builtinModelDir('captioner'), { backend });
const t2i = await loadTextToImage(builtinModelDir('text-to-image'), { backend, scorer: captioner.scoreText });
const refuse = async (): Promise<never> => { throw new Error('imagine only'); };
const core = new InferenceCore({ imagine: (request, run) => t2i.imagine(request, run), captionBatch: refuse, speak: refuse },
  { registry: createMetricsRegistry(), maxPerUser: 100, concurrency: { imagine: 4 } });
await closedLoop(core, 8, 8, input(100));
for (let round = 0; round < 2; round += 1) {
  const before = process.cpuUsage();
  const level = await closedLoop(core, 8, 48, input(5000 + 1000 * round));
  const used = process.cpuUsage(before);
  process.stdout.write(`single process, round ${round + 1}: ${level.jobs_per_s} jobs/s over ${level.seconds} s; CPU s ${((used.user + used.system) / 1e6).toFixed(2)}\n`);
}
await core.close();
await redis.stop();
