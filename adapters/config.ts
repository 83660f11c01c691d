/**
 * Settings from the environment, read and checked once at start-up. A missing or malformed setting stops start-up
 * with `config.invalid` and a message naming every bad setting, what it expected and what came.
 * Empty values count as unset (compose files often pass `VAR=`).
 */
import { PictalkError, describe } from '../common/errors.js';
import { QUOTA_LIMIT_OPTION } from '../bot/commands/option.spec.js';
import { resolveBotConfig, type BotConfig, type BotConfigInput } from '../bot/config.js';
import { MAX_LANES, type ExecutionProvider } from '../inference/onnx.backend.js';
import { DEFAULT_WORKER_LOCK_MS } from '../inference/cluster/defaults.js';

export interface DiscordSettings {
  token: string;
  applicationId: string;
  /** REST base, e.g. a local fake server in tests; discord.js's default when absent. */
  apiUrl?: string;
  /** Register the commands in this guild only (instant updates while testing) instead of globally. */
  guildId?: string;
  /**
   * DISCORD_PUBLIC_KEY with PICTALK_DISCORD_HTTP_PORT: HTTP interactions mode, `POST /discord/interactions` on that
   * port, and no gateway connection.
   */
  http?: { publicKey: string; port: number };
  /** PICTALK_DISCORD_SHARDS (`auto` or a count) and PICTALK_DISCORD_SHARD_IDS (this process's shards; default all). */
  shards?: { count: number | 'auto'; ids?: number[] };
}

interface SlackCommon {
  botToken: string;
  /** Web API base (Bolt's `clientOptions.slackApiUrl`); Slack's when absent. */
  apiUrl?: string;
}
export type SlackSettings =
  | (SlackCommon & { mode: 'socket'; appToken: string })
  | (SlackCommon & { mode: 'http'; signingSecret: string; port: number });

/** The settings of the model folders and the runtime, which the command line reads too. */
export interface ModelSettings {
  /** Text-to-image model folder (diffusers ONNX layout); the builtin model when absent. */
  t2iModel?: string;
  /** Captioner folder; the builtin captioner when absent. */
  captioner?: string;
  /** PICTALK_EXECUTION_PROVIDER: where onnxruntime runs the graphs (CUDA falls back to the CPU with one log line). */
  executionProvider: ExecutionProvider;
  /**
   * PICTALK_THREADS: onnxruntime's intra-op threads per graph; onnxruntime's own choice when unset. Several workers on
   * one machine run best with one thread each (two one-thread workers on two cores).
   */
  threads?: number;
  /**
   * PICTALK_CAPTION_LANES: on how many inference threads the captioner runs (1-4; the captioner's default, 2, when
   * unset). Two let two caption batches, or a ranking and the next UNet step, run side by side; 1 keeps a process's
   * graphs on one inference thread, for several workers sharing a machine one core each.
   */
  captionLanes?: number;
  /**
   * PICTALK_PREVIEW_AFTER_MS: live previews start once a job has run this long (default 2000: a job that finishes
   * sooner shows none); `off` turns them off.
   */
  previewAfterMs?: number | 'off';
}

export interface PictalkSettings extends ModelSettings {
  discord?: DiscordSettings;
  slack?: SlackSettings;
  dbPath: string;
  /** PICTALK_DATABASE_URL: the store is PostgreSQL at this URL instead of SQLite at `dbPath`. */
  databaseUrl?: string;
  /** PICTALK_REDIS_URL: jobs go through BullMQ on this Redis (the cluster queue) instead of the in-process core. */
  redisUrl?: string;
  /** PICTALK_WORKER_LOCK_MS: how long a worker's claim on a running job lasts without renewal. */
  workerLockMs: number;
  /** Port of the Prometheus /metrics server; no server when absent. */
  metricsPort?: number;
  /** PICTALK_REQUIRE_PLATFORM=1 (the container image sets it): no chat platform configured is an error, not the terminal. */
  requirePlatform: boolean;
  /**
   * Imagine jobs that run side by side; their UNet calls are merged into shared runs step by step. Unset: 4 on the
   * builtin model, 1 on an operator's model (a full-size UNet on a CPU gains nothing from merging, and four jobs
   * side by side would each run four times as long against the job timeout).
   */
  imagineBatch?: number;
  bot: BotConfig;
}

