/**
 * The few errors pictalk knows, each with a stable code and a retry bit.
 * Adapters turn them into platform replies; anything else is an unknown error for the one global handler.
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
  | 'config.invalid';      // a missing or malformed setting

const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'queue.busy', 'job.timeout', 'inference.failed', 'rate.limited', 'platform.rate_limited',
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
}

export const isPictalkError = (error: unknown): error is PictalkError => error instanceof PictalkError;

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
