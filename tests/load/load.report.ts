/**
 * The load test's summary: one line a person can quote, and the same figures as JSON under runs/ (gitignored).
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Nearest-rank percentile (p in 0..100) of unsorted values; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

export const tally = (codes: readonly string[]): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const code of [...codes].sort()) counts[code] = (counts[code] ?? 0) + 1;
  return counts;
};

export interface LoadSummary {
  seed: number;
  wallMs: number;
  commands: { sent: number; discord: number; slack: number; duplicateDeliveries: number };
  accepted: number;
  succeeded: number;
  failed: Record<string, number>;
  rejected: Record<string, number>;
  /** Replies that were neither a job nor a refusal: /pictalk status, cancel answers. */
  answered: number;
  cancels: { pressed: number; effective: number; fromStatusButton: Record<string, number> };
  ackMaxMs: { discord: number; slack: number };
  e2eMs: { p50: number; p95: number; max: number; n: number };
  successE2eMs: { p50: number; p95: number; n: number };
  quota: { usersAtImagineLimit: number; usersAtCaptionLimit: number; quotaRefusals: number };
  injected: Record<string, number>;
  problems: number;
}

const codes = (counts: Record<string, number>): string =>
  Object.entries(counts).map(([code, n]) => `${code} ${n}`).join(', ') || 'none';

export function summaryLine(s: LoadSummary): string {
  const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
  return [
    `load seed ${s.seed}: ${s.commands.sent} commands (discord ${s.commands.discord}, slack ${s.commands.slack}) + ${s.commands.duplicateDeliveries} repeated deliveries`,
    `accepted ${s.accepted}, succeeded ${s.succeeded}, failed {${codes(s.failed)}}, rejected {${codes(s.rejected)}}, answered ${s.answered}`,
    `cancels ${s.cancels.effective}/${s.cancels.pressed} effective (pressed on a status message: {${codes(s.cancels.fromStatusButton)}})`,
    `max ack discord ${s.ackMaxMs.discord} ms, slack ${s.ackMaxMs.slack} ms`,
    `e2e p50 ${seconds(s.e2eMs.p50)} p95 ${seconds(s.e2eMs.p95)} max ${seconds(s.e2eMs.max)} (n ${s.e2eMs.n}); successes p50 ${seconds(s.successE2eMs.p50)} p95 ${seconds(s.successE2eMs.p95)}`,
    `users at limit: imagine ${s.quota.usersAtImagineLimit}, caption ${s.quota.usersAtCaptionLimit}`,
    `injected {${codes(s.injected)}}`,
    `problems ${s.problems}`,
    `wall ${seconds(s.wallMs)}`,
  ].join('; ');
}

/** Print the line and keep it (and the JSON) under runs/, where the project keeps run logs. */
export function publish(summary: LoadSummary, root: string): string {
  const line = summaryLine(summary);
  console.log(`[load] ${line}`);
  try {
    const dir = join(root, 'runs');
    mkdirSync(dir, { recursive: true });
    appendFileSync(join(dir, 'load-summary.log'), `${new Date().toISOString()} ${line}\n`);
    writeFileSync(join(dir, 'load-last.json'), `${JSON.stringify(summary, null, 2)}\n`);
  } catch {
    // A read-only checkout still gets the console line.
  }
  return line;
}