export const DEFAULT_DB_PATH = './pictalk.sqlite';

/** What one `pictalk start` process does: everything (the default), the platforms and policy, or the models. */
export type Role = 'all' | 'front' | 'worker';
export const ROLES: readonly Role[] = ['all', 'front', 'worker'];

/** `pictalk start [--role all|front|worker]`; anything else is `config.invalid` naming it. */
export function parseStartArgs(argv: readonly string[]): { role: Role } {
  let role: Role = 'all';
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    const value = arg.startsWith('--role=') ? arg.slice('--role='.length) : arg === '--role' ? argv[++i] : undefined;
    if (value === undefined && arg !== '--role') {
      throw new PictalkError('config.invalid', `Unknown option ${describe(arg)} for \`pictalk start\`; expected --role all|front|worker`);
    }
    if (!ROLES.includes(value as Role)) {
      throw new PictalkError('config.invalid', `Expected --role to be one of ${ROLES.join(', ')}, got ${describe(value)}`);
    }
    role = value as Role;
  }
  return { role };
}
export const DEFAULT_SLACK_PORT = 3000;
/** Imagine jobs side by side on the builtin model when PICTALK_IMAGINE_BATCH is unset. */
export const DEFAULT_IMAGINE_BATCH = 4;

/** The imagine batch to run with: the setting, else 4 on the builtin model and 1 on an operator's model. */
export function imagineBatchOf(settings: PictalkSettings): number {
  return settings.imagineBatch ?? (settings.t2iModel === undefined ? DEFAULT_IMAGINE_BATCH : 1);
}

/**
 * Caption batches in flight at once. Two let one batch's beam search bookkeeping on the main thread overlap the
 * other's graph calls on the inference thread: 8 clients got about 10% more captions a second than with one batch on
 * a 2-core machine, one client the same (scripts/BENCH.md, "The round of the second caption batch").
 */
export const DEFAULT_CAPTION_BATCHES = 2;

/** Pipeline calls side by side per job kind, in one process or one cluster worker. */
export function coreConcurrency(settings: PictalkSettings): { imagine: number; caption: number } {
  return { imagine: imagineBatchOf(settings), caption: DEFAULT_CAPTION_BATCHES };
}

type Env = Record<string, string | undefined>;

/** Collects every problem so one start-up attempt reports them all. */
class Problems {
  readonly list: Array<{ setting: string; message: string }> = [];
  add(setting: string, message: string): void {
    this.list.push({ setting, message });
  }
}

function read(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function integer(env: Env, name: string, problems: Problems, min: number, max: number): number | undefined {
  const text = read(env, name);
  if (text === undefined) return undefined;
  const value = /^-?\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    problems.add(name, `Expected ${name} to be an integer from ${min} to ${max}, got ${describe(text)}`);
    return undefined;
  }
  return value;
}

const port = (env: Env, name: string, problems: Problems): number | undefined => integer(env, name, problems, 1, 65_535);

function url(env: Env, name: string, problems: Problems): string | undefined {
  const text = read(env, name);
  if (text === undefined) return undefined;
  try {
    const parsed = new URL(text);
    if (parsed.protocol === 'http:' || parsed.protocol === 'https:') return text;
  } catch {
    // reported below
  }
  problems.add(name, `Expected ${name} to be an http(s) URL, got ${describe(text)}`);
  return undefined;
}

