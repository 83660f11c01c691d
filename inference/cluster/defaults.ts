/** The cluster's defaults, in a module of its own so that reading the settings does not load the Redis clients. */

/** PICTALK_WORKER_LOCK_MS's default: how long a worker's claim on a running job lasts without renewal. */
export const DEFAULT_WORKER_LOCK_MS = 30_000;
