/*
 * pxl_queue_lua.h - where the queue keeps its jobs with Redis, and the
 * Lua scripts that change them, shared by the workers
 * (pxl_queue_redis.c) and the operator's command (pxl-jobs).
 *
 * Keys, P = "pxl:" app ":", Q = P "q:" NAME ":":
 *   P queues      set of the queue names in use
 *   Q s:LEVEL     stream of the waiting jobs of one priority level
 *                 (entries "j" ID), consumer group "pxl": an entry
 *                 delivered and not acknowledged is a running job, in
 *                 the pending list of the worker (consumer) running it;
 *                 its idle time is the lease, renewed by XCLAIM while
 *                 it runs, taken over by XAUTOCLAIM after
 *                 queue.stalled_after; acknowledged entries stay until
 *                 a claim trims the stream behind the oldest pending
 *                 one (XTRIM MINID)
 *   Q levels      sorted set of the levels in use (level 0 always)
 *   Q delayed     sorted set, run_at -> ID: jobs not yet due (delays,
 *                 retries after their backoff)
 *   Q done        sorted set, finished_at -> ID: completed jobs kept
 *   Q dead        stream of dead jobs (entries "j" ID, "error" text)
 *   Q wakes       how many wake-up entries level 0 holds (not jobs)
 *   Q limit       GCRA state of a rate-limited queue: when the next
 *                 start is allowed (microseconds since the epoch)
 *   Q j:ID        hash of one job: payload, priority, run_at, attempt,
 *                 attempts, backoff_ms, backoff_exp, timeout_ms, keep,
 *                 created_at, state (waiting, delayed, active,
 *                 completed, dead), entry (its stream entry while
 *                 waiting or active), owner (the consumer running it),
 *                 started_at, finished_at, progress, result, error,
 *                 dead_entry (its entry in Q dead)
 *
 * A stream entry whose job's hash names another entry (the job moved)
 * or no job (removed), and a level's wake-up entry ("w" LEVEL, written
 * to level 0 when a new level appears, so that readers blocked on the
 * old levels look again), is dropped by whoever reads it.
 *
 * Every script takes KEYS[1] = Q (P for COUNT) and starts with the
 * prelude. Times are milliseconds since the epoch, from the caller.
 */
#ifndef PXL_QUEUE_LUA_H
#define PXL_QUEUE_LUA_H