/** `5/30s`: 5 commands per 30 seconds (units ms, s, m). */
function rateLimit(env: Env, problems: Problems): BotConfigInput['rateLimit'] | undefined {
  const name = 'PICTALK_RATE_LIMIT';
  const text = read(env, name);
  if (text === undefined) return undefined;
  const match = /^(\d+)\s*\/\s*(\d+)\s*(ms|s|m)$/.exec(text);
  if (!match || Number(match[1]) < 1 || Number(match[2]) < 1) {
    problems.add(name, `Expected ${name} like \`5/30s\` (commands per window in ms, s or m), got ${describe(text)}`);
    return undefined;
  }
  const scale = { ms: 1, s: 1000, m: 60_000 }[match[3] as 'ms' | 's' | 'm'];
  return { capacity: Number(match[1]), windowMs: Number(match[2]) * scale };
}

function discord(env: Env, problems: Problems): DiscordSettings | undefined {
  const token = read(env, 'DISCORD_TOKEN');
  const applicationId = read(env, 'DISCORD_APPLICATION_ID');
  const apiUrl = url(env, 'DISCORD_API_URL', problems);
  if (token === undefined && applicationId === undefined) {
    for (const name of ['DISCORD_API_URL', 'DISCORD_PUBLIC_KEY', 'PICTALK_DISCORD_HTTP_PORT', 'PICTALK_DISCORD_SHARDS', 'PICTALK_DISCORD_SHARD_IDS']) {
      if (read(env, name) !== undefined) problems.add(name, `${name} is set but DISCORD_TOKEN and DISCORD_APPLICATION_ID are not`);
    }
    return undefined;
  }
  if (token === undefined) {
    problems.add('DISCORD_TOKEN', 'DISCORD_APPLICATION_ID is set but DISCORD_TOKEN is not; set both to run on Discord');
    return undefined;
  }
  if (applicationId === undefined) {
    problems.add('DISCORD_APPLICATION_ID', 'DISCORD_TOKEN is set but DISCORD_APPLICATION_ID is not; set both to run on Discord');
    return undefined;
  }
  if (!/^\d{1,20}$/.test(applicationId)) {
    problems.add('DISCORD_APPLICATION_ID', `Expected DISCORD_APPLICATION_ID to be a numeric snowflake, got ${describe(applicationId)}`);
    return undefined;
  }
  const settings: DiscordSettings = { token, applicationId };
  if (apiUrl !== undefined) settings.apiUrl = apiUrl;
  const guildId = read(env, 'PICTALK_DISCORD_GUILD_ID');
  if (guildId !== undefined && !/^\d{1,20}$/.test(guildId)) {
    problems.add('PICTALK_DISCORD_GUILD_ID', `Expected PICTALK_DISCORD_GUILD_ID to be a numeric snowflake, got ${describe(guildId)}`);
  } else if (guildId !== undefined) settings.guildId = guildId;
  const http = discordHttp(env, problems);
  const shards = discordShards(env, problems);
  if (http && shards) {
    problems.add('PICTALK_DISCORD_SHARDS', 'PICTALK_DISCORD_SHARDS (or PICTALK_DISCORD_SHARD_IDS) is set with DISCORD_PUBLIC_KEY: HTTP interactions mode opens no gateway, so it has no shards; unset one of them');
  }
  if (http) settings.http = http;
  if (shards) settings.shards = shards;
  return settings;
}

