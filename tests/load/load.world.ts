/**
 * The load test's world: ONE real Bot on a SQLite FILE, ONE real InferenceCore on the faulty fake pipelines, and both
 * real adapters (discord.js and Bolt) connected at the same time to their fake platforms. Two thin recorders sit on
 * the ports, without changing behaviour: one between the adapters and bot/ (every `handle` and every `finish`, with
 * times), one between bot/ and the core (every `submit`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bot } from '../../bot/bot.js';
import type { BotConfigInput } from '../../bot/config.js';
import type { InferencePort, JobHandle, QueueStats, SubmitOptions } from '../../bot/ports.js';
import { SqliteStore } from '../../bot/sqlite.store.js';
import type { BotRequest, Conversation, FinishReceipt, HandleOutcome, Reply } from '../../bot/types.js';
import { InferenceCore, type InferenceCoreOptions } from '../../inference/core.js';
import { createMetricsRegistry } from '../../inference/metrics.js';
import type { JobInput, JobKind, JobOwner } from '../../inference/types.js';
import { corePort } from '../../adapters/core.port.js';
import { startDiscordAdapter, type DiscordAdapter } from '../../adapters/discord/discord.adapter.js';
import { startSlackAdapter, type SlackAdapter } from '../../adapters/slack/slack.adapter.js';
import { FakeDiscord, type FakeMember } from '../fakes/discord/fake-discord.js';
import { MEMBER_PERMISSIONS, snowflake, user } from '../fakes/discord/fake-discord.payloads.js';
import { FakeSlack } from '../fakes/slack/fake-slack.js';
import type { FakeUser } from '../fakes/slack/fake-slack.payloads.js';
import { faultyPipelines, newCounters, realVoiceClip, type FaultPlan, type PipelineCounters } from './load.pipelines.js';

export interface FinishRecord {
  reply: Reply;
  at: number;
  /** When the adapter's `finish` resolved: the reply is on the platform. */
  deliveredAt?: number;
  /** The adapter's `finish` threw: the reply did not reach the user. */
  failed?: string;
}

export interface HandleRecord {
  request: BotRequest;
  handleCalls: number;
  finishes: FinishRecord[];
  outcome?: HandleOutcome;
}

/** Between the adapters and bot/: records every request and every final reply. */
export class RecordingBot {
  readonly records = new Map<string, HandleRecord>();

  constructor(readonly bot: Bot) {}

  async handle(request: BotRequest, conversation: Conversation): Promise<HandleOutcome> {
    let record = this.records.get(request.id);
    if (!record) this.records.set(request.id, (record = { request, handleCalls: 0, finishes: [] }));
    record.handleCalls++;
    const finishes = record.finishes;
    const recording: Conversation = {
      status: (update) => conversation.status(update),
      async finish(reply: Reply): Promise<void | FinishReceipt> {
        const entry: FinishRecord = { reply, at: Date.now() };
        finishes.push(entry);
        try {
          const receipt = await conversation.finish(reply);
          entry.deliveredAt = Date.now();
          return receipt;
        } catch (error) {
          entry.failed = String(error);
          throw error;
        }
      },
    };
    const outcome = await this.bot.handle(request, recording);
    record.outcome = outcome;
    return outcome;
  }

  isAutoCaptionChannel(spaceId: string, channelId: string): Promise<boolean> {
    return this.bot.isAutoCaptionChannel(spaceId, channelId);
  }
}

export interface SubmitRecord {
  jobId: string;
  kind: JobKind;
  userId: string;
  at: number;
  /** `submit` was refused (queue.busy): no job was started. */
  refused?: string;
}

/** Between bot/ and the core's port (the one the bot runs on): records every submitted job id. */
export class CountingCore implements InferencePort {
  readonly submits: SubmitRecord[] = [];
  private readonly port: InferencePort;

  constructor(readonly core: InferenceCore) {
    this.port = corePort(core);
  }

  async submit(owner: JobOwner, input: JobInput, options?: SubmitOptions): Promise<JobHandle> {
    const record: SubmitRecord = { jobId: options?.jobId ?? '?', kind: input.kind, userId: owner.userId, at: Date.now() };
    this.submits.push(record);
    try {
      return await this.port.submit(owner, input, options);
    } catch (error) {
      record.refused = String(error);
      throw error;
    }
  }

