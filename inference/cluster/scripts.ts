/**
 * The cluster's shared state in Redis, changed only by these Lua scripts, so each change is atomic across every front
 * and worker: a job's record, pictalk's fair line per kind, and the counts that bound the queue.
 *
 * Keys, under a prefix P (default `pictalk`):
 *   P:job:<id>           hash: kind, space, user, state (queued | dispatched | running | settled), timeoutMs,
 *                        submittedAt, startedAt, attempts, worker, outcome (ok | error), cancel, front (submitter)
 *   P:input:<id>         the encoded input, until the job settles
 *   P:result:<id>        the encoded result or error JSON, for `resultTtl` seconds after the job settled
 *   P:line:<kind>        list of space ids in round-robin order; P:line:<kind>:s:<space> the space's users in order;
 *                        P:line:<kind>:u:<len>:<space>:<user> the user's waiting job ids, oldest first
 *   P:waiting            jobs accepted and not started (the line plus those handed to BullMQ), all kinds together
 *   P:waiting:kinds, P:running:kinds   hashes kind -> count
 *   P:users              hash user -> unfinished jobs (waiting or running), for the per-user bound
 *   P:follow:<id>        the front that follows the job to its reply (its id, with a lease it renews; a front whose
 *                        lease ran out has stopped, and another front claims the job)
 *   P:unfinished         set of the ids of jobs accepted and not settled (a restarted front keeps their records)
 *   P:dispatched         sorted set id -> when it was handed to BullMQ (a worker re-adds one that a crash lost)
 * Channels: P:events (JSON: line, for every front), P:events:<front> (JSON: start, progress, settled of the jobs that
 * front follows), P:wake (a kind has work), P:cancel (a job id to abort).
 *
 * The fair rule is the in-process core's (fair-queue.ts): round-robin over spaces, then over the users of a space,
 * FIFO within a user; serving a user moves it to the back of its space, serving a space to the back of all spaces.
 */

/** How a follow lease reads once its front's reply is out (`ANSWERED`): this, then the front's id. */
export const ANSWERED_MARK = 'answered:';

const COMMON = `
local P = ARGV[1]
local function jobKey(id) return P .. ':job:' .. id end
local function lineKey(kind) return P .. ':line:' .. kind end
local function spaceKey(kind, space) return lineKey(kind) .. ':s:' .. space end
local function userKey(kind, space, user) return lineKey(kind) .. ':u:' .. #space .. ':' .. space .. ':' .. user end
local function lineChanged(kind) redis.call('PUBLISH', P .. ':events', cjson.encode({ e = 'line', kind = kind })) end
-- the front that follows a job: the lease holder, else the front that submitted it (false when neither is known)
local function frontOf(id)
  local holder = redis.call('GET', P .. ':follow:' .. id)
  if holder and string.sub(holder, 1, ${ANSWERED_MARK.length}) ~= '${ANSWERED_MARK}' then return holder end
  return redis.call('HGET', jobKey(id), 'front')
end
-- a job's own event goes to the front that follows it, not to all
local function jobEvent(id, payload)
  local front = frontOf(id)
  if front then redis.call('PUBLISH', P .. ':events:' .. front, payload) else redis.call('PUBLISH', P .. ':events', payload) end
end

local function lineRemove(kind, space, user, id)
  local U = userKey(kind, space, user)
  if redis.call('LREM', U, 1, id) == 0 then return end
  if redis.call('LLEN', U) == 0 then
    local S = spaceKey(kind, space)
    redis.call('LREM', S, 1, user)
    if redis.call('LLEN', S) == 0 then redis.call('LREM', lineKey(kind), 1, space) end
  end
  lineChanged(kind)
end

-- a job a front can still follow to a reply: unsettled, or settled with its result kept
local function deliverable(id)
  local state = redis.call('HGET', jobKey(id), 'state')
  return state and (state ~= 'settled' or redis.call('EXISTS', P .. ':result:' .. id) == 1)
end

-- settle a job once: free its place in the counts, keep its outcome for ttl seconds, tell every front
local function settle(id, outcome, payload, ttl)
  local J = jobKey(id)
  local f = redis.call('HMGET', J, 'state', 'kind', 'space', 'user')
  local state, kind, space, user = f[1], f[2], f[3], f[4]
  if not state or state == 'settled' then return 0 end
  if state == 'queued' then lineRemove(kind, space, user, id) end
  if state == 'queued' or state == 'dispatched' then
    redis.call('DECR', P .. ':waiting')
    redis.call('HINCRBY', P .. ':waiting:kinds', kind, -1)
    redis.call('ZREM', P .. ':dispatched', id)
  elseif state == 'running' then
    redis.call('HINCRBY', P .. ':running:kinds', kind, -1)
  end
  if redis.call('HINCRBY', P .. ':users', user, -1) <= 0 then redis.call('HDEL', P .. ':users', user) end
  redis.call('HSET', J, 'state', 'settled', 'outcome', outcome)
  redis.call('EXPIRE', J, ttl)
  redis.call('SET', P .. ':result:' .. id, payload, 'EX', ttl)
  redis.call('DEL', P .. ':input:' .. id)
  redis.call('SREM', P .. ':unfinished', id)
  jobEvent(id, cjson.encode({ e = 'settled', id = id }))
  return 1
end
`;

