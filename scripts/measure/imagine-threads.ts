/**
 * Where an imagine job's CPU goes, thread by thread: the builtin pipelines behind one in-process `InferenceCore` (one
 * onnxruntime thread, imagine batch as the bot runs it), a closed loop of 8 clients and 48 imagine jobs, and each
 * thread's CPU seconds per job read from /proc (the main thread, the inference thread, libuv's and sharp's pools).
 *
 *   npx tsx scripts/measure/imagine-threads.ts [jobs]
 */
import { builtinModelDir } from '../../common/package-root.js';
import { benchPrompts } from '../bench.inputs.js';
import { loadBenchCore } from '../bench.core.js';
import { closedLoop } from '../bench.throughput.js';
import { perJob, threadTicks } from './proc-threads.js';

const jobs = Number(process.argv[2] ?? 48);
const { core, close } = await loadBenchCore({ t2iDir: builtinModelDir('text-to-image'), captionerDir: builtinModelDir('captioner') }, { executionProvider: 'cpu', intraOpThreads: 1 });
const prompts = benchPrompts(256);
const imagine = (offset: number) => (i: number) => ({ kind: 'imagine' as const, request: { prompt: prompts[(offset + i) % prompts.length]!, seed: offset + i } });
await closedLoop(core, 8, 8, imagine(100));
const before = threadTicks();
const wallStart = performance.now();
const level = await closedLoop(core, 8, jobs, imagine(1000));
const wall = (performance.now() - wallStart) / 1000;
const after = threadTicks();
const rows = perJob(before, after, jobs);
const total = rows.reduce((sum, r) => sum + r.cpuPerJob, 0);
process.stdout.write(`${jobs} imagine jobs, 8 clients: ${level.jobs_per_s} jobs/s, ${(wall / jobs).toFixed(3)} s wall per job, ${total.toFixed(3)} CPU s per job\n`);
for (const r of rows) process.stdout.write(`  ${r.name.padEnd(16)} ${r.cpuPerJob.toFixed(3)} CPU s per job (${(100 * r.cpuPerJob / total).toFixed(0)}%)\n`);
await close();
