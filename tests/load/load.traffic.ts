/**
 * The traffic of the load test: a seeded plan of 10 commands for each of 10 users per platform, sent in waves, and the
 * drivers that send each planned command the way a person would on that platform (slash commands, attachments, the
 * Slack message shortcut, Cancel buttons) with the deliveries platforms repeat (Slack `retry_attempt`, a second
 * Discord dispatch of the same interaction).
 */
import type { APIMessage } from 'discord.js';
import { encodeRgbPng } from '../../inference/image.codec.js';
import type { FakeInteraction, FakeMember } from '../fakes/discord/fake-discord.js';
import { OptionType } from '../fakes/discord/fake-discord.payloads.js';
import type { Envelope } from '../fakes/slack/fake-slack.socket.js';
import { blockActionPayload, type FakeUser } from '../fakes/slack/fake-slack.payloads.js';
import type { LoadWorld } from './load.world.js';

export type Platform = 'discord' | 'slack';

export type CommandKind =
  | 'imagine'              // /imagine with a unique prompt
  | 'imagine.invalid'      // parses, but bot/ refuses it (empty prompt, steps over the limit): input.invalid
  | 'imagine.unparsable'   // the adapter refuses it before bot/ (unknown scheduler, `--steps abc`, no prompt)
  | 'caption'              // Discord /caption with a hosted PNG; Slack message shortcut on a message with a PNG
  | 'caption.unsupported'  // a text or PDF file instead of an image
  | 'status'               // /pictalk
  | 'cancel';              // the Cancel button of the user's previous ([slow]) imagine

export interface PlannedCommand {
  n: number;
  platform: Platform;
  user: number;
  kind: CommandKind;
  wave: number;
  offsetMs: number;
  prompt?: string;
  count?: number;
  slow?: boolean;
  /** Delivered twice: Slack redelivers the envelope with retry_attempt 1, Discord dispatches the interaction again. */
  duplicate?: boolean;
  /** For `cancel`: the planned imagine it cancels. */
  target?: number;
  /** Variant of an invalid input, so both kinds of mistakes are sent. */
  variant?: number;
}

/** Whether the command reaches bot/ (and so has a request record) or is answered by the adapter alone. */
export function reachesBot(command: PlannedCommand): boolean {
  if (command.kind === 'imagine.unparsable') return false;
  if (command.kind === 'caption.unsupported' && command.platform === 'slack') return false; // the shortcut checks the file type
  return true;
}

type Slot = Omit<PlannedCommand, 'n' | 'platform' | 'user' | 'wave' | 'offsetMs'>;
const imagine = (extra: Partial<Slot> = {}): Slot => ({ kind: 'imagine', ...extra });
const times = (n: number, make: () => Slot): Slot[] => Array.from({ length: n }, make);

/**
 * Ten profiles, one per user index (the same on both platforms). The daily limits are 6 images and 3 captions, so
 * the heavy users and the caption user run into their quota; failures are refunded and give room back.
 */
const PROFILES: Array<() => Slot[]> = [
  () => [...times(9, () => imagine()), { kind: 'status' }],
  () => [...times(9, () => imagine()), { kind: 'status' }],
  () => [...times(7, () => imagine()), imagine({ count: 2 }), { kind: 'caption' }, { kind: 'status' }],
  () => [...times(4, () => ({ kind: 'caption' })), ...times(4, () => imagine()), { kind: 'caption.unsupported' }, { kind: 'status' }],
  () => [imagine({ duplicate: true }), ...times(3, () => imagine()), imagine({ slow: true }), ...times(2, () => ({ kind: 'caption' })), { kind: 'status' }, { kind: 'imagine.invalid', variant: 0 }],
  () => [...times(4, () => imagine()), imagine({ slow: true }), ...times(2, () => ({ kind: 'caption' })), { kind: 'status' }, { kind: 'imagine.invalid', variant: 1 }],
  () => [imagine({ duplicate: true }), ...times(3, () => imagine()), imagine({ slow: true }), ...times(2, () => ({ kind: 'caption' })), { kind: 'status' }, { kind: 'imagine.unparsable', variant: 0 }],
  () => [...times(4, () => imagine()), imagine({ slow: true }), ...times(2, () => ({ kind: 'caption' })), { kind: 'status' }, { kind: 'imagine.unparsable', variant: 1 }],
  () => [imagine({ duplicate: true }), ...times(5, () => imagine()), ...times(2, () => ({ kind: 'caption' })), { kind: 'status' }, { kind: 'imagine.invalid', variant: 0 }],
  () => [...times(6, () => imagine()), ...times(2, () => ({ kind: 'caption' })), { kind: 'status' }, { kind: 'caption.unsupported' }],
];

