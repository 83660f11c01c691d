/**
 * The few errors pictalk knows, each with a stable code and a retry bit: the one error type every layer may import
 * (common/ imports nothing of the project). Adapters turn them into platform replies; anything else is an unknown
 * error for the one global handler. An error crosses a process boundary (a Redis job, a worker's reply) as its JSON
 * form `{ code, message, details }` and comes back as a PictalkError with `PictalkError.fromJSON`.
 */
export type ErrorCode =
  | 'input.invalid'        // the request itself is wrong: bad option, bad prompt, bad image
  | 'input.too_large'      // an image or prompt over a limit (bytes, pixels, tokens)
  | 'input.unsupported'    // a format pictalk cannot read
  | 'model.invalid'        // a model folder with a missing or malformed file
  | 'queue.busy'           // the queue is full: try again later
  | 'job.cancelled'        // the requester (or a moderator) cancelled it
  | 'job.timeout'          // the job ran past its time limit
  | 'inference.failed'     // the model failed while running
  | 'quota.exceeded'       // the user's daily quota is spent
  | 'rate.limited'         // the user sends too fast
  | 'content.blocked'      // the prompt matches the space's blocklist
  | 'permission.denied'    // the command needs a moderator
  | 'platform.rate_limited'// the platform answered 429
  | 'store.unavailable'    // the database cannot be reached right now: nothing was written, try again shortly
  | 'config.invalid';      // a missing or malformed setting

/** Every code, for checking one that arrives as text (a JSON error from another process). */
export const ERROR_CODES: readonly ErrorCode[] = [
  'input.invalid', 'input.too_large', 'input.unsupported', 'model.invalid', 'queue.busy', 'job.cancelled',
  'job.timeout', 'inference.failed', 'quota.exceeded', 'rate.limited', 'content.blocked', 'permission.denied',
  'platform.rate_limited', 'store.unavailable', 'config.invalid',
];
const CODES: ReadonlySet<string> = new Set(ERROR_CODES);

export const isErrorCode = (value: unknown): value is ErrorCode => typeof value === 'string' && CODES.has(value);

/** The JSON form of a PictalkError: what crosses a process boundary. */
export interface PictalkErrorJson {
  code: ErrorCode;
  message: string;
  details: Record<string, unknown>;
}

const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'queue.busy', 'job.timeout', 'inference.failed', 'rate.limited', 'platform.rate_limited', 'store.unavailable',
]);

export class PictalkError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  /** Extra facts for logs and replies (a path, a limit, a retry-after in ms). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.retryable = RETRYABLE.has(code);
    this.details = details;
    // The code in the name, as discord.js does (`DiscordAPIError[50035]`), so a log line says what kind it is.
    this.name = `PictalkError[${code}]`;
  }

  /** `{ code, message, details }`; details that JSON cannot carry (a Buffer, a function) are left out by JSON. */
  toJSON(): PictalkErrorJson {
    return { code: this.code, message: this.message, details: { ...this.details } };
  }

  /**
   * The error back from its JSON form (an object or its text). Anything that is not one (an unknown code, a missing
   * message) becomes `inference.failed` quoting what arrived, so a malformed reply is still a clear failure.
   */
  static fromJSON(value: unknown): PictalkError {
    let parsed = value;
    if (typeof value === 'string') {
      try { parsed = JSON.parse(value) as unknown; } catch { parsed = undefined; }
    }
    const candidate = parsed as Partial<PictalkErrorJson> | null | undefined;
    if (candidate && typeof candidate === 'object' && isErrorCode(candidate.code) && typeof candidate.message === 'string') {
      const details = candidate.details && typeof candidate.details === 'object' && !Array.isArray(candidate.details) ? candidate.details : {};
      return new PictalkError(candidate.code, candidate.message, { ...details });
    }
    return new PictalkError('inference.failed', `Expected an error as { code, message, details }, got ${describe(value)}`);
  }
}

/**
 * Whether `error` is a PictalkError: an instance, or an error from another module copy or realm that carries the
 * same shape (its name `PictalkError[code]`, a known code, a message), as Jest's per-file module registries make.
 */
export function isPictalkError(error: unknown): error is PictalkError {
  if (error instanceof PictalkError) return true;
  if (!(error instanceof Error) && (typeof error !== 'object' || error === null)) return false;
  const { name, code, message } = error as { name?: unknown; code?: unknown; message?: unknown };
  return isErrorCode(code) && typeof message === 'string' && name === `PictalkError[${code}]`;
}

/**
 * How a front's handle on a cluster job ends when another front follows the job now (it claimed the job while this
 * front's lease had lapsed) or has answered it: this front leaves the reply, the quota and the job's record to it.
 */
export function answeredElsewhereError(jobId: string): PictalkError {
  return new PictalkError('inference.failed', `Another pictalk process follows job ${jobId} and answers it`, { jobId, answeredElsewhere: true });
}

export function isAnsweredElsewhere(error: unknown): boolean {
  return isPictalkError(error) && error.details.answeredElsewhere === true;
}

/** Describe a received value for an error message: ``Expected `steps` to be ..., got `80` (number)``. */
export function describe(value: unknown): string {
  if (value === null) return '`null`';
  if (value === undefined) return '`undefined`';
  const text = typeof value === 'string' ? JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value) : String(value);
  return `\`${text}\` (${typeof value})`;
}

/** Wrap anything thrown by a model run in `inference.failed`, keeping pictalk's own errors as they are. */
export function asInferenceError(error: unknown, what: string): PictalkError {
  if (isPictalkError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new PictalkError('inference.failed', `${what} failed: ${message}`, {}, { cause: error });
}