/** Discord's HTTP interactions mode: the application's public key and the endpoint's port, both or neither. */
function discordHttp(env: Env, problems: Problems): DiscordSettings['http'] {
  const publicKey = read(env, 'DISCORD_PUBLIC_KEY');
  const httpPort = port(env, 'PICTALK_DISCORD_HTTP_PORT', problems);
  const portText = read(env, 'PICTALK_DISCORD_HTTP_PORT');
  if (publicKey !== undefined && !/^[0-9a-f]{64}$/i.test(publicKey)) {
    problems.add('DISCORD_PUBLIC_KEY', `Expected DISCORD_PUBLIC_KEY to be the application's public key, 64 hexadecimal characters, got ${describe(publicKey.length > 80 ? `${publicKey.slice(0, 80)}…` : publicKey)} (${publicKey.length} characters)`);
    return undefined;
  }
  if (publicKey !== undefined && portText === undefined) {
    problems.add('PICTALK_DISCORD_HTTP_PORT', 'DISCORD_PUBLIC_KEY is set but PICTALK_DISCORD_HTTP_PORT is not; HTTP interactions mode needs the port of POST /discord/interactions');
    return undefined;
  }
  if (publicKey === undefined && portText !== undefined) {
    problems.add('DISCORD_PUBLIC_KEY', 'PICTALK_DISCORD_HTTP_PORT is set but DISCORD_PUBLIC_KEY is not; HTTP interactions mode needs the application\'s public key to check signatures');
    return undefined;
  }
  return publicKey !== undefined && httpPort !== undefined ? { publicKey: publicKey.toLowerCase(), port: httpPort } : undefined;
}

/** Discord's sharded gateway: `auto` or a count, and this process's shard ids (comma-separated; all when unset). */
function discordShards(env: Env, problems: Problems): DiscordSettings['shards'] {
  const countText = read(env, 'PICTALK_DISCORD_SHARDS');
  const idsText = read(env, 'PICTALK_DISCORD_SHARD_IDS');
  if (countText === undefined && idsText === undefined) return undefined;
  let count: number | 'auto' = 'auto';
  if (countText !== undefined && countText.toLowerCase() !== 'auto') {
    const value = /^\d+$/.test(countText) ? Number(countText) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < 1 || value > 65_536) {
      problems.add('PICTALK_DISCORD_SHARDS', `Expected PICTALK_DISCORD_SHARDS to be \`auto\` or a shard count from 1 to 65536, got ${describe(countText)}`);
      return undefined;
    }
    count = value;
  }
  if (idsText === undefined) return { count };
  const parts = idsText.split(',').map((part) => part.trim());
  const ids = parts.map((part) => (/^\d+$/.test(part) ? Number(part) : Number.NaN));
  const bad = parts.filter((_, i) => !Number.isSafeInteger(ids[i]) || (count !== 'auto' && ids[i]! >= count));
  if (bad.length > 0 || new Set(ids).size !== ids.length) {
    const range = count === 'auto' ? 'shard ids >= 0' : `shard ids from 0 to ${count - 1}`;
    problems.add('PICTALK_DISCORD_SHARD_IDS', `Expected PICTALK_DISCORD_SHARD_IDS to be distinct comma-separated ${range}, got ${describe(idsText)}`);
    return undefined;
  }
  return { count, ids };
}

function slack(env: Env, problems: Problems): SlackSettings | undefined {
  const botToken = read(env, 'SLACK_BOT_TOKEN');
  const appToken = read(env, 'SLACK_APP_TOKEN');
  const signingSecret = read(env, 'SLACK_SIGNING_SECRET');
  const apiUrl = url(env, 'SLACK_API_URL', problems);
  const slackPort = port(env, 'PICTALK_SLACK_PORT', problems);
  if (botToken === undefined) {
    if (appToken !== undefined) problems.add('SLACK_BOT_TOKEN', 'SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not; Socket Mode needs both');
    if (signingSecret !== undefined) problems.add('SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET is set but SLACK_BOT_TOKEN is not; HTTP mode needs both');
    return undefined;
  }
  const common: SlackCommon = apiUrl === undefined ? { botToken } : { botToken, apiUrl };
  // Socket Mode wins when both are there: it needs no public port.
  if (appToken !== undefined) return { ...common, mode: 'socket', appToken };
  if (signingSecret !== undefined) return { ...common, mode: 'http', signingSecret, port: slackPort ?? DEFAULT_SLACK_PORT };
  problems.add('SLACK_APP_TOKEN',
    'SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET (HTTP, with PICTALK_SLACK_PORT) is');
  return undefined;
}

