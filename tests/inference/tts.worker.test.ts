/**
 * Flite runs synchronously; on a worker thread it must not stall the event loop. The worker is the compiled
 * dist/inference/tts.worker.js (`npm ci` builds dist/ through `prepare`), so this runs the built package in a child
 * process, as the bot runs, and watches the child's event loop while it speaks.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createTextToSpeech } from '../../inference/text-to-speech.pipeline.js';

const ROOT = process.cwd();
const BUILT = join(ROOT, 'dist/inference/text-to-speech.pipeline.js');

/** In the child: speak three captions while a 5 ms ticker measures the longest stall of the event loop. */
const CHILD = `
const { createTextToSpeech } = await import(process.argv[1]);
const worker = process.argv[2] === 'worker';
const speech = createTextToSpeech({ worker });
await speech.load();
let last = performance.now(), worst = 0;
const ticker = setInterval(() => { const now = performance.now(); worst = Math.max(worst, now - last); last = now; }, 5);
const results = [];
for (let i = 0; i < 3; i += 1) results.push(await speech.speak({ text: 'A small red circle to the left of a big blue square, drawn ' + i + ' times.' }));
clearInterval(ticker);
worst = Math.max(worst, performance.now() - last);
await speech.close();
console.log(JSON.stringify({ mode: speech.synthesisMode, worst, ogg: results.map((r) => r.ogg.subarray(0, 4).toString('latin1')), seconds: results.map((r) => r.durationSecs) }));
`;

function run(mode: 'worker' | 'thread') {
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, BUILT, mode], { encoding: 'utf8', timeout: 60_000 });
  expect({ status: child.status, stderr: child.status === 0 ? '' : child.stderr.slice(-1000) }).toEqual({ status: 0, stderr: '' });
  return JSON.parse(child.stdout.trim().split('\n').at(-1)!) as { mode: string; worst: number; ogg: string[]; seconds: number[] };
}

(existsSync(BUILT) ? describe : describe.skip)('speech synthesis on a worker thread (built package)', () => {
  it('speaks the same audio as on the main thread, without stalling the event loop for the synthesis', () => {
    const onWorker = run('worker');
    const onThread = run('thread');
    expect(onWorker.mode).toBe('worker');
    expect(onThread.mode).toBe('thread');
    expect(onWorker.ogg).toEqual(['OggS', 'OggS', 'OggS']);
    expect(onWorker.seconds).toEqual(onThread.seconds);        // same samples, same length
    // Flite holds the thread it runs on for tens of milliseconds per caption; the worker keeps that off the loop
    // (what is left on it: resampling and Opus, a few milliseconds per caption)
    expect(onWorker.worst).toBeLessThan(onThread.worst);
  }, 120_000);
});

describe('speech synthesis from the TypeScript sources', () => {
  it('runs on the calling thread when there is no compiled worker beside the module', async () => {
    const speech = createTextToSpeech();
    expect(speech.synthesisMode).toBe('thread');
    const result = await speech.speak({ text: 'A big green star.' });
    expect(result.ogg.subarray(0, 4).toString('latin1')).toBe('OggS');
    await speech.close();
  }, 60_000);
});
