/**
 * The worker thread of speech: Flite runs synchronously for tens to hundreds of milliseconds per caption, and the
 * resampler and Opus encoder for tens more; on the main thread that would stall every adapter's event loop
 * (gateway heartbeats, 3-second acknowledgements). `speech.renderer.ts` starts this file (compiled, from dist/) and
 * talks to it by messages.
 */
import { parentPort } from 'node:worker_threads';
import { isPictalkError } from '../common/errors.js';
import { renderSpeech } from './text-to-speech.pipeline.js';
import { loadTtsEngine } from './tts.engine.js';
import type { WorkerReply, WorkerRequest } from './speech.renderer.js';

const port = parentPort;
if (port) {
  port.on('message', (request: WorkerRequest) => {
    const work = request.kind === 'load'
      ? loadTtsEngine().then(() => undefined)
      : renderSpeech(request.text, request.voice, request.bitrate);
    work.then(
      (speech) => {
        if (!speech) { port.postMessage({ id: request.id, ok: true } satisfies WorkerReply); return; }
        const ogg = new Uint8Array(speech.ogg.buffer, speech.ogg.byteOffset, speech.ogg.byteLength).slice();
        port.postMessage({ id: request.id, ok: true, speech: { ...speech, ogg } } satisfies WorkerReply, [ogg.buffer]);
      },
      (error: unknown) => {
        port.postMessage({
          id: request.id, ok: false,
          code: isPictalkError(error) ? error.code : 'inference.failed',
          message: error instanceof Error ? error.message : String(error),
        } satisfies WorkerReply);
      },
    );
  });
}
