/**
 * bot/'s own words: what an adapter hands in (a platform-neutral request) and what it gets back (progress, a reply).
 * Adapters translate platform events into these and replies out of them; bot/ never sees a platform object.
 */
import type { ErrorCode } from '../common/errors.js';
import type { PreviewImage, SchedulerName } from '../inference/types.js';

export type Platform = 'discord' | 'slack' | 'local';

/** Who sent a command. The adapter fills `platformModerator` from the platform (Manage Server, workspace admin). */
export interface Actor {
  platform: Platform;
  userId: string;
  spaceId: string;            // Discord guild, Slack workspace (team), `local`
  roleIds: string[];          // Discord role ids; empty elsewhere
  platformModerator: boolean;
  displayName?: string;
}

/** An image the user shared. The adapter knows how to fetch it; bot/ enforces the byte limit it passes. */
export interface Attachment {
  name: string;
  contentType?: string;       // as the platform reports it; never trusted, the bytes are checked
  size: number;               // bytes, as the platform reports it
  url?: string;
  fetch(maxBytes: number): Promise<Buffer>;
}

export interface ImagineOptions {
  prompt: string;
  negative?: string;
  seed?: number;
  steps?: number;
  guidance?: number;
  count?: number;
  scheduler?: SchedulerName;
  /** Image-to-image: the picture to start from (the text-to-image model folder needs a `vae_encoder/`). */
  image?: Attachment;
  /** With `image`: 0 < S <= 1, how far from the picture to go; default: the user's or server's setting, else 0.6. */
  strength?: number;
}

export type QuotaTarget = { kind: 'user'; id: string } | { kind: 'role'; id: string } | { kind: 'default' };

export type BotCommand =
  | { name: 'imagine'; options: ImagineOptions }
  | { name: 'reroll'; jobId: string }                                 // button: same settings, new seed
  // button under each image: image-to-image from image `index` (1-based, default 1) of the job, same prompt, new seed
  | { name: 'vary'; jobId: string; index?: number }
  | { name: 'caption'; attachment: Attachment; voice?: boolean; auto?: boolean }  // voice defaults to true
  // `auto`: Slack's auto-captioning (nobody asked): a picture the captioner cannot describe reliably gets no reply
  | { name: 'cancel'; jobId: string }
  | { name: 'delete'; jobId: string }                                  // bot/ checks requester or moderator
  | { name: 'status' }                                                 // queue status and your own usage
  | { name: 'quota.set'; target: QuotaTarget; kind: QuotaKind; limit: number }
  | { name: 'quota.show'; target?: QuotaTarget }
  | { name: 'quota.reset'; target: { kind: 'user'; id: string } }
  | { name: 'blocklist.add'; pattern: string }
  | { name: 'blocklist.remove'; pattern: string }
  | { name: 'blocklist.list' }
  | { name: 'autocaption.set'; channelId: string; enabled: boolean }   // Slack: caption images shared in a channel
  // personal defaults (scope `user`) and, for moderators, the space's defaults and limits (scope `server`):
  // bot/user.settings.ts. Values come typed (Discord) or as typed text (Slack, the terminal); bot/ checks both.
  | { name: 'settings.show'; scope: SettingsScope }
  | { name: 'settings.set'; scope: SettingsScope; values: Record<string, string | number | boolean> }
  | { name: 'settings.reset'; scope: SettingsScope; key?: string }
  // moderators: what flagged images become, for the space or one channel (bot/commands/safety.command.ts)
  | { name: 'safety.show' }
  | { name: 'safety.set'; mode: SafetyMode; channelId?: string };

export type SettingsScope = 'user' | 'server';

/**
 * What happens to an image the model folder's safety checker flags: `withhold` (never posted, its quota refunded) or
 * `spoiler` (sent behind a spoiler, but only in an age-restricted channel; withheld everywhere else).
 */
export type SafetyMode = 'withhold' | 'spoiler';
export const SAFETY_MODES: readonly SafetyMode[] = ['withhold', 'spoiler'];

export type QuotaKind = 'imagine' | 'caption';

