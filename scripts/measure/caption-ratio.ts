/**
 * The bench's caption ratio (captions a second at 8 clients over 1 client, back-to-back rounds, beam 3, through one
 * InferenceCore) with onnxruntime's pool threads spinning and not, alternating (scripts/BENCH.md).
 *
 *   npx tsx scripts/measure/caption-ratio.ts [true,false,true,false]
 */
import { loadImageToText } from '../../inference/image-to-text.pipeline.js';
import { benchImages } from '../bench.inputs.js';
import { closedLoop } from '../bench.throughput.js';
import { captionCore } from './caption-core.js';

const spins = (process.argv[2] ?? 'true,false,true,false').split(',').map((v) => v === 'true');
const images = await benchImages(16);
for (const spin of spins) {
  const captioner = await loadImageToText('models/builtin/captioner', { backend: { allowSpinning: spin } });
  const core = captionCore(captioner);
  const input = (i: number) => ({ kind: 'caption' as const, request: { image: images[i % images.length]!, beam: 3 } });
  for (let round = 0; round < 3; round += 1) {
    const c1 = await closedLoop(core, 1, 150, input, 10);
    const c8 = await closedLoop(core, 8, 400, input, 16);
    process.stdout.write(`spinning ${spin} round ${round}: c1 ${c1.jobs_per_s}/s, c8 ${c8.jobs_per_s}/s, ratio ${(c8.jobs_per_s / c1.jobs_per_s).toFixed(2)}\n`);
  }
  await core.close();
  await captioner.dispose();
}