#define PXL_QUEUE_LUA_PRELUDE                                                  \
        "local Q = KEYS[1]\n"                                                  \
        "local function jkey(id) return Q .. 'j:' .. id end\n"                 \
        "local function skey(lv) return Q .. 's:' .. lv end\n"                 \
        /* make sure the stream and group of level lv exist; true if new */   \
        "local function level(lv)\n"                                           \
        "  if redis.call('ZADD', Q .. 'levels', 'NX', lv, lv) == 0 then\n"     \
        "    return false end\n"                                               \
        "  redis.pcall('XGROUP', 'CREATE', skey(lv), 'pxl', '0', "             \
        "'MKSTREAM')\n"                                                        \
        "  return true\n"                                                      \
        "end\n"                                                                \
        /* level lv can take jobs; a new one wakes the blocked readers */     \
        "local function ready(lv)\n"                                           \
        "  if level(lv) and lv ~= '0' then\n"                                  \
        "    level('0')\n"                                                     \
        "    redis.call('XADD', skey('0'), '*', 'w', lv)\n"                    \
        "    redis.call('INCR', Q .. 'wakes')\n"                               \
        "  end\n"                                                              \
        "end\n"                                                                \
        "local function enqueue(id, lv)\n"                                     \
        "  ready(lv)\n"                                                        \
        "  local e = redis.call('XADD', skey(lv), '*', 'j', id)\n"             \
        "  redis.call('HSET', jkey(id), 'state', 'waiting', 'entry', e)\n"     \
        "  redis.call('HDEL', jkey(id), 'owner')\n"                            \
        "end\n"                                                                \
        /* field f of level lv's group in XINFO GROUPS (false if none) */     \
        "local function group(lv, f)\n"                                        \
        "  for _, g in ipairs(redis.call('XINFO', 'GROUPS', skey(lv))) do\n"   \
        "    for k = 1, #g, 2 do\n"                                            \
        "      if g[k] == 'name' and g[k + 1] ~= 'pxl' then break end\n"       \
        "      if g[k] == f then return g[k + 1] end\n"                        \
        "    end\n"                                                            \
        "  end\n"                                                              \
        "  return false\n"                                                     \
        "end\n"                                                                \
        "local function drop(s, e)\n"                                          \
        "  redis.call('XACK', s, 'pxl', e)\n"                                  \
        "  redis.call('XDEL', s, e)\n"                                         \
        "end\n"                                                                \
        /* start the runs of entries es of level lv into out */               \
        "local function take(lv, es, owner, now, out)\n"                       \
        "  local s, n = skey(lv), 0\n"                                         \
        "  for _, en in ipairs(es) do\n"                                       \
        "    local e, f, h = en[1], en[2], nil\n"                              \
        "    if type(f) == 'table' and f[1] == 'j' then\n"                     \
        "      h = redis.call('HMGET', jkey(f[2]), 'entry', 'payload', "       \
        "'attempts', 'backoff_ms', 'backoff_exp', 'timeout_ms', 'keep', "      \
        "'run_at', 'attempt')\n"                                               \
        "    end\n"                                                            \
        "    if h == nil or h[1] ~= e then\n"                                  \
        "      drop(s, e)\n"                                                   \
        "      if type(f) == 'table' and f[1] == 'w' then\n"                   \
        "        redis.call('DECR', Q .. 'wakes') end\n"                       \
        "    else\n"                                                           \
        "      local a = (tonumber(h[9]) or 0) + 1\n"                          \
        "      redis.call('HSET', jkey(f[2]), 'attempt', a, 'state', "         \
        "'active', 'owner', owner, 'started_at', now)\n"                       \
        "      out[#out + 1] = {f[2], lv .. '/' .. e, h[2], a, h[3], h[4], "   \
        "h[5], h[6], h[7], h[8]}\n"                                            \
        "      n = n + 1\n"                                                    \
        "    end\n"                                                            \
        "  end\n"                                                              \
        "  return n\n"                                                         \
        "end\n"

/* The queue's level 0, and its name in P queues (ARGV: P queues, NAME). */
#define PXL_QUEUE_LUA_SETUP                                                    \
        PXL_QUEUE_LUA_PRELUDE                                                  \
        "level('0')\n"                                                         \
        "redis.call('SADD', ARGV[1], ARGV[2])\n"                               \
        "return 1\n"

/*
 * Add jobs unless their ids exist: for each, 1 added, 0 existed.
 * ARGV: now, then for each job: id, payload, priority, run_at,
 * attempts, backoff_ms, backoff_exp, timeout_ms, keep.
 */
#define PXL_QUEUE_LUA_ADD                                                      \
        PXL_QUEUE_LUA_PRELUDE                                                  \
        "local now, out, seen = tonumber(ARGV[1]), {}, {}\n"                   \
        "for i = 2, #ARGV, 9 do\n"                                             \
        "  local id, lv = ARGV[i], ARGV[i + 2]\n"                              \
        "  if redis.call('EXISTS', jkey(id)) == 1 then\n"                      \
        "    out[#out + 1] = 0\n"                                              \
        "  else\n"                                                             \
        "    local state, e = 'delayed', nil\n"                                \
        "    if tonumber(ARGV[i + 3]) > now then\n"                            \
        "      redis.call('ZADD', Q .. 'delayed', ARGV[i + 3], id)\n"          \
        "    else\n"                                                           \
        "      if not seen[lv] then ready(lv) seen[lv] = true end\n"           \
        "      state, e = 'waiting', redis.call('XADD', skey(lv), '*', 'j', "  \
        "id)\n"                                                                \
        "    end\n"                                                            \
        "    redis.call('HSET', jkey(id), 'payload', ARGV[i + 1], "           \
        "'priority', lv, 'run_at', ARGV[i + 3], 'attempt', 0, 'attempts', "    \
        "ARGV[i + 4], 'backoff_ms', ARGV[i + 5], 'backoff_exp', ARGV[i + 6], " \
        "'timeout_ms', ARGV[i + 7], 'keep', ARGV[i + 8], 'created_at', "       \
        "ARGV[1], 'state', state)\n"                                           \
        "    if e then redis.call('HSET', jkey(id), 'entry', e) end\n"         \
        "    out[#out + 1] = 1\n"                                              \
        "  end\n"                                                              \
        "end\n"                                                                \
        "return out\n"

