/**
 * The `pictalk` command line: an inbound adapter, beside the chat platforms, of the inference core (imagine, caption,
 * speak) and of the bot (`start`). Its settings come from adapters/config.ts like every other setting.
 *
 *   pictalk imagine "<prompt>" --out FILE.png [--seed N] [--steps N] [--guidance X] [--width W --height H]
 *                   [--scheduler NAME] [--negative "..."] [--count N] [--candidates N] [--latents FILE.npy] [--upscale N]
 *                   [--image FILE [--strength S]] [--model DIR] [--captioner DIR]
 *   pictalk caption FILE... [--beam N] [--json] [--guess] [--captioner DIR]
 *   pictalk speak "<text>" --out FILE.ogg [--voice NAME]
 *   pictalk start [--role all|front|worker]   (the bot: adapters/main.ts, the composition root)
 *
 * Exit codes: 0 done, 1 a model or runtime failure (the message names the path), 2 a usage error
 * (unknown option, bad value, unreadable input file).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isPictalkError, type ErrorCode } from '../common/errors.js';
import { builtinModelDir } from '../common/package-root.js';
import type { BackendOptions } from '../inference/onnx.backend.js';
import { SCHEDULER_NAMES, type CaptionResult, type ImagineRequest, type SchedulerName } from '../inference/types.js';
import { loadModelSettings, type ModelSettings } from './config.js';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Starts the bot and resolves with an exit code when it stops; adapters/main.ts's `start` unless given. */
  start?: (argv: string[]) => Promise<number>;
}

/** A usage error: printed with the usage line, exit code 2. */
class UsageError extends Error {}

const USAGE = `Usage:
  pictalk imagine "<prompt>" --out FILE.png [--seed N] [--steps N] [--guidance X] [--width W] [--height H]
                  [--scheduler ${SCHEDULER_NAMES.join('|')}] [--negative "..."] [--count N] [--candidates N]
                  [--latents FILE.npy] [--upscale N] [--image FILE [--strength S]] [--model DIR] [--captioner DIR]
  pictalk caption FILE... [--beam N] [--json] [--guess] [--captioner DIR]
  pictalk speak "<text>" --out FILE.ogg [--voice NAME]
  pictalk start [--role all|front|worker]

Models: --model DIR or PICTALK_T2I_MODEL (default models/builtin/text-to-image),
        --captioner DIR or PICTALK_CAPTIONER (default models/builtin/captioner).
Captions: a picture unlike the ones the captioner knows is declined; --guess prints its guess anyway.
Execution provider: PICTALK_EXECUTION_PROVIDER=cpu|cuda (default cpu).`;

function modelDir(option: string | undefined, setting: string | undefined, builtin: 'text-to-image' | 'captioner', cwd: string): string {
  if (option) return resolve(cwd, option);
  if (setting) return resolve(cwd, setting);
  return builtinModelDir(builtin);
}

const backendOf = (settings: ModelSettings): BackendOptions => ({ executionProvider: settings.executionProvider, ...(settings.threads ? { intraOpThreads: settings.threads } : {}) });