/**
 * ARGV: P, id, kind, space, user, input, maxQueued, maxPerUser, timeoutMs, now, inputTtl, front, followMs (0: no follow lease, for a part of another job's reply).
 * → {'ok'} | {'duplicate'} | {'total'|'user', n}
 */
export const SUBMIT = `${COMMON}
local id, kind, space, user = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local maxQueued, maxPerUser = tonumber(ARGV[7]), tonumber(ARGV[8])
if redis.call('EXISTS', jobKey(id)) == 1 then return { 'duplicate' } end
local waiting = tonumber(redis.call('GET', P .. ':waiting') or '0')
if waiting >= maxQueued then return { 'total', waiting } end
local mine = tonumber(redis.call('HGET', P .. ':users', user) or '0')
if mine >= maxPerUser then return { 'user', mine } end
redis.call('HSET', jobKey(id), 'kind', kind, 'space', space, 'user', user, 'state', 'queued', 'timeoutMs', ARGV[9],
  'submittedAt', ARGV[10], 'attempts', 0, 'front', ARGV[12])
redis.call('SET', P .. ':input:' .. id, ARGV[6], 'EX', tonumber(ARGV[11]))
local U = userKey(kind, space, user)
if redis.call('RPUSH', U, id) == 1 then
  local S = spaceKey(kind, space)
  if redis.call('RPUSH', S, user) == 1 then redis.call('RPUSH', lineKey(kind), space) end
end
redis.call('INCR', P .. ':waiting')
redis.call('HINCRBY', P .. ':waiting:kinds', kind, 1)
redis.call('HINCRBY', P .. ':users', user, 1)
redis.call('SADD', P .. ':unfinished', id)
if tonumber(ARGV[13]) > 0 then redis.call('SET', P .. ':follow:' .. id, ARGV[12], 'PX', tonumber(ARGV[13])) end
redis.call('PUBLISH', P .. ':wake', kind)
lineChanged(kind)
return { 'ok' }
`;

/** The next job of a kind in fair order, marked as handed to BullMQ. ARGV: P, kind, now. → id | false */
export const POP = `${COMMON}
local kind, now = ARGV[2], tonumber(ARGV[3])
local L = lineKey(kind)
local space = redis.call('LPOP', L)
if not space then return false end
local S = spaceKey(kind, space)
local user = redis.call('LPOP', S)
local U = userKey(kind, space, user)
local id = redis.call('LPOP', U)
if redis.call('LLEN', U) > 0 then redis.call('RPUSH', S, user) end
if redis.call('LLEN', S) > 0 then redis.call('RPUSH', L, space) end
redis.call('HSET', jobKey(id), 'state', 'dispatched')
redis.call('ZADD', P .. ':dispatched', now, id)
lineChanged(kind)
return id
`;

/**
 * A worker starts a job BullMQ gave it. ARGV: P, id, worker, now.
 * → {'run', input, timeoutMs, attempts, owner space, owner user, front ('' if none)} | {'gone'} (settled meanwhile: cancelled, failed)
 */
export const START = `${COMMON}
local id = ARGV[2]
local J = jobKey(id)
local f = redis.call('HMGET', J, 'state', 'kind', 'space', 'user', 'timeoutMs')
local state, kind = f[1], f[2]
if not state or state == 'settled' or state == 'queued' then return { 'gone' } end
local input = redis.call('GET', P .. ':input:' .. id)
if not input then return { 'gone' } end
if state == 'dispatched' then
  redis.call('DECR', P .. ':waiting')
  redis.call('HINCRBY', P .. ':waiting:kinds', kind, -1)
  redis.call('HINCRBY', P .. ':running:kinds', kind, 1)
  redis.call('ZREM', P .. ':dispatched', id)
end
redis.call('HSET', J, 'state', 'running', 'worker', ARGV[3], 'startedAt', ARGV[4])
local attempts = redis.call('HINCRBY', J, 'attempts', 1)
jobEvent(id, cjson.encode({ e = 'start', id = id, attempt = attempts }))
-- the front its progress goes to (the worker asks again now and then: another front may take the job over)
return { 'run', input, f[5], attempts, f[3], f[4], frontOf(id) or '' }
`;

/** ARGV: P, id, outcome (ok | error), payload, ttl. → 1 when this call settled it, 0 when it had settled already */
export const SETTLE = `${COMMON}
return settle(ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]))
`;

/**
 * Cancel from any process: settles the job as cancelled at once and, when a worker runs it, tells that worker to
 * abort between steps. ARGV: P, id, error JSON, ttl. → 1 | 0 (no unsettled job of that id)
 */
export const CANCEL = `${COMMON}
local id = ARGV[2]
local state = redis.call('HGET', jobKey(id), 'state')
if state == 'running' then
  redis.call('HSET', jobKey(id), 'cancel', 1)
  redis.call('PUBLISH', P .. ':cancel', id)
end
return settle(id, 'error', ARGV[3], tonumber(ARGV[4]))
`;

