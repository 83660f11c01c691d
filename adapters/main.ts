/**
 * `pictalk start [--role all|front|worker]`: the composition root. Reads the settings, loads the models once (not in
 * a front), builds the one queue every platform shares (the in-process InferenceCore, or with PICTALK_REDIS_URL the
 * cluster's on Redis), the Bot on its store (SQLite at PICTALK_DB, or PostgreSQL at PICTALK_DATABASE_URL), and starts
 * the configured adapters (not in a worker) — Discord, Slack, or, with no platform credentials, the terminal adapter.
 * Dependencies point inward: this file may import everything; nothing imports it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { Bot } from '../bot/bot.js';
import { PostgresStore } from '../bot/postgres.store.js';
import { SqliteStore } from '../bot/sqlite.store.js';
import type { BotStore, JobRecord } from '../bot/store.js';
import type { InferencePort, SharedRateLimits } from '../bot/ports.js';
import type { Conversation } from '../bot/types.js';
import { builtinModelDir } from '../common/package-root.js';
import { ClusterClient } from '../inference/cluster/client.js';
import { createClusterMetrics } from '../inference/cluster/metrics.js';
import { ClusterWorker } from '../inference/cluster/worker.js';
import { probe as probeRedis } from '../inference/cluster/redis.js';
import { InferenceCore, type InferencePipelines } from '../inference/core.js';
import { isPictalkError } from '../common/errors.js';
import { loadImageToText, type ImageToText } from '../inference/image-to-text.pipeline.js';
import { createEndpointMetrics, createInferenceMetrics, createMetricsRegistry, type InferenceMetrics, type MetricsRegistry } from '../inference/metrics.js';
import { DEFAULT_PREVIEW_AFTER_MS } from '../inference/latent.preview.js';
import { readSafetyChecker } from '../inference/model-folder.js';
import { loadTextToImage, type TextToImage } from '../inference/text-to-image.pipeline.js';
import { createTextToSpeech } from '../inference/text-to-speech.pipeline.js';
import { coreConcurrency, loadSettings, parseStartArgs, requirePlatform, type PictalkSettings, type Role } from './config.js';
import { corePort } from './core.port.js';
import { startDiscordAdapter } from './discord/discord.adapter.js';
import { INTERACTIONS_PATH } from './discord/discord.http.js';
import { startLocalAdapter } from './local/local.adapter.js';
import { startMetricsServer, type MetricsServer } from './metrics.server.js';
import { startSlackAdapter } from './slack/slack.adapter.js';

const HOW_TO_CONFIGURE = `No chat platform is configured, so pictalk runs in this terminal. Type /help for the commands.
To run on Discord: set DISCORD_TOKEN and DISCORD_APPLICATION_ID (optionally PICTALK_DISCORD_GUILD_ID; DISCORD_PUBLIC_KEY
  with PICTALK_DISCORD_HTTP_PORT for HTTP interactions; PICTALK_DISCORD_SHARDS and PICTALK_DISCORD_SHARD_IDS for shards).
To run on Slack:   set SLACK_BOT_TOKEN with SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP, PICTALK_SLACK_PORT).
See the README's operator guide for creating the apps.`;

const log = {
  info: (message: string, fields?: Record<string, unknown>) => console.log(`[pictalk] ${message}`, fields ?? ''),
  warn: (message: string, fields?: Record<string, unknown>) => console.warn(`[pictalk] ${message}`, fields ?? ''),
  error: (message: string, fields?: Record<string, unknown>) => console.error(`[pictalk] ${message}`, fields ?? ''),
  debug: () => undefined,
};

interface Stoppable {
  /** Stop taking requests and wait until those already acknowledged are taken by bot/ (resolves to those left). */
  quiesce?(timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/** How long /healthz waits for the database's answer. */
const HEALTH_DATABASE_MS = 2000;

/** `work`, or a rejection once `ms` have passed. */
function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, fail) => { timer = setTimeout(() => fail(new Error(`no answer within ${ms} ms`)), ms); });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** Start pictalk; resolves with the exit code once it has stopped (a signal, or the terminal session ending). */
export async function start(argv: readonly string[] = []): Promise<number> {
  let settings: PictalkSettings;
  let role: Role;
  try {
    ({ role } = parseStartArgs(argv));
    settings = loadSettings(process.env, role);
    // In a container there is no terminal to talk to: a missing platform is a configuration error there.
    if (settings.requirePlatform && role !== 'worker') requirePlatform(settings);
  } catch (error) {
    console.error(`pictalk: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }
  const runsPlatforms = role !== 'worker';
  const runsModels = role !== 'front';
  const cleanup: Array<() => Promise<unknown>> = [];
  const stopAll = async (): Promise<void> => {
    for (const step of cleanup.splice(0).reverse()) await step().catch((error: unknown) => log.warn('stopping failed', { error: String(error) }));
  };

  // the store first: a database that cannot be reached stops start-up before minutes of model loading
  let store: BotStore | undefined;
  if (runsPlatforms) {
    try {
      store = settings.databaseUrl ? await PostgresStore.open(settings.databaseUrl) : new SqliteStore(settings.dbPath);
    } catch (error) {
      const setting = settings.databaseUrl ? 'PICTALK_DATABASE_URL' : 'PICTALK_DB';
      console.error(`pictalk: ${setting}: ${error instanceof Error ? error.message : String(error)}`);
      return 1;
    }
    const opened = store;
    cleanup.push(() => opened.close());
  }

  const registry = createMetricsRegistry({ defaultMetrics: true });
  const metricsOfCore = createInferenceMetrics(registry);
  let pipelines: InferencePipelines | undefined;
  if (runsModels) {
    try {
      // a Redis that does not answer is said before minutes of model loading, not after
      if (settings.redisUrl) await probeRedis(settings.redisUrl, log);
      pipelines = await loadPipelines(settings, metricsOfCore, cleanup);
    } catch (error) {
      console.error(`pictalk: ${error instanceof Error ? error.message : String(error)}`);
      await stopAll();
      return isPictalkError(error) && error.code.startsWith('input.') ? 2 : 1;
    }
  }

  // the one queue: in this process, or the cluster's on Redis
  let port: InferencePort | undefined;
  let health: () => Promise<Record<string, unknown>>;
  let stopFollowing: (() => Promise<unknown>) | undefined;
  // in a cluster, the per-user rate limit is one bucket in Redis for all fronts
  let rateLimits: SharedRateLimits | undefined;
  try {
    if (settings.redisUrl) {
      const cluster = await startCluster(settings, role, pipelines, metricsOfCore, registry, cleanup);
      port = cluster.port;
      health = cluster.health;
      stopFollowing = cluster.stopFollowing;
      rateLimits = cluster.rateLimits;
      log.info(`role ${role}: jobs go through Redis`, { worker: cluster.workerId });
    } else {
      const core = new InferenceCore(pipelines!, { metrics: metricsOfCore, concurrency: coreConcurrency(settings) });
      cleanup.push(() => core.close());
      port = corePort(core);
      health = async () => ({ role, queue: core.stats(), healthy: true });
    }
    if (store) {
      // a process that answers commands needs its database as well: /healthz says so (bounded, so a hung database
      // makes the probe fail instead of hang)
      const ofQueue = health;
      const database = store;
      health = async () => {
        const figures = await ofQueue();
        const answers = await withDeadline(database.ping(), HEALTH_DATABASE_MS).then(() => true, () => false);
        return { ...figures, database: answers, healthy: figures.healthy !== false && answers };
      };
    }
  } catch (error) {
    console.error(`pictalk: ${error instanceof Error ? error.message : String(error)}`);
    await stopAll();
    return 1;
  }

  let metrics: MetricsServer | undefined;
  if (settings.metricsPort !== undefined) {
    metrics = await startMetricsServer({ port: settings.metricsPort, registry, health: () => health() });
    const server = metrics;
    cleanup.push(() => server.close());
    log.info(`metrics on :${metrics.port}/metrics, health on /healthz`);
  }
  const shutdown = async (): Promise<void> => {
    metrics?.setReady(false);
    log.info('stopping: finishing the jobs in flight');
    await stopAll();
  };

  if (!runsPlatforms) {
    log.info('worker ready: taking jobs');
    await signal();
    await shutdown();
    return 0;
  }

  const safetyChecker = safetyCheckerOf(settings);
  const bot = new Bot({
    store: store!, core: port!, config: settings.bot, logger: log, ...(rateLimits ? { rateLimits } : {}),
    ...(safetyChecker !== undefined ? { safetyChecker } : {}),
  });
  await bot.recoverInterrupted();

  const adapters: Stoppable[] = [];
  // adapters stop first (no new requests), then the queue finishes what is in flight
  cleanup.push(async () => {
    for (const adapter of adapters) await adapter.stop().catch((error: unknown) => log.warn('adapter stop failed', { error: String(error) }));
  });
  const reconnect: Partial<Record<string, (route: Record<string, unknown> | undefined, requestId: string) => Conversation | undefined>> = {};
  try {
    if (settings.discord) {
      const { token, applicationId, apiUrl, guildId, http, shards } = settings.discord;
      const discord = await startDiscordAdapter({
        token, applicationId, bot, logger: log, ...(apiUrl ? { apiUrl } : {}), ...(guildId ? { guildId } : {}),
        ...(http ? { http, metrics: createEndpointMetrics(registry, 'discord') } : {}), ...(shards ? { shards } : {}),
        commandLimits: { maxPromptChars: bot.config.maxPromptChars },
      });
      adapters.push(discord);
      reconnect.discord = (route) => discord.reconnect(route);
      log.info(discord.mode === 'http'
        ? `Discord adapter started (HTTP interactions on :${discord.port}${INTERACTIONS_PATH}, no gateway)`
        : `Discord adapter connected (gateway shards ${discord.shards!.ids.join(', ')} of ${discord.shards!.count})`);
    }
    if (settings.slack) {
      const slack = settings.slack;
      const adapter = await startSlackAdapter({
        botToken: slack.botToken, bot, logger: log,
        ...(slack.apiUrl ? { apiUrl: slack.apiUrl } : {}),
        ...(slack.mode === 'socket' ? { appToken: slack.appToken } : { signingSecret: slack.signingSecret, port: slack.port }),
      });
      adapters.push(adapter);
      reconnect.slack = (route, requestId) => adapter.reconnect(route, requestId);
      log.info(`Slack adapter started (${slack.mode === 'socket' ? 'Socket Mode' : `HTTP on :${slack.port}`})`);
    }
  } catch (error) {
    console.error(`pictalk: ${error instanceof Error ? error.message : String(error)}`);
    await shutdown();
    return 1;
  }

  // in a cluster: jobs whose front stopped (this one before a restart, or another) are followed again from here,
  // their replies sent through conversations rebuilt from the route kept in each job
  const reconnectJob = (job: JobRecord): Conversation | undefined => reconnect[job.platform]?.(job.settings.route as Record<string, unknown> | undefined, job.requestId);
  const stopSweep = bot.resumeInterrupted(reconnectJob);
  // the single process: the requesters of the jobs its restart lost are told so (the cluster's sweep does it there)
  void bot.tellInterrupted(reconnectJob).catch((error: unknown) => log.warn('telling the requesters of lost jobs failed', { error: String(error) }));
  cleanup.push(async () => stopSweep());
  // stopping, a front first lets go of the jobs it follows whose results have not come (another front takes them over
  // and replies) and sends the replies it is building from results that did come, then stops its adapters: it must
  // neither settle a job whose reply it would not live to send nor leave a reply half sent for another front to repeat
  if (stopFollowing) cleanup.push(stopFollowing);
  // and before that, it stops taking requests and waits until those it acknowledged are queued or answered: an
  // acknowledged command must be in the shared queue (where another front takes it over), not lost with this process
  cleanup.push(async () => {
    for (const adapter of adapters) {
      const left = await adapter.quiesce?.();
      if (left) log.warn('stopping with requests that were acknowledged but not yet taken', { left });
    }
  });

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

/**
 * Whether the text-to-image folder has a safety checker, for `/pictalk` and `/safety show`: read from the folder (no
 * session opened), so a front without models says it too when it can see the folder; undefined when it cannot.
 */
function safetyCheckerOf(settings: PictalkSettings): boolean | undefined {
  const dir = settings.t2iModel ?? builtinModelDir('text-to-image');
  if (!existsSync(join(dir, 'model_index.json'))) return undefined;
  try {
    return readSafetyChecker(dir) !== undefined;
  } catch {
    return undefined;   // a checker folder that does not validate: the process that loads the models refuses to start
  }
}

/** Load the models once, shared by every platform; their disposal joins `cleanup`. */
async function loadPipelines(settings: PictalkSettings, metricsOfCore: InferenceMetrics, cleanup: Array<() => Promise<unknown>>): Promise<InferencePipelines> {
  const t2iDir = settings.t2iModel ?? builtinModelDir('text-to-image');
  const captionerDir = settings.captioner ?? builtinModelDir('captioner');
  const backend = { executionProvider: settings.executionProvider, ...(settings.threads ? { intraOpThreads: settings.threads } : {}) };
  const speech = createTextToSpeech();
  // the scorer runs after loading, once the captioner is there
  const loadedCaptioner: { current?: ImageToText } = {};
  const loaded = await Promise.allSettled([
    loadTextToImage(t2iDir, {
      backend,
      previews: settings.previewAfterMs === 'off' ? false : { afterMs: settings.previewAfterMs ?? DEFAULT_PREVIEW_AFTER_MS },
      onUnetRun: (requests) => metricsOfCore.observeUnetRun(requests),
      // the captioner ranks candidate pictures when the model folder asks for more than one (pictalk.json); it runs
      // inside the imagine job, outside the caption lane, so its cost is measured here (pictalk_rank_seconds)
      scorer: async (images, text, options) => {
        const started = performance.now();
        try {
          return await loadedCaptioner.current!.scoreText(images, text, options);
        } finally {
          metricsOfCore.observeRank(images.length, (performance.now() - started) / 1000);
        }
      },
    }),
    loadImageToText(captionerDir, { backend, lanes: settings.captionLanes }),
    speech.load(),
  ]);
  const [t2i, i2t] = loaded;
  if (t2i.status === 'fulfilled') cleanup.push(() => t2i.value.dispose());
  if (i2t.status === 'fulfilled') cleanup.push(() => i2t.value.dispose());
  cleanup.push(() => speech.close());
  const failed = loaded.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const textToImage = (t2i as PromiseFulfilledResult<TextToImage>).value;
  const captioner = (i2t as PromiseFulfilledResult<ImageToText>).value;
  loadedCaptioner.current = captioner;
  log.info('models loaded', { textToImage: t2iDir, captioner: captionerDir });
  return {
    imagine: (request, options) => textToImage.imagine(request, options),
    captionBatch: (requests, options) => captioner.captionBatch(requests, options),
    prefetchCaption: (request) => captioner.prefetch(request),
    speak: (request, options) => speech.speak(request, options),
  };
}

/**
 * The cluster queue on Redis: a worker over this process's models (roles all and worker) and a client for bot/
 * (roles all and front). Their closing joins `cleanup`: the client first (no new jobs), then the worker finishes its own.
 */
async function startCluster(
  settings: PictalkSettings, role: Role, pipelines: InferencePipelines | undefined, metricsOfCore: InferenceMetrics,
  registry: MetricsRegistry, cleanup: Array<() => Promise<unknown>>,
): Promise<{
  port?: InferencePort; rateLimits?: SharedRateLimits; health: () => Promise<Record<string, unknown>>; workerId?: string; stopFollowing?: () => Promise<unknown>;
}> {
  const redisUrl = settings.redisUrl!;
  let worker: ClusterWorker | undefined;
  let client: ClusterClient | undefined;
  if (pipelines) {
    worker = await ClusterWorker.open(pipelines, {
      redisUrl, lockMs: settings.workerLockMs, metrics: metricsOfCore, log,
      concurrency: coreConcurrency(settings),
    });
    const opened = worker;
    cleanup.push(() => opened.close());
  }
  if (role !== 'worker') {
    client = await ClusterClient.open({ redisUrl, log });
    const opened = client;
    cleanup.push(() => opened.close());
  }
  createClusterMetrics(registry, { client, worker });
  return {
    ...(client ? { port: client, rateLimits: client, stopFollowing: async () => { await client!.letGo(); await client!.close(); } } : {}),
    ...(worker ? { workerId: worker.id } : {}),
    health: async () => {
      const redis = await (client ?? worker)!.ping();
      const figures: Record<string, unknown> = { role, redis, healthy: redis };
      if (worker) figures.worker = { id: worker.id, modelsLoaded: true, running: worker.busy() };
      return figures;
    },
  };
}

function signal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}