function parse<T extends ParseArgsConfig['options']>(args: string[], options: T, command: string): { values: Record<string, unknown>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: values as Record<string, unknown>, positionals };
  } catch (error) {
    // node's messages name the option: "Unknown option '--sed'", "Option '--seed <value>' argument missing"
    throw new UsageError(`pictalk ${command}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function integer(values: Record<string, unknown>, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !/^-?\d+$/.test(raw.trim())) {
    throw new UsageError(`Expected --${name} to be an integer, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

function decimal(values: Record<string, unknown>, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN;
  if (!Number.isFinite(value)) throw new UsageError(`Expected --${name} to be a number, got ${JSON.stringify(raw)}`);
  return value;
}

const str = (values: Record<string, unknown>, name: string): string | undefined => values[name] as string | undefined;

/** FILE.png with count 3 -> FILE-1.png, FILE-2.png, FILE-3.png. */
export function numberedPath(path: string, index: number, count: number): string {
  if (count <= 1) return path;
  const ext = extname(path);
  return `${path.slice(0, path.length - ext.length)}-${index + 1}${ext}`;
}

function readInput(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new UsageError(`Expected ${what} at ${path}: ${reason}`);
  }
}

async function imagine(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    out: { type: 'string', short: 'o' },
    seed: { type: 'string' }, steps: { type: 'string' }, guidance: { type: 'string' },
    width: { type: 'string' }, height: { type: 'string' }, scheduler: { type: 'string' },
    negative: { type: 'string' }, count: { type: 'string' }, latents: { type: 'string' },
    upscale: { type: 'string' }, model: { type: 'string' }, candidates: { type: 'string' }, captioner: { type: 'string' },
    image: { type: 'string' }, strength: { type: 'string' },
  }, 'imagine');
  if (positionals.length !== 1) {
    throw new UsageError(`pictalk imagine: expected one prompt (quote it), got ${positionals.length} arguments`);
  }
  const out = str(values, 'out');
  if (!out) throw new UsageError('pictalk imagine: expected --out FILE.png');
  const scheduler = str(values, 'scheduler');
  if (scheduler !== undefined && !(SCHEDULER_NAMES as readonly string[]).includes(scheduler)) {
    throw new UsageError(`Expected --scheduler to be one of ${SCHEDULER_NAMES.join(', ')}, got ${JSON.stringify(scheduler)}`);
  }
  const request: ImagineRequest = {
    prompt: positionals[0]!,
    negativePrompt: str(values, 'negative'),
    seed: integer(values, 'seed'),
    steps: integer(values, 'steps'),
    guidance: decimal(values, 'guidance'),
    width: integer(values, 'width'),
    height: integer(values, 'height'),
    scheduler: scheduler as SchedulerName | undefined,
    count: integer(values, 'count'),
    candidates: integer(values, 'candidates'),
    upscale: integer(values, 'upscale'),
    strength: decimal(values, 'strength'),
  };
  // image-to-image: the picture to start from (the pipeline decodes it and checks the strength, 0 < S <= 1)
  const imagePath = str(values, 'image');
  if (imagePath) request.image = readInput(resolve(io.cwd, imagePath), 'a picture to start from');
  const latentsPath = str(values, 'latents');
  if (latentsPath) {
    const { readNpy } = await import('../inference/npy.js');
    const path = resolve(io.cwd, latentsPath);
    const npy = readNpy(readInput(path, 'a .npy file of latents'), path);
    request.latents = npy.data instanceof Float32Array ? npy.data : Float32Array.from(npy.data as ArrayLike<number>);
  }
  const settings = loadModelSettings(io.env);
  const dir = modelDir(str(values, 'model'), settings.t2iModel, 'text-to-image', io.cwd);
  const { loadTextToImage } = await import('../inference/text-to-image.pipeline.js');
  const { readTextToImageFolder } = await import('../inference/model-folder.js');
  // as the bot does: the captioner ranks candidates when the folder or --candidates asks for more than one
  const captionerDir = modelDir(str(values, 'captioner'), settings.captioner, 'captioner', io.cwd);
  const ranks = (request.candidates ?? readTextToImageFolder(dir).defaults.candidates) > 1 && existsSync(join(captionerDir, 'config.json'));
  const captioner = ranks ? await (await import('../inference/image-to-text.pipeline.js')).loadImageToText(captionerDir, { backend: backendOf(settings), lanes: settings.captionLanes }) : undefined;
  const pipeline = await loadTextToImage(dir, { backend: backendOf(settings), ...(captioner ? { scorer: captioner.scoreText } : {}) }).catch(async (error: unknown) => {
    await captioner?.dispose();
    throw error;
  });
  try {
    const result = await pipeline.imagine(request);
    const { settings } = result;
    result.images.forEach((image, i) => {
      const path = resolve(io.cwd, numberedPath(out, i, result.images.length));
      // an image the model folder's safety checker flagged is never written
      if (image.nsfw) {
        io.stdout(`${path}\twithheld by the safety checker (not written)\tseed ${image.seed}\n`);
        return;
      }
      writeFileSync(path, image.png);
      io.stdout(`${path}\t${image.width}x${image.height}\tseed ${image.seed}\n`);
    });
    io.stderr(`${settings.steps} steps${settings.strength !== undefined && settings.strength < 1 ? ` (image-to-image at strength ${settings.strength}: the last ${Math.floor(settings.steps * settings.strength)} run)` : ''}, ${settings.scheduler}, guidance ${settings.guidance}, `
      + `${settings.candidates > 1 ? `best of ${settings.candidates} by the captioner, ` : ''}model ${result.model.name} `
      + `(${result.model.hash.slice(0, 12)}), ${Math.round(result.timingsMs.total ?? 0)} ms`
      + `${pipeline.folder.safetyChecker ? `, safety checker: ${result.images.filter((image) => image.nsfw).length} of ${result.images.length} withheld` : ''}\n`);
  } finally {
    await Promise.all([pipeline.dispose(), captioner?.dispose()]);
  }
  return 0;
}

