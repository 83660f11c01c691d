/**
 * What the messages of a denoising loop cost (scripts/BENCH.md, "The round of the wake-ups"): ten calls of the
 * builtin UNet at batch 2 with a small JavaScript update of the latents between them, on one worker thread and one
 * session with the inference thread's options, run two ways, alternating image by image:
 *
 * - one message a step: the main thread sends each call's inputs and makes the update, as the pipeline does through
 *   `inference/onnx.backend.ts`;
 * - one message an image: the worker makes the ten calls and the updates itself and answers once;
 * - the same with a progress message a step: as that, and the worker also posts the step to the main thread after
 *   each call, which does not answer (what a denoising loop in the inference thread would still send).
 *
 * Prints the median milliseconds per image of each, per round. The difference is what waking the two threads at
 * every step costs on this machine (a thread that waits longer than the guest's halt polling lets its vCPU halt).
 * Both ways use the same thread and session: two threads of one process can run at different speeds here.
 *
 *   npx tsx scripts/measure/step-messages.ts [rounds]
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { builtinModelDir } from '../../common/package-root.js';

const rounds = Number(process.argv[2] ?? 6);
const path = join(builtinModelDir('text-to-image'), 'unet', 'model.onnx');
const steps = 10;

/** The update between two calls: a DDIM-like blend of the latents and the prediction (its values do not matter). */
const update = (x: Float32Array, eps: Float32Array): void => {
  for (let i = 0; i < x.length; i += 1) x[i] = 0.98 * x[i]! - 0.05 * eps[i]!;
};

// the whole loop in a thread of its own: plain JavaScript, as the backend's thread is
const source = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const ort = (await import(workerData.ortUrl)).default;
  const session = await ort.InferenceSession.create(workerData.path, { graphOptimizationLevel: 'all', intraOpNumThreads: 1,
    extra: { session: { intra_op: { allow_spinning: '0' } } } });
  const update = ${update.toString()};
  const output = session.outputNames[0];
  const timestep = session.inputMetadata.find((meta) => meta.name === 'timestep').type === 'int64'
    ? new ort.Tensor('int64', BigInt64Array.from([501n]), [1]) : new ort.Tensor('float32', Float32Array.from([501]), [1]);
  parentPort.on('message', async ({ sample, hidden, one, notify }) => {
    const ehs = new ort.Tensor('float32', hidden, [2, hidden.length / 2 / 128, 128]);
    if (one) {
      const out = await session.run({ sample: new ort.Tensor('float32', sample, [2, 4, 16, 16]), timestep, encoder_hidden_states: ehs });
      parentPort.postMessage(out[output].data);
      return;
    }
    for (let k = 0; k < ${steps}; k += 1) {
      const out = await session.run({ sample: new ort.Tensor('float32', sample, [2, 4, 16, 16]), timestep, encoder_hidden_states: ehs });
      update(sample, out[output].data);
      if (notify) parentPort.postMessage({ step: k });
    }
    parentPort.postMessage(sample);
  });
  parentPort.postMessage('ready');
})();
`;
const ortUrl = pathToFileURL(createRequire(import.meta.url).resolve('onnxruntime-node')).href;
const worker = new Worker(source, { eval: true, workerData: { ortUrl, path } });
await new Promise((resolve) => worker.once('message', resolve));
let progress = 0;
const ask = <T>(message: object): Promise<T> => new Promise((resolve) => {
  const on = (m: unknown): void => {
    if (m && typeof m === 'object' && 'step' in m) { progress += 1; return; }   // a step's progress: no answer
    worker.off('message', on);
    resolve(m as T);
  };
  worker.on('message', on);
  worker.postMessage(message);
});
const loopInThread = (sample: Float32Array, hidden: Float32Array, notify = false): Promise<unknown> => ask({ sample, hidden, notify });

const hiddenRows = 32;
const random = (n: number): Float32Array => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
const start = random(2 * 4 * 16 * 16);
const hidden = random(2 * hiddenRows * 128);
const messagePerStep = async (): Promise<void> => {
  const sample = start.slice();
  for (let k = 0; k < steps; k += 1) {
    update(sample, await ask<Float32Array>({ sample, hidden, one: true }));
  }
};
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1]!;

for (let i = 0; i < 3; i += 1) { await messagePerStep(); await loopInThread(start.slice(), hidden.slice()); }
for (let round = 0; round < rounds; round += 1) {
  const perStep: number[] = [];
  const perImage: number[] = [];
  const notified: number[] = [];
  for (let image = 0; image < 15; image += 1) {
    const t0 = performance.now();
    await loopInThread(start.slice(), hidden.slice(), true);
    notified.push(performance.now() - t0);
    let t = performance.now();
    await messagePerStep();
    perStep.push(performance.now() - t);
    t = performance.now();
    await loopInThread(start.slice(), hidden.slice());
    perImage.push(performance.now() - t);
  }
  process.stdout.write(`round ${round + 1}: ${steps} UNet calls, one message a step ${median(perStep).toFixed(1)} ms, `
    + `one message an image ${median(perImage).toFixed(1)} ms, loop in thread with a progress message a step ${median(notified).toFixed(1)} ms\n`);
}
process.stdout.write(`progress messages heard: ${progress}\n`);
await worker.terminate();