/**
 * Places in line of some jobs of one kind: 1.. waiting (1 = next; a job handed to BullMQ counts as next), 0
 * running, -1 settled or unknown. ARGV: P, kind, id...
 */
export const POSITIONS = `${COMMON}
local kind = ARGV[2]
-- walk the fair line as POP would take it: spaces round-robin, users round-robin, FIFO within a user
local spaces = {}
for _, space in ipairs(redis.call('LRANGE', lineKey(kind), 0, -1)) do
  local users = {}
  for _, user in ipairs(redis.call('LRANGE', spaceKey(kind, space), 0, -1)) do
    table.insert(users, { items = redis.call('LRANGE', userKey(kind, space, user), 0, -1), next = 1 })
  end
  table.insert(spaces, users)
end
local order = {}
local n = 0
local queue = spaces
while #queue > 0 do
  local rest = {}
  for _, users in ipairs(queue) do
    local user = table.remove(users, 1)
    n = n + 1
    order[user.items[user.next]] = n
    user.next = user.next + 1
    if user.next <= #user.items then table.insert(users, user) end
    if #users > 0 then table.insert(rest, users) end
  end
  queue = rest
end
local inLine = n
local dispatched = tonumber(redis.call('HGET', P .. ':waiting:kinds', kind) or '0') - inLine
if dispatched < 0 then dispatched = 0 end
local out = {}
for i = 3, #ARGV do
  local state = redis.call('HGET', jobKey(ARGV[i]), 'state')
  if state == 'queued' and order[ARGV[i]] then table.insert(out, order[ARGV[i]] + dispatched)
  elseif state == 'dispatched' then table.insert(out, 1)
  elseif state == 'running' then table.insert(out, 0)
  else table.insert(out, -1) end
end
return out
`;

/**
 * A front claims jobs no live front follows: those the cluster can still deliver (unsettled, or settled with the result
 * kept) whose follow lease is gone. ARGV: P, front, followMs, id... → the ids it claimed
 */
export const CLAIM = `${COMMON}
local claimed = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  if deliverable(id) and redis.call('SET', P .. ':follow:' .. id, ARGV[2], 'NX', 'PX', tonumber(ARGV[3])) then
    table.insert(claimed, id)
  end
end
return claimed
`;

/**
 * A front renews its follow leases: its own are extended, a lapsed one (Redis was away longer than the lease) is taken
 * back unless another front claimed it meanwhile. ARGV: P, front, followMs, id... → the ids another front holds now
 */
export const RENEW = `
local P, front, ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
local taken = {}
for i = 4, #ARGV do
  local key = P .. ':follow:' .. ARGV[i]
  local holder = redis.call('GET', key)
  if holder == front then redis.call('PEXPIRE', key, ms)
  elseif not holder then redis.call('SET', key, front, 'PX', ms)
  else table.insert(taken, ARGV[i]) end
end
return taken
`;

/**
 * A front's replies to these jobs are out: its lease on each becomes a mark that the job is answered, kept as long as
 * the job's result, so no front claims the job again and a front that followed it too (its lease had lapsed) steps
 * aside instead of answering twice. A lease another front holds is left to it. ARGV: P, front, ttlSecs, id...
 */
export const ANSWERED = `
local P, front, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
for i = 4, #ARGV do
  local key = P .. ':follow:' .. ARGV[i]
  local holder = redis.call('GET', key)
  if holder == front or not holder then redis.call('SET', key, '${ANSWERED_MARK}' .. front, 'EX', ttl) end
end
return 1
`;

/** A front lets go of its follow leases (it stops before these jobs' results came): only its own. ARGV: P, front, id... */
export const RELEASE = `
local P, front = ARGV[1], ARGV[2]
for i = 3, #ARGV do
  local key = P .. ':follow:' .. ARGV[i]
  if redis.call('GET', key) == front then redis.call('DEL', key) end
end
return 1
`;

/**
 * One token of a per-user bucket shared by every front (the bot's rate limit): capacity in a burst, refilled at
 * capacity / window, on Redis's clock. ARGV: P, key, capacity, windowMs. → {1, 0} | {0, retryAfterMs}
 */
export const TAKE = `${COMMON}
local key = P .. ':rate:' .. ARGV[2]
local capacity, windowMs = tonumber(ARGV[3]), tonumber(ARGV[4])
local perMs = capacity / windowMs
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', key, 'tokens', 'at')
local tokens = tonumber(b[1]) or capacity
local at = tonumber(b[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * perMs)
local ok = tokens >= 1
if ok then tokens = tokens - 1 end
redis.call('HSET', key, 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', key, windowMs + 1000)
if ok then return { 1, 0 } end
return { 0, math.ceil((1 - tokens) / perMs) }
`;

/** Of some job ids, those a front can still follow to a reply (unsettled, or the result kept). ARGV: P, id... */
export const ATTACHABLE = `${COMMON}
local out = {}
for i = 2, #ARGV do
  if deliverable(ARGV[i]) then table.insert(out, ARGV[i]) end
end
return out
`;
