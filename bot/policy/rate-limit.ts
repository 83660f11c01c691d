/**
 * Per-user token bucket: `capacity` commands in a burst, refilled continuously at capacity / windowMs.
 * In memory on purpose: a restart forgiving a burst is harmless, and a per-command database write is not free.
 */
import { PictalkError } from '../../common/errors.js';
import type { RateLimitConfig } from '../config.js';
import type { Clock } from '../ports.js';

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(private readonly config: RateLimitConfig, private readonly clock: Clock) {
    this.perMs = config.capacity / config.windowMs;
  }

  /** Take one token for `key`, or throw `rate.limited` with `retryAfterMs` (when the next token is there). */
  take(key: string): void {
    const now = this.clock.now();
    const bucket = this.refill(key, now);
    if (bucket.tokens < 1) {
      const retryAfterMs = Math.ceil((1 - bucket.tokens) / this.perMs);
      throw new PictalkError('rate.limited', `Too many commands: ${this.config.capacity} per ${this.config.windowMs} ms allowed`,
        { retryAfterMs });
    }
    bucket.tokens -= 1;
    this.buckets.set(key, bucket);
    if (this.buckets.size > 10_000) this.prune(now);
  }

  private refill(key: string, now: number): Bucket {
    const bucket = this.buckets.get(key) ?? { tokens: this.config.capacity, at: now };
    bucket.tokens = Math.min(this.config.capacity, bucket.tokens + Math.max(0, now - bucket.at) * this.perMs);
    bucket.at = now;
    return bucket;
  }

  /** Full buckets carry no information: drop them so the map does not grow with every user ever seen. */
  private prune(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.at) * this.perMs >= this.config.capacity) this.buckets.delete(key);
    }
  }
}
