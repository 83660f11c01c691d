/**
 * Where speech is rendered (Flite, resampling, Opus, Ogg): on a worker thread, so none of that synchronous work
 * blocks the event loop. The worker is the compiled `tts.worker.js` beside this module; when it is not there (tests
 * and scripts running the TypeScript sources), rendering runs on the calling thread instead. A worker that dies
 * fails the requests it held, and the next request starts a new one. Idle, it does not keep the process alive.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { PictalkError, type ErrorCode } from '../common/errors.js';
import type { TtsVoice } from './tts.engine.js';

export interface RenderedSpeech {
  ogg: Buffer;
  durationSecs: number;
  waveform: Uint8Array;
  timingsMs: Record<string, number>;
}

export type RenderFn = (text: string, voice: TtsVoice, bitrate: number) => Promise<RenderedSpeech>;

type WorkerRequestBody = { kind: 'load' } | { kind: 'render'; text: string; voice: TtsVoice; bitrate: number };
export type WorkerRequest = WorkerRequestBody & { id: number };
export type WorkerReply =
  | { id: number; ok: true; speech?: Omit<RenderedSpeech, 'ogg'> & { ogg: Uint8Array } }
  | { id: number; ok: false; code: string; message: string };

export interface SpeechRenderer {
  render: RenderFn;
  /** Compile the engine now (in the worker when there is one). */
  load(): Promise<void>;
  readonly mode: 'worker' | 'thread';
  close(): Promise<void>;
}

export function createSpeechRenderer(inThread: { render: RenderFn; load: () => Promise<void> }, options: { worker?: boolean } = {}): SpeechRenderer {
  const workerFile = fileURLToPath(new URL('./tts.worker.js', import.meta.url));
  if (!(options.worker ?? true) || !existsSync(workerFile)) {
    return { mode: 'thread', render: inThread.render, load: inThread.load, close: async () => undefined };
  }
  let worker: Worker | undefined;
  let nextId = 1;
  const pending = new Map<number, { resolve: (reply: WorkerReply) => void; reject: (error: Error) => void }>();
  const failAll = (error: Error): void => {
    for (const entry of pending.values()) entry.reject(error);
    pending.clear();
    worker = undefined;
  };
  const started = (): Worker => {
    if (worker) return worker;
    // the worker inherits the process's flags, less those meant only for the main entry (`node -e ...`)
    const created = new Worker(workerFile, { execArgv: process.execArgv.filter((flag) => !flag.startsWith('--input-type')) });
    created.unref();
    created.on('message', (reply: WorkerReply) => {
      const entry = pending.get(reply.id);
      if (!entry) return;
      pending.delete(reply.id);
      if (pending.size === 0) created.unref();
      entry.resolve(reply);
    });
    created.on('error', (error) => { if (worker === created) failAll(new PictalkError('inference.failed', `The speech worker failed: ${error.message}`)); });
    created.on('exit', (code) => { if (worker === created) failAll(new PictalkError('inference.failed', `The speech worker stopped (exit code ${code})`)); });
    worker = created;
    return created;
  };
  const call = (body: WorkerRequestBody): Promise<WorkerReply & { ok: true }> => new Promise<WorkerReply>((resolve, reject) => {
    const target = started();
    const id = nextId++;
    pending.set(id, { resolve, reject });
    target.ref();                                            // a request in flight keeps the process alive
    target.postMessage({ ...body, id });
  }).then((reply) => {
    if (!reply.ok) throw new PictalkError(reply.code as ErrorCode, reply.message);
    return reply;
  });
  return {
    mode: 'worker',
    async render(text, voice, bitrate) {
      const { speech } = await call({ kind: 'render', text, voice, bitrate });
      if (!speech) throw new PictalkError('inference.failed', 'The speech worker answered without audio');
      return { ...speech, ogg: Buffer.from(speech.ogg.buffer, speech.ogg.byteOffset, speech.ogg.byteLength) };
    },
    async load() {
      await call({ kind: 'load' });
    },
    async close() {
      const current = worker;
      failAll(new PictalkError('job.cancelled', 'The speech worker was closed'));
      await current?.terminate();
    },
  };
}