const COLOURS = ['red', 'blue', 'green', 'yellow', 'purple', 'orange'];
const SHAPES = ['circle', 'square', 'triangle', 'star', 'heart'];

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

export interface PlanOptions {
  users: number;
  waveMs: number;
  jitterMs: number;
}

/** Every user's commands in a seeded order (a cancel right after its slow imagine), one command per user per wave. */
export function planTraffic(random: () => number, options: PlanOptions): PlannedCommand[] {
  const plan: PlannedCommand[] = [];
  for (const platform of ['discord', 'slack'] as const) {
    for (let user = 0; user < options.users; user++) {
      const slots = shuffle(PROFILES[user % PROFILES.length]!(), random);
      const slow = slots.findIndex((slot) => slot.slow);
      if (slow >= 0) slots.splice(slow + 1, 0, { kind: 'cancel' });
      slots.forEach((slot, wave) => {
        const command: PlannedCommand = { ...slot, n: 0, platform, user, wave, offsetMs: wave * options.waveMs + Math.floor(random() * options.jitterMs) };
        if (slot.kind === 'imagine' || slot.kind === 'imagine.invalid') {
          const what = `${COLOURS[Math.floor(random() * COLOURS.length)]} ${SHAPES[Math.floor(random() * SHAPES.length)]}`;
          command.prompt = `a ${what}${slot.slow ? ' [slow]' : ''}`;
        }
        plan.push(command);
      });
    }
  }
  plan.sort((a, b) => a.offsetMs - b.offsetMs);
  plan.forEach((command, n) => {
    command.n = n;
    // The tag makes each prompt unique, so its result can be found on the platform.
    if (command.prompt) command.prompt = `${command.prompt} (cmd ${n})`;
  });
  for (const command of plan) {
    if (command.kind !== 'cancel') continue;
    const target = plan.filter((c) => c.platform === command.platform && c.user === command.user && c.slow && c.wave === command.wave - 1)[0];
    if (!target) throw new Error(`plan: cancel ${command.n} has no slow imagine before it`);
    command.target = target.n;
  }
  return plan;
}

export const tag = (n: number): string => `(cmd ${n})`;

/** What was sent for one planned command. */
export interface SentCommand {
  planned: PlannedCommand;
  sentAt: number;
  /** bot/'s request id: the Discord interaction id, or the Slack trigger_id. */
  requestId: string;
  interaction?: FakeInteraction;
  envelopes: Envelope[];
  /** Slack captions: the ts of the user's message, whose thread gets the reply. */
  threadTs?: string;
  /** Discord: the deferred reply as it looked right after the deferral (a cancel's button sits on it). */
  original?: APIMessage;
  /** For `cancel`: the job and whether the Cancel button was still on a status message when it was pressed. */
  cancel?: { jobId: string; fromStatus: boolean };
  duplicates: number;
}

/** A small real PNG of one colour: what users share for /caption. */
export function photo(n: number): Buffer {
  const size = 12;
  const rgb = Buffer.alloc(size * size * 3);
  for (let i = 0; i < size * size; i++) rgb.set([(n * 37) % 256, (n * 91) % 256, (n * 53) % 256], i * 3);
  return encodeRgbPng(rgb, size, size);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** bot/'s job id for a request id, read from the SQLite store (the job id a status message's Cancel button carries). */