  cancel(jobId: string): Promise<boolean> {
    return this.port.cancel(jobId);
  }

  async stats(): Promise<QueueStats> {
    return this.port.stats!();
  }
}

export interface WorldOptions {
  random: () => number;
  faults: FaultPlan;
  botConfig: BotConfigInput;
  coreOptions: InferenceCoreOptions;
  statusIntervalMs: number;
  usersPerPlatform: number;
}

export interface LoadWorld {
  dir: string;
  dbPath: string;
  store: SqliteStore;
  core: InferenceCore;
  counting: CountingCore;
  recorder: RecordingBot;
  counters: PipelineCounters;
  discord: FakeDiscord;
  slack: FakeSlack;
  discordAdapter: DiscordAdapter;
  slackAdapter: SlackAdapter;
  discordUsers: FakeMember[];
  slackUsers: FakeUser[];
  logs: { warn: string[]; error: string[] };
  stop(): Promise<void>;
}

export async function startWorld(options: WorldOptions): Promise<LoadWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'pictalk-load-'));
  const dbPath = join(dir, 'pictalk.sqlite');
  const counters = newCounters();
  const voice = await realVoiceClip();
  const core = new InferenceCore(faultyPipelines(options.random, options.faults, voice, counters), {
    ...options.coreOptions,
    registry: createMetricsRegistry(),
  });
  const counting = new CountingCore(core);
  const store = new SqliteStore(dbPath);
  // Warnings are expected under injected faults (alt text falls back, a voice fails); errors are collected and shown.
  const logs = { warn: [] as string[], error: [] as string[] };
  const logger = {
    info: () => undefined,
    warn: (message: string, details?: unknown) => { logs.warn.push(`${message} ${JSON.stringify(details ?? '')}`); },
    error: (message: string, details?: unknown) => { logs.error.push(`${message} ${JSON.stringify(details ?? '')}`); },
  };
  const bot = new Bot({ store, core: counting, logger, config: options.botConfig });
  const recorder = new RecordingBot(bot);

  const discord = await FakeDiscord.start();
  const slack = await FakeSlack.start();
  const discordUsers: FakeMember[] = Array.from({ length: options.usersPerPlatform }, (_, i) => ({
    user: user(snowflake(), `discord-load-${i}`), roleIds: [], permissions: MEMBER_PERMISSIONS,
  }));
  const slackUsers: FakeUser[] = Array.from({ length: options.usersPerPlatform }, (_, i) => ({
    id: `U0LOAD${String(i).padStart(2, '0')}`, name: `slack-load-${i}`, is_admin: false, is_owner: false,
  }));
  // The fake Slack knows four users; the load test's users join the workspace and its channels the same way.
  const slackDirectory = slack.users as unknown as Record<string, FakeUser>;
  for (const member of slackUsers) {
    slackDirectory[member.name] = member;
    slack.channels.general.members.add(member.id);
    slack.channels.art.members.add(member.id);
  }

  const discordAdapter = await startDiscordAdapter({
    token: discord.token, applicationId: discord.applicationId, apiUrl: discord.apiUrl, bot: recorder, guildId: discord.guildId,
    logger, statusIntervalMs: options.statusIntervalMs,
  });
  const slackAdapter = await startSlackAdapter({
    botToken: slack.botToken, appToken: slack.appToken, apiUrl: slack.apiUrl, bot: recorder, logger, statusIntervalMs: options.statusIntervalMs,
  });
  await slack.waitFor(() => slack.socket.open().length > 0, 10_000, 'the Socket Mode connection');

  return {
    dir, dbPath, store, core, counting, recorder, counters, discord, slack, discordAdapter, slackAdapter, discordUsers, slackUsers, logs,
    async stop() {
      await slackAdapter.stop(1000).catch(() => undefined);
      await discordAdapter.stop().catch(() => undefined);
      await core.close();
      await slack.stop();
      await discord.stop();
      try { (await store.close()); } catch { /* closed by the test already */ }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
