/**
 * The benchmark script's options and statistics (the quick run of the whole bench is bench.slow.test.ts).
 */
import { DEFAULT_RUNS, DEFAULT_THREADS, parseBenchOptions } from '../../scripts/bench.options.js';
import { parseCpuList, unetCallPerCpu } from '../../scripts/bench.cpus.js';
import { percentile, summarize } from '../../scripts/bench.stats.js';

describe('bench options', () => {
  test('defaults, then every flag in both spellings', () => {
    expect(parseBenchOptions([], {})).toMatchObject({ json: false, threads: DEFAULT_THREADS, runs: DEFAULT_RUNS, skipPytorch: false, quick: false, python: 'python3', throughputThreads: 0 });
    expect(parseBenchOptions(['--json', '--threads', '2', '--runs=5', '--skip-pytorch', '--quick', '--python', 'py', '--throughput-threads', '1'], { PYTHON: 'other' }))
      .toMatchObject({ json: true, threads: 2, runs: 5, skipPytorch: true, quick: true, python: 'py', throughputThreads: 1 });
    expect(parseBenchOptions([], { PYTHON: 'python3.11' }).python).toBe('python3.11');
    expect(parseBenchOptions(['--discord-http'], {})).toMatchObject({ discordHttp: true, cluster: false });
    expect(parseBenchOptions([], {}).discordHttp).toBe(false);
  });

  test('a bad value says what was expected and what came', () => {
    expect(() => parseBenchOptions(['--threads', 'two'], {})).toThrow('Expected `--threads` to be an integer from 0 to 256, got `"two"` (string)');
    expect(() => parseBenchOptions(['--runs', '0'], {})).toThrow('Expected `--runs` to be an integer from 1 to 1000');
    expect(() => parseBenchOptions(['--runs'], {})).toThrow('Expected a value after `--runs`, got none');
    expect(() => parseBenchOptions(['--fast'], {})).toThrow(/Expected one of the options in the usage below, got `"--fast"` \(string\)/);
  });
});

describe('bench statistics', () => {
  test('nearest-rank percentiles and a summary', () => {
    const values = Array.from({ length: 20 }, (_, i) => i + 1);      // 1..20
    expect(percentile(values, 50)).toBe(10);
    expect(percentile(values, 95)).toBe(19);
    expect(percentile([7], 95)).toBe(7);
    expect(summarize([3, 1, 2])).toEqual({ n: 3, p50: 2, p95: 3, min: 1, max: 3, mean: 2 });
  });
});

describe('bench CPU speeds', () => {
  it('reads a CPU list as taskset prints it', () => {
    expect(parseCpuList('0,1')).toEqual([0, 1]);
    expect(parseCpuList(' 0-3,6,8-9\n')).toEqual([0, 1, 2, 3, 6, 8, 9]);
    expect(parseCpuList('')).toEqual([]);
  });

  it('says why a CPU was not measured instead of failing the bench', async () => {
    const speeds = await unetCallPerCpu('no/such/folder', 1, 1);
    expect(speeds).toEqual({ skipped: expect.stringMatching(/CPU 0 exited|taskset|Linux only/) });
  }, 30_000);
});
