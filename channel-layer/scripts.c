/*
 * channel-layer/scripts.c: the Lua scripts of the channel layer. Each runs
 * atomically on one shard; both front ends load them once per connection
 * (SCRIPT LOAD) and call them by SHA. The arguments of each are listed in
 * internal.h.
 *
 * Times inside scripts come from the server (TIME), so that group expiry
 * does not depend on the clocks of the clients.
 */
#include "channel-layer/internal.h"

/* The Lua text is laid out by hand. */
/* clang-format off */
#define CHL__NOW                                                                                   \
    "local t = redis.call('TIME')\n"                                                               \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

/* Capacity check and push in one step: a full list refuses and is left
 * as it is. A process list (its byte counter b given) is full at cap
 * elements or max bytes; its counter counts the bytes of what it holds
 * (chl__popped takes away what is popped) and starts again at 0 whenever
 * the list is found empty, so that a lost count heals. cap < 0 pushes
 * whatever the list holds (a discard, which the process must not miss). */
#define CHL__PUSH                                                                                  \
    "local function push(k, b, cap, max, frame, ttl)\n"                                            \
    "  local n = redis.call('LLEN', k)\n"                                                          \
    "  local used = 0\n"                                                                           \
    "  if b and n > 0 then used = tonumber(redis.call('GET', b) or '0') end\n"                     \
    "  if cap >= 0 and (n >= cap or (b and used + #frame > max)) then return 0 end\n"              \
    "  redis.call('LPUSH', k, frame)\n"                                                            \
    "  redis.call('PEXPIRE', k, ttl)\n"                                                            \
    "  if b then redis.call('SET', b, used + #frame, 'PX', ttl) end\n"                             \
    "  return 1\n"                                                                                 \
    "end\n"

static const char send_lua[] = CHL__PUSH "return push(KEYS[1], KEYS[2], tonumber(ARGV[1]),\n"
                                         "  tonumber(ARGV[4]), ARGV[3], ARGV[2])\n";

/* What a process popped from its list (KEYS[1]) leaves its byte counter
 * (KEYS[2]); an empty list has nothing to count. */
static const char popped_lua[] = "local c = redis.call('DECRBY', KEYS[2], ARGV[1])\n"
                                 "if c <= 0 or redis.call('LLEN', KEYS[1]) == 0 then\n"
                                 "  redis.call('DEL', KEYS[2])\n"
                                 "end\n"
                                 "return 0\n";

/* The copies of one group message for the processes living on one shard.
 * A named message (ARGV[4], kept ARGV[5] ms) whose name is set already was
 * pushed here before: it pushes nothing. Marking and pushing are one atomic
 * step, so a replayed envelope's message arrives once. */
static const char mpush_lua[] =
    CHL__PUSH "if ARGV[4] ~= '' and\n"
              "   not redis.call('SET', ARGV[4], '1', 'NX', 'PX', ARGV[5]) then\n"
              "  return {0, -1}\n"
              "end\n"
              "local cap, max, prefix = tonumber(ARGV[1]), tonumber(ARGV[6]), ARGV[7]\n"
              "local dropped = 0\n"
              "for i = 1, #KEYS do\n"
              "  local b = prefix .. 'bytes:' .. string.sub(KEYS[i], #prefix + 1, -2)\n"
              "  if push(KEYS[i], b, cap, max, ARGV[3], ARGV[2]) == 0 then\n"
              "    dropped = dropped + 1\n"
              "  end\n"
              "end\n"
              "return {dropped, #KEYS}\n";

/* The process count moves only when the member is new, so it stays exact
 * when a member is added again to refresh it. */
static const char gadd_lua[] =
    CHL__NOW "local added = redis.call('ZADD', KEYS[1], now, ARGV[1])\n"
             "if added == 1 then redis.call('HINCRBY', KEYS[2], ARGV[2], 1) end\n"
             "redis.call('SADD', KEYS[3], ARGV[3])\n"
             "local ex = tonumber(ARGV[4])\n"
             "redis.call('EXPIRE', KEYS[1], ex)\n"
             "redis.call('EXPIRE', KEYS[2], ex)\n"
             "redis.call('EXPIRE', KEYS[3], ex)\n"
             "return added\n";

static const char gdisc_lua[] = "local removed = redis.call('ZREM', KEYS[1], ARGV[1])\n"
                                "if removed == 1 then\n"
                                "  local c = redis.call('HINCRBY', KEYS[2], ARGV[2], -1)\n"
                                "  if c <= 0 then\n"
                                "    redis.call('HDEL', KEYS[2], ARGV[2])\n"
                                "    redis.call('SREM', KEYS[3], ARGV[3])\n"
                                "  end\n"
                                "end\n"
                                "return removed\n";

/* Expire stale members first (their cost is paid once), then one copy per
 * process: the work grows with processes, not members. With one shard it
 * pushes the copies itself, and marks a named message as mpush does. */
