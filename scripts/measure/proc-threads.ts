/**
 * CPU ticks (utime + stime, 100 a second) of each thread of a process, from /proc: the measure scripts' way of
 * telling the inference thread's CPU from the main thread's and the pools'. The main thread is keyed `main`, the
 * others by their name (`comm`) and thread id: Node's worker threads and libuv's pool are all called `node`.
 */
import { readdirSync, readFileSync } from 'node:fs';

export function threadTicks(pid: number | 'self' = 'self'): Map<string, number> {
  const main = String(pid === 'self' ? process.pid : pid);
  const ticks = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const fields = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks.set(tid === main ? 'main' : `${name} ${tid}`, Number(fields[11]) + Number(fields[12]));
    } catch {
      // a thread that ended meanwhile
    }
  }
  return ticks;
}

/** CPU seconds per job of each thread between two readings, largest first. */
export function perJob(before: Map<string, number>, after: Map<string, number>, jobs: number): Array<{ name: string; cpuPerJob: number }> {
  return [...after].map(([name, ticks]) => ({ name, cpuPerJob: (ticks - (before.get(name) ?? 0)) / 100 / jobs }))
    .filter((r) => r.cpuPerJob > 0).sort((a, b) => b.cpuPerJob - a.cpuPerJob);
}
