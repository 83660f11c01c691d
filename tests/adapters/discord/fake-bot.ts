/**
 * A small stand-in for bot/ behind the adapter's `BotPort`: jobs that report queue position and steps on a timer,
 * cancellation, a requester-or-moderator delete rule, a moderator check from `actor`, and a caption command that
 * downloads through `Attachment.fetch(maxBytes)` and checks the bytes, as bot/ does.
 */
import type { BotPort } from '../../../adapters/discord/discord.adapter.js';
import type { BotRequest, Conversation, Reply } from '../../../bot/types.js';
import { PictalkError, isPictalkError } from '../../../common/errors.js';
import type { FakeDiscord, FakeInteraction } from '../../fakes/discord/fake-discord.js';

import { solidPng } from '../../helpers/solid-png.js';

export { solidPng };

/** Bytes that start like an Ogg page, enough for the fake to store and the test to compare. */
export const FAKE_OGG = Buffer.concat([Buffer.from('OggS'), Buffer.alloc(24), Buffer.from('OpusHead'), Buffer.alloc(64, 7)]);
export const CAPTION_BYTE_LIMIT = 64 * 1024;

/** Waits until `bot` has the interaction's request and its `finish` has resolved. */
export async function waitSettled(fake: FakeDiscord, bot: FakeBot, interaction: FakeInteraction): Promise<void> {
  const request = await fake.waitFor(() => bot.requests.find((r) => r.id === interaction.id), 10_000, `bot.handle for ${interaction.id}`);
  await fake.waitFor(() => bot.done.has(request.id), 15_000, `the reply to ${interaction.id}`);
}

interface Job {
  id: string;
  requester: string;
  conversation: Conversation;
  cancel: () => void;
}

export interface FakeBotOptions {
  steps?: number;
  stepMs?: number;
  moderatorRoleIds?: string[];
  /** Pause between the last progress report and the reply, so the last state's edit can land. */
  holdMs?: number;
  /** A live preview PNG on every running status from step 2 on (a new Buffer each step, as the pipeline makes them). */
  preview?: Buffer;
  /** The job's result was settled and answered by another process of a cluster: the reply is silent. */
  answeredElsewhere?: boolean;
}

export class FakeBot implements BotPort {
  readonly requests: BotRequest[] = [];
  readonly jobs = new Map<string, Job>();
  readonly statuses: Array<{ jobId: string; text: string }> = [];
  /** Job ids in the order their jobs ended. */
  readonly finished: string[] = [];
  /** What each job's `finish` reported (its public message ids), as bot/ stores it for `delete`. */
  readonly messageIds = new Map<string, string[]>();
  /** Request ids whose `finish` has resolved. */
  readonly done = new Set<string>();
  private counter = 0;

  /** Mutable between tests: the next jobs read it. */
  constructor(public options: FakeBotOptions = {}) {}

  async handle(request: BotRequest, conversation: Conversation): Promise<void> {
    this.requests.push(request);
    let reply: Reply;
    try {
      reply = await this.run(request, conversation);
    } catch (error) {
      if (!isPictalkError(error)) throw error;
      reply = { text: error.message, ephemeral: true, error: { code: error.code, retryable: error.retryable } };
    }
    const receipt = await conversation.finish(reply);
    if (reply.jobId && receipt) this.messageIds.set(reply.jobId, receipt.messageIds);
    this.done.add(request.id);
  }

  private isModerator(request: BotRequest): boolean {
    return request.actor.platformModerator || request.actor.roleIds.some((id) => this.options.moderatorRoleIds?.includes(id));
  }

