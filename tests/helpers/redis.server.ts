/** The private Redis of the tests: the bench starts the same one (scripts/redis.server.ts). */
export { freePort, redisCommand, startRedis, type RedisServer } from '../../scripts/redis.server.js';