/*
 * Move the due delayed jobs to their streams, then take up to n jobs,
 * highest level first, stalled ones (idle over stalled ms) before new
 * ones, within the rate limit when interval (us) is not 0. Looking for
 * stalled jobs walks the pending entries, so the caller asks for it
 * only now and then (ARGV[7] '1').
 * ARGV: n, owner, now, stalled ms, interval, now in us, look for
 * stalled ones, trim the streams (both '1' or '0').
 * Returns {wake, limited, {levels}, job...}: wake is when the next
 * delayed job is due (-1: none), or with limited 1 when the rate limit
 * allows the next start; a job is {id, token, payload, attempt,
 * attempts, backoff_ms, backoff_exp, timeout_ms, keep, run_at}.
 */
#define PXL_QUEUE_LUA_CLAIM                                                    \
        PXL_QUEUE_LUA_PRELUDE                                                  \
        "local n, owner, now = tonumber(ARGV[1]), ARGV[2], ARGV[3]\n"          \
        "local interval, now_us = tonumber(ARGV[5]), tonumber(ARGV[6])\n"      \
        "for _, id in ipairs(redis.call('ZRANGEBYSCORE', Q .. 'delayed', "     \
        "'-inf', now, 'LIMIT', 0, 1000)) do\n"                                 \
        "  redis.call('ZREM', Q .. 'delayed', id)\n"                           \
        "  local pr = redis.call('HGET', jkey(id), 'priority')\n"              \
        "  if pr then enqueue(id, pr) end\n"                                   \
        "end\n"                                                                \
        "local tat = 0\n"                                                      \
        "if interval > 0 then\n"                                               \
        "  tat = tonumber(redis.call('GET', Q .. 'limit') or '0')\n"           \
        "  if tat < now_us then tat = now_us end\n"                            \
        "  local g = math.floor((now_us + interval - tat) / interval)\n"       \
        "  if g < n then n = g end\n"                                          \
        "  if n <= 0 then return {math.floor(tat / 1000) + 1, 1, {}} end\n"    \
        "end\n"                                                                \
        "local out, left = {}, n\n"                                            \
        "local levels = redis.call('ZREVRANGE', Q .. 'levels', 0, -1)\n"       \
        "for _, lv in ipairs(levels) do\n"                                     \
        "  if left <= 0 then break end\n"                                      \
        /* one call looks at COUNT x 10 pending entries: go on from its */    \
        /* cursor, or a stalled entry behind running ones is never found */   \
        "  local cur = '0-0'\n"                                                \
        "  if ARGV[7] ~= '1' then cur = nil end\n"                             \
        "  while cur do\n"                                                     \
        "    local c = redis.call('XAUTOCLAIM', skey(lv), 'pxl', owner, "      \
        "ARGV[4], cur, 'COUNT', left)\n"                                       \
        "    left = left - take(lv, c[2], owner, now, out)\n"                  \
        "    cur = c[1]\n"                                                     \
        "    if left <= 0 or cur == '0-0' then cur = nil end\n"                \
        "  end\n"                                                              \
        /* entries dropped (wake-ups, moved jobs) took none: read on */       \
        "  while left > 0 do\n"                                                \
        "    local r = redis.call('XREADGROUP', 'GROUP', 'pxl', owner, "       \
        "'COUNT', left, 'STREAMS', skey(lv), '>')\n"                           \
        "    if not r then break end\n"                                        \
        "    left = left - take(lv, r[1][2], owner, now, out)\n"               \
        "  end\n"                                                              \
        "end\n"                                                                \
        /* trim behind what every reader has acknowledged */                  \
        "if ARGV[8] == '1' then\n"                                             \
        "  for _, lv in ipairs(levels) do\n"                                   \
        "    local minid = redis.call('XPENDING', skey(lv), 'pxl')[2]\n"       \
        "    if not minid then minid = group(lv, 'last-delivered-id') end\n"   \
        "    if minid then redis.call('XTRIM', skey(lv), 'MINID', minid) end\n" \
        "  end\n"                                                              \
        "end\n"                                                                \
        "if interval > 0 then\n"                                               \
        "  redis.call('SET', Q .. 'limit', "                                   \
        "string.format('%d', tat + (n - left) * interval))\n"                  \
        "end\n"                                                                \
        "local wake = -1\n"                                                    \
        "local nx = redis.call('ZRANGE', Q .. 'delayed', 0, 0, 'WITHSCORES')\n" \
        "if nx[2] then wake = tonumber(nx[2]) end\n"                           \
        "return {wake, 0, levels, unpack(out)}\n"