static const char gsend_lua[] =
    CHL__NOW CHL__PUSH "local prefix = ARGV[2]\n"
             "local cutoff = string.format('(%d', now - tonumber(ARGV[1]) * 1000)\n"
             "local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)\n"
             "for _, m in ipairs(old) do\n"
             "  local bang = string.find(m, '!', 1, true)\n"
             "  if bang then\n"
             "    local p = string.sub(m, 1, bang - 1)\n"
             "    local c = redis.call('HINCRBY', KEYS[2], p, -1)\n"
             "    if c <= 0 then\n"
             "      redis.call('HDEL', KEYS[2], p)\n"
             "      redis.call('SREM', prefix .. 'pgroups:' .. p, ARGV[7])\n"
             "    end\n"
             "  end\n"
             "end\n"
             "if #old > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff) end\n"
             "local procs = redis.call('HKEYS', KEYS[2])\n"
             "if ARGV[3] ~= '1' then\n"
             "  local r = {0, #procs}\n"
             "  for i, p in ipairs(procs) do r[i + 2] = p end\n"
             "  return r\n"
             "end\n"
             "if ARGV[8] ~= '' and\n"
             "   not redis.call('SET', ARGV[8], '1', 'NX', 'PX', ARGV[9]) then\n"
             "  return {0, -1}\n"
             "end\n"
             "local cap, max = tonumber(ARGV[4]), tonumber(ARGV[10])\n"
             "local dropped = 0\n"
             "for _, p in ipairs(procs) do\n"
             "  if push(prefix .. p .. '!', prefix .. 'bytes:' .. p, cap, max, ARGV[6],\n"
             "          ARGV[5]) == 0 then\n"
             "    dropped = dropped + 1\n"
             "  end\n"
             "end\n"
             "return {dropped, #procs}\n";

/* In-flight lists hold the newest element on the left; pushing them back on
 * the right of the queue in that order puts the oldest next in line. */
static const char requeue_lua[] = "local prefix, self, ttl = ARGV[1], ARGV[2], ARGV[3]\n"
                                  "redis.call('SET', prefix .. 'hb:' .. self, '1', 'PX', ttl)\n"
                                  "redis.call('SADD', KEYS[1], self)\n"
                                  "local moved = 0\n"
                                  "for _, w in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
                                  "  if redis.call('EXISTS', prefix .. 'hb:' .. w) == 0 then\n"
                                  "    local inflight = prefix .. 'inflight:' .. w\n"
                                  "    while true do\n"
                                  "      local el = redis.call('LPOP', inflight)\n"
                                  "      if not el then break end\n"
                                  "      local q = string.match(el, '^m%d+|([%w%._%-]+)\\n')\n"
                                  "      if q then\n"
                                  "        redis.call('RPUSH', prefix .. q, el)\n"
                                  "        moved = moved + 1\n"
                                  "      end\n"
                                  "    end\n"
                                  "    redis.call('SREM', KEYS[1], w)\n"
                                  "  end\n"
                                  "end\n"
                                  "return moved\n";

static const char forget_lua[] = "local prefix, p = ARGV[1], ARGV[2]\n"
                                 "local pre = p .. '!'\n"
                                 "local removed = 0\n"
                                 "for _, g in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
                                 "  local z = prefix .. 'group:' .. g\n"
                                 "  for _, m in ipairs(redis.call('ZRANGE', z, 0, -1)) do\n"
                                 "    if string.sub(m, 1, #pre) == pre then\n"
                                 "      redis.call('ZREM', z, m)\n"
                                 "      removed = removed + 1\n"
                                 "    end\n"
                                 "  end\n"
                                 "  redis.call('HDEL', prefix .. 'groupp:' .. g, p)\n"
                                 "end\n"
                                 "redis.call('DEL', KEYS[1])\n"
                                 "return removed\n";

/* A token bucket: full at first, refilled at ARGV[1] tokens a second up to
 * ARGV[2]; a take costs one token. "refused" counts refusals since the last
 * take that was allowed. The key lives as long as a refill to full takes. */
static const char rate_lua[] =
    CHL__NOW "local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
             "local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'refused')\n"
             "local tokens = tonumber(v[1]) or burst\n"
             "local ts = tonumber(v[2]) or now\n"
             "local refused = tonumber(v[3]) or 0\n"
             "if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate / 1000) end\n"
             "local allowed = 0\n"
             "if tokens >= 1 then\n"
             "  tokens = tokens - 1\n"
             "  allowed = 1\n"
             "  refused = 0\n"
             "else\n"
             "  refused = refused + 1\n"
             "end\n"
             "redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now, 'refused', refused)\n"
             "redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)\n"
             "return {allowed, refused}\n";

/* Each dead process is returned to one caller only: SREM decides. */
static const char reap_lua[] = "local dead = {}\n"
                               "for _, p in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
                               "  if redis.call('EXISTS', ARGV[1] .. 'hb:' .. p) == 0 then\n"
                               "    redis.call('SREM', KEYS[1], p)\n"
                               "    dead[#dead + 1] = p\n"
                               "  end\n"
                               "end\n"
                               "return dead\n";

/* The rest of a batch: one command however many wait, and one LMOVE that
 * finds nothing when none does. */
static const char moven_lua[] = "local moved = {}\n"
                                "for i = 1, tonumber(ARGV[1]) do\n"
                                "  local e = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')\n"
                                "  if not e then break end\n"
                                "  moved[i] = e\n"
                                "end\n"
                                "return moved\n";

/* clang-format on */

const char *chl__script(enum chl__script_id id)
{
    static const char *const scripts[CHL__S_COUNT] = {
        [CHL__S_SEND] = send_lua,     [CHL__S_MPUSH] = mpush_lua,   [CHL__S_GADD] = gadd_lua,
        [CHL__S_GDISC] = gdisc_lua,   [CHL__S_GSEND] = gsend_lua,   [CHL__S_REQUEUE] = requeue_lua,
        [CHL__S_FORGET] = forget_lua, [CHL__S_RATE] = rate_lua,     [CHL__S_REAP] = reap_lua,
        [CHL__S_MOVEN] = moven_lua,   [CHL__S_POPPED] = popped_lua,
    };
    return (unsigned)id < CHL__S_COUNT ? scripts[id] : "";
}
