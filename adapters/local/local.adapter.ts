/**
 * The terminal adapter: one local user, a moderator of space `local`, typing the same commands as on Discord or
 * Slack. Images and voice messages are written to `outDir` and their paths printed; progress is shown on the line
 * (rewritten in place on a TTY, one line per change otherwise). Streams in, streams out, so tests drive it.
 */
import { mkdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { Bot } from '../../bot/bot.js';
import type { Actor, BotCommand, Conversation, FinishReceipt, JobStatus, Reply } from '../../bot/types.js';
import { fileAttachment } from './local.attachment.js';
import { HELP, parseLine } from './local.parser.js';

export const LOCAL_SPACE = 'local';

export interface LocalAdapterOptions {
  bot: Pick<Bot, 'handle'>;
  input: Readable;
  output: Writable;
  outDir: string;
  userId?: string;
}

export interface LocalAdapter {
  /** Resolves when the input ended (or /quit) and every command in flight has finished. */
  done: Promise<void>;
  close(): Promise<void>;
}

function describeStatus(status: JobStatus): string {
  if (status.state === 'queued') return `[${status.jobId}] queued, position ${status.position} (/cancel ${status.jobId})`;
  return `[${status.jobId}] ${status.stage} ${status.step}/${status.total}`;
}

class TerminalConversation implements Conversation {
  private lastStatus = '';
  /** The live preview: the file it is written to (replaced by each newer one, removed with the reply). */
  private previewPath: string | undefined;
  private previewSent: Buffer | undefined;
  private previewWrites: Promise<void> = Promise.resolve();

  constructor(private readonly out: Writable, private readonly outDir: string, private readonly tty: boolean) {}

  status(update: JobStatus): void {
    let text = describeStatus(update);
    const preview = update.state === 'running' ? update.preview : undefined;
    if (preview && preview.png !== this.previewSent) {
      this.previewSent = preview.png;
      const path = join(this.outDir, `preview-${update.jobId}.png`);
      this.previewPath = path;
      this.previewWrites = this.previewWrites.then(async () => {
        await mkdir(this.outDir, { recursive: true });
        await writeFile(path, preview.png);
      }).catch(() => undefined);
    }
    if (preview && this.previewPath) text += ` · preview ${this.previewPath}`;
    if (text === this.lastStatus) return;
    this.lastStatus = text;
    // On a terminal, rewrite the current line; a pipe or a test gets one line per change.
    this.out.write(this.tty ? `\r\x1b[2K${text}` : `${text}\n`);
  }

  async finish(reply: Reply): Promise<FinishReceipt> {
    if (this.tty && this.lastStatus) this.out.write('\r\x1b[2K');
    if (this.previewPath) {
      const path = this.previewPath;
      this.previewPath = undefined;
      await this.previewWrites;
      await unlink(path).catch(() => undefined);
    }
    if (reply.silent && !reply.error) return { messageIds: [] };
    const lines: string[] = [];
    const written: string[] = [];
    if (reply.error) lines.push(`error (${reply.error.code}): ${reply.text}`);
    else lines.push(reply.text);
    if (reply.images?.length || reply.voice) await mkdir(this.outDir, { recursive: true });
    for (const image of reply.images ?? []) {
      const path = join(this.outDir, image.name);
      await writeFile(path, image.png);
      written.push(path);
      lines.push(`image: ${path} (seed ${image.seed}) — ${image.altText}`);
    }
    if (reply.voice) {
      const path = join(this.outDir, reply.voice.name);
      await writeFile(path, reply.voice.ogg);
      written.push(path);
      lines.push(`voice: ${path} (${reply.voice.durationSecs.toFixed(1)} s)`);
    }
    if (reply.buttons?.length) {
      lines.push(`next: ${reply.buttons.map((button) => `/${button.action} ${button.jobId}${button.index !== undefined ? ` ${button.index}` : ''}`).join('   ')}`);
    }
    if (reply.action?.kind === 'delete') {
      // The local "messages" of a job are the files it wrote.
      for (const path of reply.action.messageIds) {
        await unlink(path).catch(() => undefined);
        lines.push(`deleted: ${path}`);
      }
    }
    this.out.write(`${lines.join('\n')}\n`);
    return { messageIds: written };
  }
}

export function startLocalAdapter(options: LocalAdapterOptions): LocalAdapter {
  const { bot, input, output, outDir } = options;
  const tty = Boolean((output as Writable & { isTTY?: boolean }).isTTY);
  const actor: Actor = {
    platform: 'local', userId: options.userId ?? 'local', spaceId: LOCAL_SPACE, roleIds: [], platformModerator: true,
  };
  const rl = createInterface({ input, terminal: false });
  const inFlight = new Set<Promise<void>>();
  let counter = 0;

  const prompt = (): void => {
    if (tty) output.write('pictalk> ');
  };

  const send = (command: BotCommand): Promise<void> => {
    counter += 1;
    const request = { id: `local-${process.pid}-${Date.now()}-${counter}`, actor, channelId: 'terminal', command, receivedAt: Date.now() };
    return bot.handle(request, new TerminalConversation(output, outDir, tty)).then(() => undefined);
  };

  const run = async (line: string): Promise<void> => {
    const parsed = parseLine(line);
    switch (parsed.kind) {
      case 'empty': return;
      case 'help': output.write(`${HELP}\n`); return;
      case 'quit': rl.close(); return;
      case 'error': output.write(`error: ${parsed.message}\n`); return;
      case 'command': return send(parsed.command);
      case 'caption': {
        const attachment = await readFile(parsed.path);
        if (attachment) return send({ name: 'caption', attachment, voice: parsed.voice });
        return;
      }
      case 'imagine': {
        const image = await readFile(parsed.imagePath);
        if (image) return send({ name: 'imagine', options: { ...parsed.options, image } });
        return;
      }
    }
  };

  /** A file named on the line, as an attachment; undefined (and an error line) when it cannot be read. */
  const readFile = async (path: string): Promise<Awaited<ReturnType<typeof fileAttachment>> | undefined> => {
    try {
      return await fileAttachment(path);
    } catch (error) {
      output.write(`error: cannot read ${path}: ${(error as Error).message}\n`);
      return undefined;
    }
  };

  // Commands run concurrently, as on a chat platform: `/cancel` works while an `/imagine` is running.
  rl.on('line', (line) => {
    const task = run(line).catch((error: unknown) => {
      output.write(`error: ${(error as Error)?.message ?? String(error)}\n`);
    }).finally(() => {
      inFlight.delete(task);
      prompt();
    });
    inFlight.add(task);
  });

  const done = new Promise<void>((resolve) => {
    rl.once('close', () => {
      void (async () => {
        while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
        resolve();
      })();
    });
  });

  output.write('pictalk local: type /help for commands.\n');
  prompt();
  return {
    done,
    async close() {
      rl.close();
      await done;
    },
  };
}