/*
 * Start the runs of entries a blocking XREADGROUP delivered. ARGV:
 * owner, now, then LEVEL ENTRY FIELD VALUE for each. As CLAIM returns.
 */
#define PXL_QUEUE_LUA_START                                                    \
        PXL_QUEUE_LUA_PRELUDE                                                  \
        "local out = {}\n"                                                     \
        "for i = 3, #ARGV, 4 do\n"                                             \
        "  take(ARGV[i], {{ARGV[i + 1], {ARGV[i + 2], ARGV[i + 3]}}}, "        \
        "ARGV[1], ARGV[2], out)\n"                                   \
        "end\n"                                                                \
        "return {-1, 0, redis.call('ZREVRANGE', Q .. 'levels', 0, -1), "       \
        "unpack(out)}\n"

/*
 * Record how runs ended, each if it is still owner's attempt: for each,
 * 1 recorded, else 0. The entry is acknowledged, not deleted: CLAIM
 * trims the streams behind what is acknowledged now and then.
 * ARGV: owner, now, the time after which a completed schedule tick is
 * spared by trimming, then for each run: id, attempt, end (c completed,
 * r retry, d dead), result or error ('' none), retry_at, level, entry,
 * keep.
 */
#define PXL_QUEUE_LUA_FINISH                                                   \
        PXL_QUEUE_LUA_PRELUDE                                                  \
        "local owner, now, out = ARGV[1], ARGV[2], {}\n"                       \
        "for i = 4, #ARGV, 8 do\n"                                             \
        "  local id, how, text = ARGV[i], ARGV[i + 2], ARGV[i + 3]\n"          \
        "  local jk, keep = jkey(id), tonumber(ARGV[i + 7])\n"                 \
        "  local h = redis.call('HMGET', jk, 'owner', 'attempt', 'state')\n"   \
        "  if h[1] ~= owner or h[2] ~= ARGV[i + 1] or h[3] ~= 'active' then\n" \
        "    out[#out + 1] = 0\n"                                              \
        "  else\n"                                                             \
        "    out[#out + 1] = 1\n"                                              \
        "    redis.call('XACK', skey(ARGV[i + 5]), 'pxl', ARGV[i + 6])\n"      \
        "    if how == 'c' and keep == 0 then\n"                               \
        "      redis.call('DEL', jk)\n"                                        \
        "    elseif how == 'c' then\n"                                         \
        "      redis.call('HDEL', jk, 'owner', 'entry', 'error')\n"            \
        "      redis.call('HSET', jk, 'state', 'completed', 'finished_at', "   \
        "now)\n"                                                               \
        "      if text ~= '' then redis.call('HSET', jk, 'result', text) end\n" \
        "      redis.call('ZADD', Q .. 'done', now, id)\n"                     \
        "      local over = redis.call('ZCARD', Q .. 'done') - keep\n"         \
        "      if over > 0 then\n"                                             \
        "        local old = redis.call('ZRANGE', Q .. 'done', 0, over - 1, "  \
        "'WITHSCORES')\n"                                                      \
        "        for k = 1, #old, 2 do\n"                                      \
        "          if string.sub(old[k], 1, 9) ~= 'schedule:' or "             \
        "tonumber(old[k + 1]) <= tonumber(ARGV[3]) then\n"                     \
        "            redis.call('DEL', jkey(old[k]))\n"                        \
        "            redis.call('ZREM', Q .. 'done', old[k])\n"                \
        "          end\n"                                                      \
        "        end\n"                                                        \
        "      end\n"                                                          \
        "    elseif how == 'r' then\n"                                         \
        "      redis.call('HDEL', jk, 'owner', 'entry')\n"                     \
        "      redis.call('HSET', jk, 'state', 'delayed', 'run_at', "          \
        "ARGV[i + 4], 'error', text)\n"                                        \
        "      redis.call('ZADD', Q .. 'delayed', ARGV[i + 4], id)\n"          \
        "    else\n"                                                           \
        "      local e = redis.call('XADD', Q .. 'dead', '*', 'j', id, "       \
        "'error', text)\n"                                                     \
        "      redis.call('HDEL', jk, 'owner', 'entry')\n"                     \
        "      redis.call('HSET', jk, 'state', 'dead', 'error', text, "        \
        "'finished_at', now, 'dead_entry', e)\n"                               \
        "    end\n"                                                            \
        "  end\n"                                                              \
        "end\n"                                                                \
        "return out\n"

