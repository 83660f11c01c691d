/**
 * Preloaded (`node --import`) into the pictalk processes that the tests and the cluster bench start, so none outlives
 * the process that started it: its stdin is a pipe from that owner, which nothing writes to. When the owner ends in
 * any way (a test worker killed, Ctrl-C, an out-of-memory kill), the pipe closes and this process stops as on
 * SIGTERM: a pictalk process shuts down cleanly, and exits anyway after 20 s. A stdin that is not a pipe or a socket (a
 * terminal, /dev/null) is left alone.
 */
import { fstatSync } from 'node:fs';
import process from 'node:process';
import { setTimeout } from 'node:timers';
import { isMainThread } from 'node:worker_threads';

/** Whether stdin is a pipe (Node's 'pipe' stdio is a socket pair, a shell's pipe a FIFO). */
function piped() {
  try {
    const stdin = fstatSync(0);
    return stdin.isFIFO() || stdin.isSocket();
  } catch {
    return false;
  }
}

// worker threads inherit the preload (their execArgv): only the main thread watches
if (isMainThread && piped()) {
  const ownerGone = () => {
    setTimeout(() => process.exit(1), 20_000).unref();
    process.kill(process.pid, 'SIGTERM');
  };
  process.stdin.once('end', ownerGone);
  process.stdin.once('error', ownerGone);
  process.stdin.on('data', () => undefined);
  // the watch itself keeps nothing alive: a process that is done exits as it would without it
  process.stdin.unref();
}
