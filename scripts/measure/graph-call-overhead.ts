/**
 * What one graph call costs beyond the graph itself: the tiny test model (`y = 2x + t`) run 2000 times after 200
 * warm-up calls through `inference/onnx.backend.ts`, milliseconds per call. Run it before and after a change to the
 * backend (scripts/BENCH.md: the inference thread).
 *
 *   npx tsx scripts/measure/graph-call-overhead.ts
 */
import { openModel } from '../../inference/onnx.backend.js';

const model = await openModel('tests/fixtures/onnx-backend/add_timestep.onnx');
const feeds = { x: { data: new Float32Array(3), dims: [1, 3] }, t: { data: new BigInt64Array([1n]), dims: [1] } };
for (let i = 0; i < 200; i += 1) await model.run(feeds);
const started = performance.now();
for (let i = 0; i < 2000; i += 1) await model.run(feeds);
process.stdout.write(`per call ${((performance.now() - started) / 2000).toFixed(3)} ms\n`);
await model.dispose();
