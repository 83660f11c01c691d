/**
 * A small stand-in for bot/ behind the Slack adapter's `SlackBotPort`: imagine jobs that report queue position and
 * steps on a timer, a caption command that downloads through `Attachment.fetch(maxBytes)` and checks the bytes,
 * moderator-only quota and auto-caption commands (moderator = `actor.platformModerator`), idempotency by request id,
 * and `isAutoCaptionChannel` backed by what `autocaption.set` stored.
 */
import type { SlackBotPort } from '../../../adapters/slack/slack.adapter.js';
import type { BotRequest, Conversation, FinishReceipt, JobStatus, Reply } from '../../../bot/types.js';
import { PictalkError, isPictalkError } from '../../../common/errors.js';
import { solidPng } from '../../fakes/slack/fake-slack.payloads.js';

/** Bytes that start like an Ogg page, enough for the fake to store and the test to compare. */
export const FAKE_OGG = Buffer.concat([Buffer.from('OggS'), Buffer.alloc(24), Buffer.from('OpusHead'), Buffer.alloc(64, 7)]);
export const CAPTION_BYTE_LIMIT = 64 * 1024;
export const IMAGE = solidPng(8, [220, 30, 30]);

export interface FakeBotOptions {
  steps?: number;
  stepMs?: number;
  /** Pause between the last progress report and the reply, so the last state's edit can land. */
  holdMs?: number;
  /** A live preview PNG on every running status from step 2 on (a new Buffer each step, as the pipeline makes them). */
  preview?: Buffer;
  /** Vary buttons on the reply, one per image, for this many images (the real bot puts one under every image). */
  vary?: number;
}

export class FakeBot implements SlackBotPort {
  /** Every request handed in, duplicates included. */
  readonly requests: BotRequest[] = [];
  /** Requests that started work (first delivery of an id). */
  readonly started: BotRequest[] = [];
  readonly statuses: Array<{ requestId: string; status: JobStatus }> = [];
  readonly replies = new Map<string, Reply>();
  readonly receipts = new Map<string, FinishReceipt | void>();
  readonly done = new Set<string>();
  readonly autoCaption = new Set<string>();
  private readonly jobRequests = new Map<string, BotRequest>();

  constructor(public options: FakeBotOptions = {}) {}

  isAutoCaptionChannel(spaceId: string, channelId: string): boolean {
    return this.autoCaption.has(`${spaceId}/${channelId}`);
  }

  async handle(request: BotRequest, conversation: Conversation): Promise<{ duplicate: boolean }> {
    this.requests.push(request);
    if (this.started.some((r) => r.id === request.id)) return { duplicate: true };
    this.started.push(request);
    let reply: Reply;
    try {
      reply = await this.run(request, conversation);
    } catch (error) {
      if (!isPictalkError(error)) throw error;
      reply = { text: error.message, ephemeral: true, error: { code: error.code, retryable: error.retryable } };
    }
    this.replies.set(request.id, reply);
    this.receipts.set(request.id, await conversation.finish(reply));
    this.done.add(request.id);
    return { duplicate: false };
  }

  private requireModerator(request: BotRequest): void {
    if (!request.actor.platformModerator) throw new PictalkError('permission.denied', 'Only workspace admins can change pictalk quotas.');
  }

  private async run(request: BotRequest, conversation: Conversation): Promise<Reply> {
    const { command } = request;
    switch (command.name) {
      case 'imagine':
        return this.imagine(request, conversation, command.options.prompt);
      case 'reroll':
        return this.imagine(request, conversation, `reroll of ${command.jobId}`);
      case 'vary':
        return this.imagine(request, conversation, `vary of ${command.jobId} image ${command.index ?? 1}`);
      case 'delete': {
        const owner = this.jobRequests.get(command.jobId);
        if (!owner) throw new PictalkError('input.invalid', `There is no job ${command.jobId}.`);
        if (owner.actor.userId !== request.actor.userId && !request.actor.platformModerator) throw new PictalkError('permission.denied', 'Only the requester or an admin can delete this.');
        const receipt = this.receipts.get(owner.id);
        return { text: 'Deleted.', ephemeral: true, action: { kind: 'delete', jobId: command.jobId, messageIds: receipt ? receipt.messageIds : [] } };
      }
      case 'caption': {
        conversation.status({ state: 'running', jobId: `cap-${request.id}`, stage: 'download', step: 0, total: 1 });
        const bytes = await command.attachment.fetch(CAPTION_BYTE_LIMIT);
        if (bytes.length < 8 || bytes.readUInt32BE(0) !== 0x89504e47) throw new PictalkError('input.unsupported', `Expected a PNG, JPEG, WebP or GIF image, got bytes of another kind (\`${command.attachment.name}\`)`);
        const reply: Reply = { text: 'A red square.', jobId: `cap-${request.id}`, buttons: [{ action: 'delete', jobId: `cap-${request.id}`, label: 'Delete', style: 'danger' }] };
        this.jobRequests.set(`cap-${request.id}`, request);
        if (command.voice ?? true) reply.voice = { name: 'caption.ogg', ogg: FAKE_OGG, durationSecs: 1.25, waveform: new Uint8Array(256) };
        return reply;
      }
      case 'quota.set':
      case 'quota.show':
      case 'quota.reset':
        this.requireModerator(request);
        return { text: `Done: ${command.name}.`, ephemeral: true };
      case 'autocaption.set':
        this.requireModerator(request);
        if (command.enabled) this.autoCaption.add(`${request.actor.spaceId}/${command.channelId}`);
        else this.autoCaption.delete(`${request.actor.spaceId}/${command.channelId}`);
        return { text: `Auto-caption is now ${command.enabled ? 'on' : 'off'} here.`, ephemeral: true };
      case 'status':
        return { text: `Queue: 0 waiting. You used ${this.started.filter((r) => r.actor.userId === request.actor.userId).length}.`, ephemeral: true };
      default:
        throw new PictalkError('input.invalid', `The fake bot does not handle ${command.name}.`);
    }
  }

  private async imagine(request: BotRequest, conversation: Conversation, prompt: string): Promise<Reply> {
    const jobId = `job-${this.started.indexOf(request)}`;
    this.jobRequests.set(jobId, request);
    const steps = this.options.steps ?? 5;
    const stepMs = this.options.stepMs ?? 50;
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const say = (status: JobStatus) => {
      this.statuses.push({ requestId: request.id, status });
      conversation.status(status);
    };
    say({ state: 'queued', jobId, position: 2 });
    await sleep(stepMs);
    say({ state: 'queued', jobId, position: 1 });
    for (let step = 1; step <= steps; step++) {
      await sleep(stepMs);
      const preview = this.options.preview && step >= 2 ? { preview: { png: Buffer.from(this.options.preview), width: 8, height: 8 } } : {};
      say({ state: 'running', jobId, stage: 'denoise', step, total: steps, ...preview });
    }
    if (this.options.holdMs) await sleep(this.options.holdMs);
    return {
      text: `**${prompt}**\nseed 42 · ${steps} steps · guidance 7.5 · pndm`,
      images: [{ name: 'pictalk-42.png', png: IMAGE, altText: `An image generated from the prompt: ${prompt}`, seed: 42 }],
      buttons: [
        { action: 'reroll', jobId: jobId, label: 'Re-roll', style: 'primary' },
        ...Array.from({ length: this.options.vary ?? 0 }, (_, i) => ({ action: 'vary' as const, jobId, index: i + 1, label: `Vary ${i + 1}`, style: 'secondary' as const })),
        { action: 'delete', jobId: jobId, label: 'Delete', style: 'danger' },
      ],
      jobId,
    };
  }
}