function modelSettings(env: Env, problems: Problems): ModelSettings {
  const provider = read(env, 'PICTALK_EXECUTION_PROVIDER')?.toLowerCase() ?? 'cpu';
  if (provider !== 'cpu' && provider !== 'cuda') {
    problems.add('PICTALK_EXECUTION_PROVIDER', `Expected PICTALK_EXECUTION_PROVIDER to be \`cpu\` or \`cuda\`, got ${describe(env.PICTALK_EXECUTION_PROVIDER)}`);
  }
  const settings: ModelSettings = { executionProvider: provider === 'cuda' ? 'cuda' : 'cpu' };
  const t2iModel = read(env, 'PICTALK_T2I_MODEL');
  if (t2iModel !== undefined) settings.t2iModel = t2iModel;
  const captioner = read(env, 'PICTALK_CAPTIONER');
  if (captioner !== undefined) settings.captioner = captioner;
  const threads = integer(env, 'PICTALK_THREADS', problems, 1, 256);
  if (threads !== undefined) settings.threads = threads;
  const captionLanes = integer(env, 'PICTALK_CAPTION_LANES', problems, 1, MAX_LANES);
  if (captionLanes !== undefined) settings.captionLanes = captionLanes;
  // live previews: `off`, or how long a job runs before its first preview (default 2000 ms)
  const previews = read(env, 'PICTALK_PREVIEW_AFTER_MS');
  if (previews === 'off') settings.previewAfterMs = 'off';
  else if (previews !== undefined) {
    const after = /^\d+$/.test(previews) ? Number(previews) : Number.NaN;
    if (Number.isSafeInteger(after) && after <= 600_000) settings.previewAfterMs = after;
    else problems.add('PICTALK_PREVIEW_AFTER_MS', `Expected PICTALK_PREVIEW_AFTER_MS to be \`off\` or an integer from 0 to 600000 (milliseconds), got ${describe(previews)}`);
  }
  return settings;
}

function fail(problems: Problems): never {
  const message = problems.list.length === 1
    ? problems.list[0]!.message
    : `${problems.list.length} settings are wrong:\n${problems.list.map((p) => `- ${p.message}`).join('\n')}`;
  throw new PictalkError('config.invalid', message, { settings: problems.list.map((p) => p.setting) });
}

/** The model and runtime settings alone (the command line's); throws `config.invalid` naming a malformed one. */
export function loadModelSettings(env: Env = process.env): ModelSettings {
  const problems = new Problems();
  const settings = modelSettings(env, problems);
  if (problems.list.length > 0) fail(problems);
  return settings;
}

/**
 * Read every setting; throws `config.invalid` naming each missing or malformed one. A `front` or `worker` needs
 * PICTALK_REDIS_URL (the queue they share).
 */
