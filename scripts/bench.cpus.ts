/**
 * Whether this machine's CPUs run at one speed: one UNet call of the bench's text-to-image folder (batch 2, one
 * onnxruntime thread; the `unet_step_ms` stage) timed in a process pinned to each CPU in turn with `taskset`
 * (util-linux). On a shared virtual machine one vCPU can run at half the speed of the other for minutes at a time
 * (scripts/BENCH.md, "The round of the bounds"). A run's figures are then read with that in mind: a single-threaded
 * stage runs at the speed of whichever vCPU its thread is on, and two processes cannot do more than the two vCPUs'
 * speeds added up. The bench measures it at its start and at its end (`machine.unet_call_ms_per_cpu`).
 *
 * Run as a script (`node bench.cpus.js --child DIR RUNS`) it is the pinned process: it prints the median call in ms.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { imagineStages } from './bench.stages.js';

export type CpuSpeeds =
  | { cpus: number[]; unet_call_ms: number[]; slowest_over_fastest: number }
  | { skipped: string };

/** What a bench report holds: the CPUs' speeds at its start and at its end (`machine.unet_call_ms_per_cpu`). */
export interface CpuSpeedsAtEnds { start: CpuSpeeds; end: CpuSpeeds }

const ownPath = fileURLToPath(import.meta.url);

/** The CPUs timed at most: enough to see a 2-8 core machine whole without minutes of pinned processes on a large one. */
export const MAX_PINNED_CPUS = 8;

/**
 * One pinned process per CPU this process may run on (its affinity: a container may allow fewer than the machine
 * has), one after another, the first `limit` of them (at most MAX_PINNED_CPUS, a second or two each): the UNet
 * call's median on each, or why it was not measured.
 */
export async function unetCallPerCpu(t2iDir: string, limit: number, runs: number): Promise<CpuSpeeds> {
  if (process.platform !== 'linux') return { skipped: `taskset pins a process to a CPU on Linux only, not on ${process.platform}` };
  const affinity = spawnSync('taskset', ['-cp', String(process.pid)], { encoding: 'utf8' });
  if (affinity.error || affinity.status !== 0) return { skipped: 'taskset (util-linux) is not installed' };
  const cpus = parseCpuList(affinity.stdout.split(':').at(-1) ?? '').slice(0, Math.min(limit, MAX_PINNED_CPUS));
  if (cpus.length === 0) return { skipped: `taskset printed no CPU list: ${affinity.stdout.trim()}` };
  const unetCallMs: number[] = [];
  for (const cpu of cpus) {
    const ms = await pinned(cpu, t2iDir, runs);
    if (typeof ms === 'string') return { skipped: ms };
    unetCallMs.push(ms);
  }
  return {
    cpus,
    unet_call_ms: unetCallMs,
    slowest_over_fastest: Number((Math.max(...unetCallMs) / Math.min(...unetCallMs)).toFixed(2)),
  };
}

/** A CPU list as taskset and /sys print it ("0-3,6"), as numbers. */
export function parseCpuList(list: string): number[] {
  const out: number[] = [];
  for (const part of list.trim().split(',')) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!match) continue;
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    for (let cpu = first; cpu <= last; cpu += 1) out.push(cpu);
  }
  return out;
}

/** The median UNet call of a process pinned to `cpu`, or a line saying why there is none. */
function pinned(cpu: number, t2iDir: string, runs: number): Promise<number | string> {
  // the child runs the way this process runs: compiled JavaScript, or TypeScript under the same loader
  const args = ['-c', String(cpu), process.execPath, ...process.execArgv, ownPath, '--child', t2iDir, String(runs)];
  return new Promise((resolve) => {
    const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { err += chunk.toString(); });
    child.on('error', (error) => resolve(`taskset failed: ${error.message}`));
    child.on('close', (code) => {
      const ms = Number(out.trim());
      resolve(code === 0 && Number.isFinite(ms) && ms > 0 ? ms : `the process pinned to CPU ${cpu} exited ${code}: ${err.trim().split('\n').at(-1) ?? ''}`);
    });
  });
}

async function child(t2iDir: string, runs: number): Promise<void> {
  const stages = await imagineStages(t2iDir, { executionProvider: 'cpu', intraOpThreads: 1 }, ['a red circle'], runs, 3);
  process.stdout.write(`${Number(stages.unet_step_ms.p50.toFixed(2))}\n`);
}

if (process.argv[1] === ownPath && process.argv[2] === '--child') {
  await child(process.argv[3]!, Number(process.argv[4]));
}
