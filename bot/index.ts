/** bot/'s public API for adapters and the entry point. */
export { Bot, type BotOptions } from './bot.js';
export { DEFAULT_BOT_CONFIG, resolveBotConfig, type BotConfig, type BotConfigInput, type RateLimitConfig } from './config.js';
export type { AltTextCaptioner, Clock, InferencePort, JobHandle, Logger, QueueStats, SubmitOptions } from './ports.js';
export type { BotStore, AuditEntry, JobRecord } from './store.js';
export { SqliteStore, type OpenStoreOptions } from './sqlite.store.js';
export { IMAGINE_LIMITS } from './commands/imagine.options.js';
export { parseBlockPattern } from './policy/content.policy.js';
export type * from './types.js';
