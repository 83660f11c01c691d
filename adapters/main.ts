/**
 * `pictalk start`: the composition root. Reads the settings, loads the models once, builds the one InferenceCore
 * every platform shares, the Bot on SQLite, and starts the configured adapters — Discord, Slack, or, with no
 * platform credentials, the terminal adapter. Dependencies point inward: this file may import everything;
 * nothing imports it.
 */
import { join } from 'node:path';
import process from 'node:process';
import { Bot } from '../bot/bot.js';
import { PostgresStore } from '../bot/postgres.store.js';
import { SqliteStore } from '../bot/sqlite.store.js';
import type { BotStore } from '../bot/store.js';
import { builtinModelDir } from '../common/package-root.js';
import { InferenceCore } from '../inference/core.js';
import { isPictalkError } from '../common/errors.js';
import { loadImageToText, type ImageToText } from '../inference/image-to-text.pipeline.js';
import { createInferenceMetrics, createMetricsRegistry } from '../inference/metrics.js';
import { loadTextToImage, type TextToImage } from '../inference/text-to-image.pipeline.js';
import { createTextToSpeech } from '../inference/text-to-speech.pipeline.js';
import { imagineBatchOf, loadSettings, requirePlatform, type PictalkSettings } from './config.js';
import { corePort } from './core.port.js';
import { startDiscordAdapter } from './discord/discord.adapter.js';
import { startLocalAdapter } from './local/local.adapter.js';
import { startMetricsServer, type MetricsServer } from './metrics.server.js';
import { startSlackAdapter } from './slack/slack.adapter.js';

const HOW_TO_CONFIGURE = `No chat platform is configured, so pictalk runs in this terminal. Type /help for the commands.
To run on Discord: set DISCORD_TOKEN and DISCORD_APPLICATION_ID (optionally PICTALK_DISCORD_GUILD_ID).
To run on Slack:   set SLACK_BOT_TOKEN with SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP, PICTALK_SLACK_PORT).
See the README's operator guide for creating the apps.`;

const log = {
  info: (message: string, fields?: Record<string, unknown>) => console.log(`[pictalk] ${message}`, fields ?? ''),
  warn: (message: string, fields?: Record<string, unknown>) => console.warn(`[pictalk] ${message}`, fields ?? ''),
  error: (message: string, fields?: Record<string, unknown>) => console.error(`[pictalk] ${message}`, fields ?? ''),
  debug: () => undefined,
};

interface Stoppable { stop(): Promise<void> }

/** Start pictalk; resolves with the exit code once it has stopped (a signal, or the terminal session ending). */
export async function start(_argv: readonly string[] = []): Promise<number> {
  let settings: PictalkSettings;
  try {
    settings = loadSettings(process.env);
    // In a container there is no terminal to talk to: a missing platform is a configuration error there.
    if (settings.requirePlatform) requirePlatform(settings);
  } catch (error) {
    console.error(`pictalk: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }

  // the store first: a database that cannot be reached stops start-up before minutes of model loading
  let store: BotStore;
  try {
    store = settings.databaseUrl ? await PostgresStore.open(settings.databaseUrl) : new SqliteStore(settings.dbPath);
  } catch (error) {
    const setting = settings.databaseUrl ? 'PICTALK_DATABASE_URL' : 'PICTALK_DB';
    console.error(`pictalk: ${setting}: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }

  // models: loaded once, shared by every platform
  const t2iDir = settings.t2iModel ?? builtinModelDir('text-to-image');
  const captionerDir = settings.captioner ?? builtinModelDir('captioner');
  const backend = { executionProvider: settings.executionProvider };
  let textToImage: TextToImage, imageToText: ImageToText | undefined;
  const speech = createTextToSpeech();
  const registry = createMetricsRegistry({ defaultMetrics: true });
  const metricsOfCore = createInferenceMetrics(registry);
  try {
    [textToImage, imageToText] = await Promise.all([
      loadTextToImage(t2iDir, {
        backend,
        onUnetRun: (requests) => metricsOfCore.observeUnetRun(requests),
        // the captioner ranks candidate pictures when the model folder asks for more than one (pictalk.json); it runs
        // inside the imagine job, outside the caption lane, so its cost is measured here (pictalk_rank_seconds)
        scorer: async (images, text, options) => {
          const started = performance.now();
          try {
            return await imageToText!.scoreText(images, text, options);
          } finally {
            metricsOfCore.observeRank(images.length, (performance.now() - started) / 1000);
          }
        },
      }),
      loadImageToText(captionerDir, { backend }),
      speech.load(),
    ]);
  } catch (error) {
    console.error(`pictalk: ${error instanceof Error ? error.message : String(error)}`);
    await store.close();
    return isPictalkError(error) && error.code.startsWith('input.') ? 2 : 1;
  }
  log.info('models loaded', { textToImage: t2iDir, captioner: captionerDir });

  // the one queue
  const core = new InferenceCore({
    imagine: (request, options) => textToImage.imagine(request, options),
    captionBatch: (requests, options) => imageToText.captionBatch(requests, options),
    prefetchCaption: (request) => imageToText.prefetch(request),
    speak: (request, options) => speech.speak(request, options),
  }, { metrics: metricsOfCore, concurrency: { imagine: imagineBatchOf(settings) } });

  const bot = new Bot({ store, core: corePort(core), config: settings.bot, logger: log });
  await bot.recoverInterrupted();

  let metrics: MetricsServer | undefined;
  if (settings.metricsPort !== undefined) {
    metrics = await startMetricsServer({ port: settings.metricsPort, registry, health: () => ({ queue: core.stats() }) });
    log.info(`metrics on :${metrics.port}/metrics, health on /healthz`);
  }

  const adapters: Stoppable[] = [];
  let stopping = false;
  const shutdown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    metrics?.setReady(false);
    log.info('stopping: finishing the jobs in flight');
    for (const adapter of adapters) await adapter.stop().catch((error: unknown) => log.warn('adapter stop failed', { error: String(error) }));
    await core.close();
    await store.close();
    await Promise.all([textToImage.dispose(), imageToText.dispose(), speech.close()]);
    await metrics?.close();
  };

  try {
    if (settings.discord) {
      const { token, applicationId, apiUrl, guildId } = settings.discord;
      adapters.push(await startDiscordAdapter({
        token, applicationId, bot, logger: log, ...(apiUrl ? { apiUrl } : {}), ...(guildId ? { guildId } : {}),
        commandLimits: { maxPromptChars: bot.config.maxPromptChars },
      }));
      log.info('Discord adapter connected');
    }
    if (settings.slack) {
      const slack = settings.slack;
      adapters.push(await startSlackAdapter({
        botToken: slack.botToken, bot, logger: log,
        ...(slack.apiUrl ? { apiUrl: slack.apiUrl } : {}),
        ...(slack.mode === 'socket' ? { appToken: slack.appToken } : { signingSecret: slack.signingSecret, port: slack.port }),
      }));
      log.info(`Slack adapter started (${slack.mode === 'socket' ? 'Socket Mode' : `HTTP on :${slack.port}`})`);
    }
  } catch (error) {
    console.error(`pictalk: ${error instanceof Error ? error.message : String(error)}`);
    await shutdown();
    return 1;
  }

  if (adapters.length === 0) {
    console.log(HOW_TO_CONFIGURE);
    const local = startLocalAdapter({ bot, input: process.stdin, output: process.stdout, outDir: join(process.cwd(), 'pictalk-out') });
    adapters.push({ stop: () => local.close() });
    await Promise.race([local.done, signal()]);
    await shutdown();
    return 0;
  }

  await signal();
  await shutdown();
  return 0;
}

function signal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}
