/**
 * The benchmark script end to end in quick mode: the shape of its JSON. No timing is asserted (timings live in the
 * bench only); the quick run checks that every figure is present and finite.
 * Slow (about 30 s): it builds nothing but loads every shipped model and runs each stage, end to end and at three
 * client counts once.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Run the bench with tsx (no build needed); stdout and stderr apart. */
function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const tsx = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', tsx, path.join(ROOT, 'scripts/bench.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const isSummary = (value: unknown): boolean => {
  const s = value as Record<string, number>;
  return typeof s === 'object' && s !== null && ['n', 'p50', 'p95', 'min', 'max', 'mean'].every((k) => Number.isFinite(s[k])) && s.n! >= 1;
};

describe('npm run bench -- --json --quick --runs 1 --skip-pytorch', () => {
  test('prints ONE JSON object with the headline figures, the stages, throughput, memory and the machine', async () => {
    const { code, stdout, stderr } = await runBench(['--json', '--quick', '--runs', '1', '--skip-pytorch']);
    expect({ code, stderr: code === 0 ? '' : stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    expect(stdout.trim().split('\n')).toHaveLength(1);                 // nothing else on stdout
    const r = JSON.parse(stdout) as Record<string, any>;               // eslint-disable-line @typescript-eslint/no-explicit-any
    for (const key of ['imagine_p50_ms', 'caption_p50_ms', 'speak_p50_ms', 'caption_throughput_ratio_c8_c1']) {
      expect([key, Number.isFinite(r[key]) && r[key] > 0]).toEqual([key, true]);
    }
    expect(r.speedup_vs_pytorch).toBeNull();                           // skipped, so no ratio
    expect(r.pytorch.reference).toEqual({ skipped: true });
    for (const key of ['text_encode_ms', 'unet_step_ms', 'vae_decode_ms', 'png_encode_ms', 'denoise_per_step_ms']) expect([key, isSummary(r.stages.imagine[key])]).toEqual([key, true]);
    for (const key of ['image_decode_ms', 'encoder_ms', 'decoder_step_ms', 'beam_search_ms']) expect([key, isSummary(r.stages.caption[key])]).toEqual([key, true]);
    for (const key of ['synthesis_ms', 'resample_ms', 'opus_ogg_encode_ms']) expect([key, isSummary(r.stages.speak[key])]).toEqual([key, true]);
    for (const kind of ['imagine', 'caption', 'speak']) {
      expect(isSummary(r.end_to_end[kind])).toBe(true);
      for (const level of ['c1', 'c4', 'c8']) {
        expect(r.throughput[kind][level]).toMatchObject({ clients: Number(level.slice(1)), jobs: expect.any(Number), jobs_per_s: expect.any(Number) });
      }
    }
    expect(isSummary(r.pytorch.typescript_ddim_ms)).toBe(true);
    // the throughput levels run as the bot does: imagine jobs side by side share UNet runs
    expect(r.throughput.imagine_unet_runs.c8.calls).toBeGreaterThan(r.throughput.imagine_unet_runs.c8.runs);
    expect(r.throughput.caption_at_threads.caption_throughput_ratio_c8_c1).toBeGreaterThan(0);
    expect(r.settings.imagine).toMatchObject({ steps: expect.any(Number), guidance: expect.any(Number), scheduler: expect.any(String) });
    expect(r.settings.speak.words).toBe(12);
    expect(r.memory.rss_peak_sampled_mb).toBeGreaterThan(0);
    expect(r.memory.max_rss_mb).toBeGreaterThanOrEqual(r.memory.rss_peak_sampled_mb * 0.9);
    expect(r.machine).toMatchObject({ cpus: expect.any(Number), node: process.version });
    expect(r.machine.loadavg_start).toHaveLength(3);
    expect(r.machine).toMatchObject({ cpu_model: expect.any(String), cpu_id: expect.any(String) });
    expect(Array.isArray(r.machine.cpu_flags)).toBe(true);
    // one UNet call timed in a process pinned to each CPU, at the start and at the end (taskset is on this machine)
    for (const when of ['start', 'end']) {
      const speeds = r.machine.unet_call_ms_per_cpu[when];
      expect(speeds.cpus.length).toBeGreaterThan(0);
      expect(speeds.cpus.length).toBeLessThanOrEqual(r.machine.cpus);
      expect(speeds.unet_call_ms).toHaveLength(speeds.cpus.length);
      for (const ms of speeds.unet_call_ms) expect(Number.isFinite(ms) && ms > 0).toBe(true);
      expect(speeds.slowest_over_fastest).toBeGreaterThanOrEqual(1);
    }
    expect(stderr).toContain('bench: throughput at 8 clients');       // progress went to stderr
  }, 180_000);
});