/*
 * Keep owner's runs: reset the idle time of each entry still its own.
 * ARGV: owner, then LEVEL ENTRY ID for each.
 */
#define PXL_QUEUE_LUA_RENEW                                                    \
        PXL_QUEUE_LUA_PRELUDE                                                  \
        "for i = 2, #ARGV, 3 do\n"                                             \
        "  local h = redis.call('HMGET', jkey(ARGV[i + 2]), 'owner', "         \
        "'entry')\n"                                                           \
        "  if h[1] == ARGV[1] and h[2] == ARGV[i + 1] then\n"                  \
        "    redis.call('XCLAIM', skey(ARGV[i]), 'pxl', ARGV[1], 0, "          \
        "ARGV[i + 1], 'JUSTID')\n"                                             \
        "  end\n"                                                              \
        "end\n"                                                                \
        "return 1\n"

/* ARGV: id, owner, progress JSON. */
#define PXL_QUEUE_LUA_PROGRESS                                                 \
        PXL_QUEUE_LUA_PRELUDE                                                  \
        "if redis.call('HGET', jkey(ARGV[1]), 'owner') == ARGV[2] then\n"      \
        "  redis.call('HSET', jkey(ARGV[1]), 'progress', ARGV[3])\n"           \
        "end\n"                                                                \
        "return 1\n"

/*
 * Stopping: every run owner has goes back to its stream, to run at
 * once elsewhere (its attempt not counted), and owner leaves the
 * groups. ARGV: owner. Returns how many went back.
 */
#define PXL_QUEUE_LUA_GIVE_BACK                                                \
        PXL_QUEUE_LUA_PRELUDE                                                  \
        "local n = 0\n"                                                        \
        "for _, lv in ipairs(redis.call('ZRANGE', Q .. 'levels', 0, -1)) do\n" \
        "  local s = skey(lv)\n"                                               \
        "  for _, p in ipairs(redis.call('XPENDING', s, 'pxl', '-', '+', "     \
        "100000, ARGV[1])) do\n"                                               \
        "    local en = redis.call('XRANGE', s, p[1], p[1])\n"                 \
        "    local f = en[1] and en[1][2]\n"                                   \
        "    drop(s, p[1])\n"                                                  \
        "    if f and f[1] == 'w' then redis.call('DECR', Q .. 'wakes') end\n" \
        "    if f and f[1] == 'j' then\n"                                      \
        "      local h = redis.call('HMGET', jkey(f[2]), 'owner', 'entry', "   \
        "'state')\n"                                                           \
        "      if h[1] == ARGV[1] and h[2] == p[1] and h[3] == 'active' then\n" \
        "        redis.call('HINCRBY', jkey(f[2]), 'attempt', -1)\n"           \
        "        enqueue(f[2], lv)\n"                                          \
        "        n = n + 1\n"                                                  \
        "      end\n"                                                          \
        "    end\n"                                                            \
        "  end\n"                                                              \
        "  redis.pcall('XGROUP', 'DELCONSUMER', s, 'pxl', ARGV[1])\n"          \
        "end\n"                                                                \
        "return n\n"