async function jobIdOf(world: LoadWorld, requestId: string): Promise<string> {
  const find = world.store.db.prepare<[string], { id: string }>('SELECT id FROM jobs WHERE request_id = ?');
  return world.discord.waitFor(() => find.get(requestId)?.id, 10_000, `the job of request ${requestId}`);
}

export class TrafficDriver {
  readonly sent = new Map<number, SentCommand>();

  constructor(private readonly world: LoadWorld, private readonly random: () => number) {}

  /** A command sent earlier (a cancel's target), once its send has returned. */
  sentCommand(n: number): Promise<SentCommand> {
    return this.world.discord.waitFor(() => this.sent.get(n), 10_000, `command ${n} to be sent`);
  }

  async send(command: PlannedCommand): Promise<SentCommand> {
    const sent = command.platform === 'discord' ? await this.sendDiscord(command) : await this.sendSlack(command);
    this.sent.set(command.n, sent);
    return sent;
  }

  // ---- Discord ---------------------------------------------------------------------------------------------------

  private async sendDiscord(command: PlannedCommand): Promise<SentCommand> {
    const { discord } = this.world;
    const member: FakeMember = this.world.discordUsers[command.user]!;
    let interaction: FakeInteraction;
    const extra: Partial<SentCommand> = {};
    switch (command.kind) {
      case 'imagine': {
        const options = [
          { name: 'prompt', type: OptionType.String, value: command.prompt! },
          { name: 'seed', type: OptionType.Integer, value: command.n },
          ...(command.count ? [{ name: 'count', type: OptionType.Integer, value: command.count }] : []),
        ];
        interaction = discord.sendChatInput('imagine', options, member);
        break;
      }
      case 'imagine.invalid':
        // An empty prompt (spaces only), or more steps than pictalk allows (Discord's own range lets 80 through).
        interaction = discord.sendChatInput('imagine', command.variant === 0
          ? [{ name: 'prompt', type: OptionType.String, value: '   ' }]
          : [{ name: 'prompt', type: OptionType.String, value: command.prompt! }, { name: 'steps', type: OptionType.Integer, value: 80 }], member);
        break;
      case 'imagine.unparsable':
        interaction = discord.sendChatInput('imagine', [
          { name: 'prompt', type: OptionType.String, value: 'a cat' }, { name: 'scheduler', type: OptionType.String, value: 'bogus' },
        ], member);
        break;
      case 'caption':
      case 'caption.unsupported': {
        const file = command.kind === 'caption'
          ? discord.hostFile(`photo-${command.n}.png`, photo(command.n), 'image/png')
          : discord.hostFile(`notes-${command.n}.txt`, Buffer.from('not an image'), 'text/plain');
        interaction = discord.sendChatInput('caption', [{ name: 'image', type: OptionType.Attachment, value: file.id }], member, { attachments: { [file.id]: file } });
        break;
      }
      case 'status':
        interaction = discord.sendChatInput('pictalk', [], member);
        break;
      case 'cancel': {
        const target = await this.sentCommand(command.target!);
        const jobId = await jobIdOf(this.world, target.requestId);
        const message = await discord.waitFor(() => target.original, 10_000, `the deferred reply of command ${target.planned.n}`);
        // The button as the requester sees it: on the latest status edit, until the final edit removes it.
        const edits = discord.callsFor(target.interaction!, 'PATCH /webhooks/:app/:token/messages/@original');
        const components = edits.at(-1)?.body?.components as Array<{ components: Array<{ custom_id: string }> }> | undefined;
        const fromStatus = (components ?? []).some((row) => row.components.some((button) => button.custom_id === `cancel:${jobId}`));
        interaction = discord.sendButton(`cancel:${jobId}`, message, member);
        extra.cancel = { jobId, fromStatus };
        break;
      }
    }
    const sent: SentCommand = { planned: command, sentAt: interaction.dispatchedAt, requestId: interaction.id, interaction, envelopes: [], duplicates: 0, ...extra };
    // Keep the deferred reply as it was first shown: a later error reply deletes it, but a Cancel press needs it.
    void discord.waitFor(() => (interaction.originalId ? discord.original(interaction) ?? 'gone' : undefined), 10_000, 'the deferral')
      .then((message) => { if (message !== 'gone') sent.original = message; }, () => undefined);
    if (command.duplicate) {
      await sleep(20 + Math.floor(this.random() * 80));
      // A second dispatch of the same interaction, as after a gateway resume that replays it.
      discord.gateway.dispatch('INTERACTION_CREATE', interaction.payload);
      sent.duplicates++;
    }
    return sent;
  }