/** A declined picture's caption column: that and why, and the guess only when `--guess` asks for it. */
function declinedLine(result: CaptionResult, guess: boolean): string {
  const why = `declined: unlike the pictures this captioner knows (domain score ${result.domainScore?.toFixed(2) ?? '-'}, over 1 is out of domain)`;
  return guess ? `${why}; best guess: ${result.caption}` : `${why}; --guess shows its guess`;
}

async function caption(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    beam: { type: 'string' }, json: { type: 'boolean' }, guess: { type: 'boolean' }, captioner: { type: 'string' },
  }, 'caption');
  if (positionals.length === 0) throw new UsageError('pictalk caption: expected one or more image files');
  const beam = integer(values, 'beam');
  const files = positionals.map((file) => resolve(io.cwd, file));
  const images = files.map((file) => readInput(file, 'an image file'));
  const settings = loadModelSettings(io.env);
  const dir = modelDir(str(values, 'captioner'), settings.captioner, 'captioner', io.cwd);
  const { loadImageToText } = await import('../inference/image-to-text.pipeline.js');
  const pipeline = await loadImageToText(dir, { backend: backendOf(settings), lanes: settings.captionLanes });
  try {
    const results: CaptionResult[] = [];
    for (let start = 0; start < images.length; start += 16) {
      const chunk = await pipeline.captionBatch(images.slice(start, start + 16).map((image) => ({ image, beam })));
      for (const [i, result] of chunk.entries()) {
        // a bad image or option comes back in its own slot: name the file
        if (isPictalkError(result)) throw Object.assign(result, { message: `${files[start + i]}: ${result.message}` });
        results.push(result);
      }
    }
    if (values.json) {
      // in_domain false: the captioner cannot describe the picture reliably, and `caption` is only its guess
      io.stdout(`${JSON.stringify(results.map((r, i) => ({
        file: files[i], caption: r.caption, tokens: r.tokens, score: r.score, in_domain: r.inDomain !== false, domain_score: r.domainScore ?? null,
      })), null, 2)}\n`);
    } else {
      results.forEach((r, i) => io.stdout(`${files[i]}\t${r.inDomain === false ? declinedLine(r, values.guess === true) : r.caption}\t${r.score.toFixed(4)}\n`));
    }
  } finally {
    await pipeline.dispose();
  }
  return 0;
}

async function speakCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, { out: { type: 'string', short: 'o' }, voice: { type: 'string' } }, 'speak');
  if (positionals.length !== 1) throw new UsageError(`pictalk speak: expected one text (quote it), got ${positionals.length} arguments`);
  const out = str(values, 'out');
  if (!out) throw new UsageError('pictalk speak: expected --out FILE.ogg');
  const { speak } = await import('../inference/text-to-speech.pipeline.js');
  const result = await speak({ text: positionals[0]!, voice: str(values, 'voice') });
  const path = resolve(io.cwd, out);
  writeFileSync(path, result.ogg);
  io.stdout(`${path}\t${result.durationSecs.toFixed(2)} s\n`);
  return 0;
}

const USAGE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['input.invalid', 'input.too_large', 'input.unsupported', 'config.invalid']);

/** Run one command line (argv without `node` and the script) and return the exit code. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'imagine': return await imagine(rest, io);
      case 'caption': return await caption(rest, io);
      case 'speak': return await speakCommand(rest, io);
      case 'start':
        return await (io.start ?? (await import('./main.js')).start)(rest);
      case 'help': case '--help': case '-h':
        io.stdout(`${USAGE}\n`);
        return 0;
      case undefined:
        throw new UsageError('pictalk: expected a command');
      default:
        throw new UsageError(`pictalk: unknown command ${JSON.stringify(command)}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`${error.message}\n\n${USAGE}\n`);
      return 2;
    }
    if (isPictalkError(error)) {
      io.stderr(`pictalk ${command}: ${error.message} [${error.code}]\n`);
      return USAGE_CODES.has(error.code) ? 2 : 1;
    }
    io.stderr(`pictalk ${command}: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    return 1;
  }
}

/** The process entry: bin/pictalk.js calls this. */
export async function run(argv = process.argv.slice(2)): Promise<never> {
  const code = await main(argv, {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    cwd: process.cwd(),
  });
  process.exit(code);
}

// Run directly (`tsx adapters/cli.ts ...` or `node dist/adapters/cli.js ...`).
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  void run();
}