/*
 * The counts of queues. KEYS[1] = P; ARGV: now, then the names.
 * Returns {NAME, waiting, delayed, active, completed, dead} for each.
 */
#define PXL_QUEUE_LUA_COUNT                                                    \
        PXL_QUEUE_LUA_PRELUDE                                                  \
        "local P, out = Q, {}\n"                                               \
        "for i = 2, #ARGV do\n"                                                \
        "  Q = P .. 'q:' .. ARGV[i] .. ':'\n"                                  \
        "  local waiting, active = 0, 0\n"                                     \
        "  for _, lv in ipairs(redis.call('ZRANGE', Q .. 'levels', 0, -1)) "   \
        "do\n"                                                                 \
        "    local p = redis.call('XPENDING', skey(lv), 'pxl')\n"              \
        /* entries not yet delivered; acknowledged ones stay till trimmed */  \
        "    local lag = group(lv, 'lag')\n"                                   \
        "    if type(lag) ~= 'number' then\n"                                  \
        "      lag = redis.call('XLEN', skey(lv)) - p[1] end\n"                \
        "    waiting = waiting + lag\n"                                        \
        "    active = active + p[1]\n"                                         \
        "  end\n"                                                              \
        "  waiting = math.max(0, waiting - "                                   \
        "tonumber(redis.call('GET', Q .. 'wakes') or '0'))\n"                  \
        "  local due = redis.call('ZCOUNT', Q .. 'delayed', '-inf', ARGV[1])\n" \
        "  out[#out + 1] = {ARGV[i], waiting + due, "                          \
        "redis.call('ZCARD', Q .. 'delayed') - due, active, "                  \
        "redis.call('ZCARD', Q .. 'done'), redis.call('XLEN', Q .. 'dead')}\n" \
        "end\n"                                                                \
        "return out\n"

/*
 * The scripts of pxl-jobs (framework/bin/pxl_jobs_redis.c), each on one
 * queue (KEYS[1] = Q). Those that look at many jobs take at most a
 * batch of them per call, so that Redis, shared with the workers, is
 * never held long; the command calls again until a batch comes back
 * short.
 */

/*
 * One job as it is: {its hash as HGETALL gives it, the idle time (ms)
 * of its stream entry in the pending list while it is active, else -1}.
 * ARGV: id.
 */
#define PXL_QUEUE_LUA_SHOW                                                     \
        PXL_QUEUE_LUA_PRELUDE                                                  \
        "local h = redis.call('HGETALL', jkey(ARGV[1]))\n"                     \
        "local f, idle = {}, -1\n"                                             \
        "for i = 1, #h, 2 do f[h[i]] = h[i + 1] end\n"                         \
        "if f.state == 'active' and f.entry and f.priority then\n"             \
        "  local p = redis.pcall('XPENDING', skey(f.priority), 'pxl', "        \
        "f.entry, f.entry, 1)\n"                                               \
        "  if type(p) == 'table' and p[1] then idle = p[1][3] end\n"           \
        "end\n"                                                                \
        "return {h, idle}\n"

/*
 * The dead jobs, the oldest death first: up to ARGV[2] entries of
 * Q dead after entry ARGV[1] ('' from the first). Returns {entries
 * looked at, the last of them, {id, attempt, attempts, error,
 * finished_at}...}; an entry whose job is not dead with that entry is
 * left out.
 */
#define PXL_QUEUE_LUA_DEAD                                                     \
        PXL_QUEUE_LUA_PRELUDE                                                  \
        "local from = '-'\n"                                                   \
        "if ARGV[1] ~= '' then from = '(' .. ARGV[1] end\n"                    \
        "local es = redis.call('XRANGE', Q .. 'dead', from, '+', 'COUNT', "    \
        "ARGV[2])\n"                                                           \
        "local out = {#es, es[#es] and es[#es][1] or ''}\n"                    \
        "for _, en in ipairs(es) do\n"                                         \
        "  local f = en[2]\n"                                                  \
        "  if f[1] == 'j' then\n"                                              \
        "    local h = redis.call('HMGET', jkey(f[2]), 'state', "              \
        "'dead_entry', 'attempt', 'attempts', 'error', 'finished_at')\n"       \
        "    if h[1] == 'dead' and h[2] == en[1] then\n"                       \
        "      out[#out + 1] = {f[2], h[3], h[4], h[5], h[6]}\n"               \
        "    end\n"                                                            \
        "  end\n"                                                              \
        "end\n"                                                                \
        "return out\n"