  private async run(request: BotRequest, conversation: Conversation): Promise<Reply> {
    const { command } = request;
    switch (command.name) {
      case 'imagine':
      case 'reroll':
        return this.imagine(request, conversation, command.name === 'imagine' ? command.options.prompt : `reroll of ${command.jobId}`);
      case 'vary':
        return this.imagine(request, conversation, `vary of ${command.jobId} image ${command.index ?? 1}`);
      case 'cancel': {
        const job = this.jobs.get(command.jobId);
        if (!job) throw new PictalkError('input.invalid', `There is no running job ${command.jobId}.`);
        if (job.requester !== request.actor.userId && !this.isModerator(request)) throw new PictalkError('permission.denied', 'Only the requester or a moderator can cancel this job.');
        job.cancel();
        return { text: 'Cancelled.', ephemeral: true };
      }
      case 'delete': {
        const requester = this.requests.find((r) => `job-${this.requests.indexOf(r)}` === command.jobId)?.actor.userId;
        if (requester !== request.actor.userId && !this.isModerator(request)) throw new PictalkError('permission.denied', 'Only the requester or a moderator can delete this image.');
        return { text: 'Deleted.', ephemeral: true, action: { kind: 'delete', jobId: command.jobId, messageIds: this.messageIds.get(command.jobId) ?? [] } };
      }
      case 'caption': {
        const bytes = await command.attachment.fetch(CAPTION_BYTE_LIMIT);
        if (bytes.readUInt32BE(0) !== 0x89504e47) throw new PictalkError('input.unsupported', `Expected a PNG, JPEG, WebP or GIF image, got bytes of another kind (\`${command.attachment.name}\`)`);
        if (!bytes.subarray(-12).includes(Buffer.from('IEND'))) throw new PictalkError('input.invalid', `The image \`${command.attachment.name}\` is damaged and cannot be read.`);
        const reply: Reply = { text: 'A red square.' };
        if (command.voice ?? true) reply.voice = { name: 'caption.ogg', ogg: FAKE_OGG, durationSecs: 1.25, waveform: new Uint8Array(256).map((_, i) => i) };
        return reply;
      }
      case 'quota.set':
      case 'quota.show':
      case 'quota.reset':
      case 'blocklist.add':
      case 'blocklist.remove':
      case 'blocklist.list':
        if (!this.isModerator(request)) throw new PictalkError('permission.denied', 'This command needs the Manage Server permission or a pictalk moderator role.');
        return { text: `Done: ${command.name}.`, ephemeral: true };
      case 'status':
        return ({ text: `Queue: ${this.jobs.size} running. You used ${this.requests.filter((r) => r.actor.userId === request.actor.userId).length}.`, ephemeral: true });
      default:
        throw new PictalkError('input.invalid', `The fake bot does not handle ${command.name}.`);
    }
  }

  private async imagine(request: BotRequest, conversation: Conversation, prompt: string): Promise<Reply> {
    const jobId = `job-${this.requests.indexOf(request)}`;
    const steps = this.options.steps ?? 10;
    const stepMs = this.options.stepMs ?? 100;
    let cancelled = false;
    let wake: () => void = () => {};
    this.jobs.set(jobId, { id: jobId, requester: request.actor.userId, conversation, cancel: () => { cancelled = true; wake(); } });
    const sleep = (ms: number) => new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, ms); });
    const say = (status: Parameters<Conversation['status']>[0]) => {
      this.statuses.push({ jobId, text: JSON.stringify(status) });
      conversation.status(status);
    };
    say({ state: 'queued', jobId, position: 2 });
    await sleep(stepMs);
    say({ state: 'queued', jobId, position: 1 });
    for (let step = 1; step <= steps && !cancelled; step++) {
      await sleep(stepMs);
      const preview = this.options.preview && step >= 2 ? { preview: { png: Buffer.from(this.options.preview), width: 8, height: 8 } } : {};
      if (!cancelled) say({ state: 'running', jobId, stage: 'denoise', step, total: steps, ...preview });
    }
    this.jobs.delete(jobId);
    this.finished.push(jobId);
    if (cancelled) return { text: 'Your job was cancelled.', ephemeral: true, error: { code: 'job.cancelled', retryable: false }, jobId };
    if (this.options.holdMs) await new Promise((resolve) => setTimeout(resolve, this.options.holdMs));
    if (this.options.answeredElsewhere) return { text: '', silent: true, jobId };
    return {
      text: `**${prompt}**\nseed 42 · 20 steps · guidance 7.5 · pndm`,
      images: [{ name: 'pictalk-42.png', png: solidPng(8, [220, 30, 30]), altText: `An image generated from the prompt: ${prompt}`, seed: 42 }],
      buttons: [
        { action: 'reroll', jobId: jobId, label: 'Reroll', style: 'primary' },
        { action: 'delete', jobId: jobId, label: 'Delete', style: 'danger' },
      ],
      jobId,
    };
  }
}