  // ---- Slack -----------------------------------------------------------------------------------------------------

  private async sendSlack(command: PlannedCommand): Promise<SentCommand> {
    const { slack } = this.world;
    const user: FakeUser = this.world.slackUsers[command.user]!;
    const channel = slack.channels.general;
    const extra: Partial<SentCommand> = {};
    const slash = (name: string, text: string): [string, Envelope] => {
      const payload = slack.slashCommand(name, text, user, channel);
      return [payload.trigger_id!, slack.socket.deliver('slash_commands', payload)];
    };
    let requestId: string;
    let envelope: Envelope;
    switch (command.kind) {
      case 'imagine':
        [requestId, envelope] = slash('/imagine', `${command.prompt!} --seed ${command.n}${command.count ? ` --count ${command.count}` : ''}`);
        break;
      case 'imagine.invalid':
        [requestId, envelope] = slash('/imagine', `${command.prompt!} --steps 80`);
        break;
      case 'imagine.unparsable':
        [requestId, envelope] = slash('/imagine', command.variant === 0 ? '' : 'a cat --steps abc');
        break;
      case 'status':
        [requestId, envelope] = slash('/pictalk', '');
        break;
      case 'caption':
      case 'caption.unsupported': {
        const file = command.kind === 'caption'
          ? slack.hostFile(`photo-${command.n}.png`, photo(command.n), { owner: user.id })
          : slack.hostFile(`report-${command.n}.pdf`, Buffer.from('%PDF-1.4 not an image'), { owner: user.id });
        const message = slack.userMessage(user, channel, 'what is in this picture?', [file]);
        const payload = slack.messageShortcut('caption_image', message, user, channel);
        requestId = String(payload.trigger_id);
        extra.threadTs = message.ts;
        envelope = slack.socket.deliver('interactive', payload);
        break;
      }
      case 'cancel': {
        const target = await this.sentCommand(command.target!);
        const jobId = await jobIdOf(this.world, target.requestId);
        // The requester presses Cancel on the job's status message; if the job already finished, on a stale copy.
        const status = slack.messages.find((m) => m.user === slack.botUserId && !m.deleted && hasButton(m.edits.at(-1)?.blocks ?? m.blocks, 'pictalk.cancel', jobId));
        const payload = status
          ? slack.buttonPress(status, 'pictalk.cancel', user)
          : blockActionPayload(slack, { action_id: 'pictalk.cancel', value: jobId }, { ts: '1.000001' }, user, channel);
        requestId = String(payload.trigger_id);
        extra.cancel = { jobId, fromStatus: Boolean(status) };
        envelope = slack.socket.deliver('interactive', payload);
        break;
      }
    }
    const sent: SentCommand = { planned: command, sentAt: envelope.sentAt, requestId, envelopes: [envelope], duplicates: 0, ...extra };
    if (command.duplicate) {
      await sleep(20 + Math.floor(this.random() * 80));
      sent.envelopes.push(slack.socket.redeliver(envelope, 1, 'timeout'));
      sent.duplicates++;
    }
    return sent;
  }
}

function hasButton(blocks: unknown[] | undefined, actionId: string, value: string): boolean {
  return (blocks ?? []).some((block) => ((block as { elements?: Array<{ action_id?: string; value?: string }> }).elements ?? [])
    .some((element) => element.action_id === actionId && element.value === value));
}