export interface BotRequest {
  /** Idempotency key: the interaction id, the Slack event id or trigger id. The same id never starts a second job. */
  id: string;
  actor: Actor;
  channelId: string;
  /** The channel is age-restricted (Discord's `channel.nsfw`): only there may flagged images go out as spoilers. */
  ageRestricted?: boolean;
  command: BotCommand;
  receivedAt: number;         // ms since epoch, when the adapter got the event
}

/** What a deferred reply shows while a job waits and runs. Adapters throttle their edits. */
export type JobStatus =
  | { state: 'queued'; jobId: string; position: number }   // 1 = next in line
  | { state: 'running'; jobId: string; stage: string; step: number; total: number; preview?: PreviewImage };

export interface ReplyImage {
  name: string; png: Buffer; altText: string; seed: number;
  /** Flagged by the safety checker, sent in spoiler mode to an age-restricted channel: the adapter hides it (Discord: `SPOILER_`). */
  spoiler?: boolean;
}
export interface ReplyVoice { name: string; ogg: Buffer; durationSecs: number; waveform: Uint8Array }
/** What a button does; pressing it sends the BotCommand of the same name for its job. */
export type ButtonAction = 'reroll' | 'cancel' | 'delete' | 'vary';
export const BUTTON_ACTIONS: readonly ButtonAction[] = ['reroll', 'cancel', 'delete', 'vary'];
/**
 * A button, platform-neutral: each adapter encodes `{ action, jobId }` its own way (a Discord custom id, a Slack
 * action id and value) and decodes a press back into `{ name: action, jobId }`.
 */
export interface ReplyButton {
  action: ButtonAction; jobId: string; label: string; style: 'primary' | 'secondary' | 'danger';
  /** The image (1-based) a per-image button acts on (Vary); adapters carry it with `buttonValue` (bot/buttons.ts). */
  index?: number;
}

/** A finished reply, platform-neutral. `error` replies are friendly text plus the stable code. */
export interface Reply {
  text: string;
  ephemeral?: boolean;
  images?: ReplyImage[];
  voice?: ReplyVoice;
  buttons?: ReplyButton[];
  jobId?: string;
  /**
   * Nothing to say: the adapter removes its status message and sends nothing. Only for requests nobody made
   * (Slack's auto-captioning of a picture the captioner cannot describe reliably), and for a job that another process
   * of a cluster settled and answers (two fronts followed it: see `answeredElsewhere` in bot/commands/job-lifecycle.ts).
   */
  silent?: boolean;
  /**
   * With `silent`: another front settled this job and answers it, possibly in the same platform message (Discord's
   * original response, Slack's status message kept in the route), so the adapter leaves that message alone.
   */
  answeredElsewhere?: boolean;
  error?: { code: ErrorCode; retryable: boolean };
  /**
   * Something the adapter must do on the platform besides sending this reply. Added for `delete`: bot/ checked that
   * the actor may delete the job's messages; the adapter deletes `messageIds` (what its `finish` reported for the job).
   */
  action?: ReplyAction;
}

export type ReplyAction = { kind: 'delete'; jobId: string; messageIds: string[] };

/** What an adapter may return from `finish`: the platform ids of the messages it sent, so `delete` can find them. */
export interface FinishReceipt {
  messageIds: string[];
}

/** The adapter's side of one request: bot/ reports status and sends exactly one final reply through it. */
export interface Conversation {
  status(update: JobStatus): void;
  /** The text reply and the voice message can be separate platform messages; the adapter decides. */
  finish(reply: Reply): Promise<void | FinishReceipt>;
  /**
   * How to reach the requester again from another process (JSON: a channel, a thread, a token): bot/ keeps it in
   * the job record, and after a front restart the adapter's `reconnect` rebuilds a conversation from it.
   */
  route?(): Record<string, unknown> | undefined;
  /**
   * The route changed after the job was accepted (Slack: the status message was posted, so a front that takes the job
   * over edits that message instead of posting another): bot/ passes a listener that keeps the job record current.
   */
  watchRoute?(listener: (route: Record<string, unknown>) => void): void;
}

/** What `Bot.handle` resolves to. `duplicate`: the request id was seen before, nothing ran and `finish` was not called. */
export interface HandleOutcome {
  duplicate: boolean;
  jobId?: string;
}
