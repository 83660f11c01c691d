/** Waiting in tests for something another part does in its own time: by a deadline, never by a count of polls. */

/** Ask `done` every `everyMs` until it says yes or `ms` have passed; whether it said yes. */
export async function until(done: () => boolean | Promise<boolean>, ms = 10_000, everyMs = 5): Promise<boolean> {
  for (const end = Date.now() + ms; ;) {
    if (await done()) return true;
    if (Date.now() > end) return false;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** `until`, throwing `timed out` when the time is up. */
export async function waitFor(done: () => boolean | Promise<boolean>, ms = 10_000, everyMs = 5): Promise<void> {
  if (!(await until(done, ms, everyMs))) throw new Error('timed out');
}