/*
 * Dead jobs back to waiting, to run now at their priority with their
 * attempts anew; the error stays until they run. ARGV: now, then an id,
 * or '', the last entry of Q dead to look at and how many entries at
 * most (each one looked at leaves Q dead). Returns {retried, entries
 * looked at, state}: state is the job's when the id given is not dead
 * (none: no such job).
 */
#define PXL_QUEUE_LUA_RETRY                                                    \
        PXL_QUEUE_LUA_PRELUDE                                                  \
        "local function revive(id)\n"                                          \
        "  local h = redis.call('HMGET', jkey(id), 'state', 'dead_entry', "    \
        "'priority')\n"                                                        \
        "  if h[1] ~= 'dead' then return h[1] end\n"                           \
        "  if h[2] then redis.call('XDEL', Q .. 'dead', h[2]) end\n"           \
        "  redis.call('HSET', jkey(id), 'attempt', 0, 'run_at', ARGV[1])\n"    \
        "  redis.call('HDEL', jkey(id), 'finished_at', 'dead_entry')\n"        \
        "  enqueue(id, h[3] or '0')\n"                                         \
        "  return true\n"                                                      \
        "end\n"                                                                \
        "if ARGV[2] ~= '' then\n"                                              \
        "  local s = revive(ARGV[2])\n"                                        \
        "  if s == true then return {1, 1} end\n"                              \
        "  return {0, 1, s}\n"                                                 \
        "end\n"                                                                \
        "local n = 0\n"                                                        \
        "local es = redis.call('XRANGE', Q .. 'dead', '-', ARGV[3], "          \
        "'COUNT', ARGV[4])\n"                                                  \
        "for _, en in ipairs(es) do\n"                                         \
        "  local f = en[2]\n"                                                  \
        "  redis.call('XDEL', Q .. 'dead', en[1])\n"                           \
        "  if f[1] == 'j' and redis.call('HGET', jkey(f[2]), 'dead_entry') "   \
        "== en[1] and revive(f[2]) == true then\n"                             \
        "    n = n + 1\n"                                                      \
        "  end\n"                                                              \
        "end\n"                                                                \
        "return {n, #es}\n"

/*
 * Remove completed jobs, the oldest first: up to ARGV[2] of Q done whose
 * score (finished_at) is ARGV[1] at most ('(' T: before T; '+inf': all),
 * but not a schedule's tick that completed after ARGV[3] (ms), which a
 * worker whose tick rings late must still find (the workers' trimming
 * spares it too). A job of another state is never removed. Returns
 * {removed, looked at}.
 */
#define PXL_QUEUE_LUA_CLEAN                                                    \
        PXL_QUEUE_LUA_PRELUDE                                                  \
        "local n = 0\n"                                                        \
        "local ids = redis.call('ZRANGEBYSCORE', Q .. 'done', '-inf', "        \
        "ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])\n"                        \
        "for i = 1, #ids, 2 do\n"                                              \
        "  local id = ids[i]\n"                                                \
        "  if string.sub(id, 1, 9) ~= 'schedule:' or "                         \
        "tonumber(ids[i + 1]) <= tonumber(ARGV[3]) then\n"                     \
        "    if redis.call('HGET', jkey(id), 'state') == 'completed' then\n"   \
        "      redis.call('DEL', jkey(id))\n"                                  \
        "      n = n + 1\n"                                                    \
        "    end\n"                                                            \
        "    redis.call('ZREM', Q .. 'done', id)\n"                            \
        "  end\n"                                                              \
        "end\n"                                                                \
        "return {n, #ids / 2}\n"

#endif