export function loadSettings(env: Env = process.env, role: Role = 'all'): PictalkSettings {
  const problems = new Problems();
  const models = modelSettings(env, problems);
  const discordSettings = discord(env, problems);
  const slackSettings = slack(env, problems);
  const metricsPort = port(env, 'PICTALK_METRICS_PORT', problems);

  const botInput: BotConfigInput = {};
  const roles = read(env, 'PICTALK_MODERATOR_ROLE_IDS');
  if (roles !== undefined) {
    const ids = roles.split(',').map((id) => id.trim());
    if (ids.some((id) => id === '')) problems.add('PICTALK_MODERATOR_ROLE_IDS', `Expected PICTALK_MODERATOR_ROLE_IDS to be comma-separated role ids, got ${describe(roles)}`);
    else botInput.moderatorRoleIds = ids;
  }
  const imagine = integer(env, 'PICTALK_DAILY_IMAGINE', problems, 0, QUOTA_LIMIT_OPTION.max);
  const caption = integer(env, 'PICTALK_DAILY_CAPTION', problems, 0, QUOTA_LIMIT_OPTION.max);
  if (imagine !== undefined || caption !== undefined) {
    botInput.defaultDailyLimits = {};
    if (imagine !== undefined) botInput.defaultDailyLimits.imagine = imagine;
    if (caption !== undefined) botInput.defaultDailyLimits.caption = caption;
  }
  const rate = rateLimit(env, problems);
  if (rate) botInput.rateLimit = rate;
  const promptChars = integer(env, 'PICTALK_MAX_PROMPT_CHARS', problems, 1, 10_000);
  if (promptChars !== undefined) botInput.maxPromptChars = promptChars;
  const attachmentBytes = integer(env, 'PICTALK_MAX_ATTACHMENT_BYTES', problems, 1, 1024 * 1024 * 1024);
  if (attachmentBytes !== undefined) botInput.maxAttachmentBytes = attachmentBytes;
  const jobTimeout = integer(env, 'PICTALK_JOB_TIMEOUT_MS', problems, 1000, 3_600_000);
  if (jobTimeout !== undefined) botInput.jobTimeoutMs = { imagine: jobTimeout };
  const upscale = integer(env, 'PICTALK_IMAGE_UPSCALE', problems, 1, 16);
  if (upscale !== undefined) botInput.imageUpscale = upscale;
  const imagineBatch = integer(env, 'PICTALK_IMAGINE_BATCH', problems, 1, 16);

  const requireText = read(env, 'PICTALK_REQUIRE_PLATFORM');
  if (requireText !== undefined && requireText !== '0' && requireText !== '1') {
    problems.add('PICTALK_REQUIRE_PLATFORM', `Expected PICTALK_REQUIRE_PLATFORM to be 0 or 1, got ${describe(requireText)}`);
  }

  const databaseUrl = read(env, 'PICTALK_DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\/[^/]+/.test(databaseUrl)) {
    problems.add('PICTALK_DATABASE_URL', `Expected PICTALK_DATABASE_URL to be postgres://user:password@host:port/database, got ${describe(databaseUrl.replace(/:[^:@/]*@/, ':***@'))}`);
  }

  const redisUrl = read(env, 'PICTALK_REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\/[^/]+(\/\d*)?$/.test(redisUrl)) {
    problems.add('PICTALK_REDIS_URL', `Expected PICTALK_REDIS_URL to be redis://host:port/db, got ${describe(redisUrl.replace(/:[^:@/]*@/, ':***@'))}`);
  } else if (redisUrl === undefined && role !== 'all') {
    problems.add('PICTALK_REDIS_URL', `The ${role} role needs PICTALK_REDIS_URL (redis://host:port/db): fronts and workers share their jobs through Redis`);
  }
  const workerLockMs = integer(env, 'PICTALK_WORKER_LOCK_MS', problems, 100, 3_600_000) ?? DEFAULT_WORKER_LOCK_MS;

  if (problems.list.length > 0) fail(problems);

  const settings: PictalkSettings = {
    ...models,
    workerLockMs,
    requirePlatform: requireText === '1',
    dbPath: read(env, 'PICTALK_DB') ?? DEFAULT_DB_PATH,
    ...(imagineBatch !== undefined ? { imagineBatch } : {}),
    bot: resolveBotConfig(botInput),
  };
  if (discordSettings) settings.discord = discordSettings;
  if (slackSettings) settings.slack = slackSettings;
  if (metricsPort !== undefined) settings.metricsPort = metricsPort;
  if (databaseUrl !== undefined) settings.databaseUrl = databaseUrl;
  if (redisUrl !== undefined) settings.redisUrl = redisUrl;
  return settings;
}

/** For `pictalk start`: at least one chat platform must be configured (the terminal adapter needs none). */
export function requirePlatform(settings: PictalkSettings): void {
  if (!settings.discord && !settings.slack) {
    throw new PictalkError('config.invalid',
      'No chat platform is configured: set DISCORD_TOKEN and DISCORD_APPLICATION_ID, or SLACK_BOT_TOKEN with SLACK_APP_TOKEN or SLACK_SIGNING_SECRET',
      { settings: ['DISCORD_TOKEN', 'SLACK_BOT_TOKEN'] });
  }
}
