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

/* The longest frame (internal.h): a process list no longer than its bytes
 * bound over this cannot be past the bound. */
#define CHL__FRAME_MAX "1048840"
_Static_assert(CHL__MSG_MAX + CHL__HEADER_MAX == 1048840, "CHL__FRAME_MAX");

/* Pushes frames (a table) onto list k in one LPUSH, whose answer, the new
 * length, is the capacity check: those that pass the capacity cap (< 0:
 * none) are taken back off the head, the newest, so that a full list
 * refuses and is left as it is; the answer is how many were pushed, the
 * first ones. A process list is full at max bytes too: its byte counter b
 * counts what it holds, less what its process popped (a plain DECRBY after
 * a pop that may have left something). It is kept only while the list is
 * long enough to reach max (short elements or fewer cannot): a push that
 * finds the list short counts again what it holds, so that a lost count
 * heals, and one onto a list that stays short touches no counter; a count
 * below 0 is one that was taken down after the list was counted last, and
 * starts again at 0 too. A discard (cap < 0) is pushed whatever the list
 * holds, and counted. */
#define CHL__PUSH                                                                                  \
    "local function push(k, frames, cap, b, max)\n"                                                \
    "  local nf = #frames\n"                                                                       \
    "  local len = redis.call('LPUSH', k, unpack(frames))\n"                                       \
    "  local before, fit = len - nf, nf\n"                                                         \
    "  if cap >= 0 and len > cap then fit = math.max(cap - before, 0) end\n"                       \
    "  local short = b and math.floor(max / " CHL__FRAME_MAX ")\n"                                 \
    "  if short and len > short then\n"                                                            \
    "    local all, used, kept, j = 0, 0, 0, 0\n"                                                  \
    "    for i = 1, nf do all = all + #frames[i] end\n"                                            \
    "    local fresh = before <= short\n"                                                          \
    "    if fresh then\n"                                                                          \
    "      for _, e in ipairs(redis.call('LRANGE', k, nf, -1)) do used = used + #e end\n"          \
    "    else\n"                                                                                   \
    "      used = redis.call('INCRBY', b, all) - all\n"                                            \
    "      if used < 0 then fresh, used = true, 0 end\n"                                           \
    "    end\n"                                                                                    \
    "    while j < fit and (cap < 0 or used + kept + #frames[j + 1] <= max) do\n"                  \
    "      kept = kept + #frames[j + 1]\n"                                                         \
    "      j = j + 1\n"                                                                            \
    "    end\n"                                                                                    \
    "    fit = j\n"                                                                                \
    "    if fresh then redis.call('SET', b, used + kept)\n"                                        \
    "    elseif kept < all then redis.call('DECRBY', b, all - kept) end\n"                         \
    "  end\n"                                                                                      \
    "  if fit < nf then redis.call('LPOP', k, nf - fit) end\n"                                     \
    "  return fit\n"                                                                               \
    "end\n"

/* One frame or several (ARGV[4], ...), pushed as above; with a process
 * list's byte counter (KEYS[2]), bounded by ARGV[3] bytes too. A ttl of 0
 * leaves the list's expiry alone: a reliable queue does not expire (its
 * messages' deadlines do), nor does a group copy's process list (the
 * reaper removes a dead process's, and its counter). */
static const char send_lua[] = CHL__PUSH
    "local k = push(KEYS[1], {unpack(ARGV, 4)}, tonumber(ARGV[1]), KEYS[2], tonumber(ARGV[3]))\n"
    "if k > 0 and ARGV[2] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end\n"
    "return k\n";

/* The copies of one group message for the processes living on one shard,
 * each list bounded by ARGV[5] bytes (its counter named with prefix
 * ARGV[6]). A named message (ARGV[3], kept ARGV[4] ms) whose name is set
 * already was pushed here before: it pushes nothing. Marking and pushing
 * are one atomic step, so a replayed envelope's message arrives once. */
static const char mpush_lua[] = CHL__PUSH
    "if ARGV[3] ~= '' and\n"
    "   not redis.call('SET', ARGV[3], '1', 'NX', 'PX', ARGV[4]) then\n"
    "  return {0, -1}\n"
    "end\n"
    "local cap, max, prefix = tonumber(ARGV[1]), tonumber(ARGV[5]), ARGV[6]\n"
    "local frames, dropped = {ARGV[2]}, 0\n"
    "for i = 1, #KEYS do\n"
    "  local b = prefix .. 'bytes:' .. string.sub(KEYS[i], #prefix + 1, -2)\n"
    "  dropped = dropped + 1 - push(KEYS[i], frames, cap, b, max)\n"
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

/* Drops the members of group (zset z, hash h of member counts per process)
 * not refreshed within expiry seconds; each process whose count falls to
 * nothing forgets the group. Their cost is paid once; a sender asks for it
 * now and then (every few seconds), not with every send. */
#define CHL__SWEEP                                                                                 \
    "local function sweep(z, h, expiry, group, prefix)\n"                                          \
    CHL__NOW                                                                                       \
    "  local cutoff = string.format('(%d', now - tonumber(expiry) * 1000)\n"                       \
    "  local old = redis.call('ZRANGEBYSCORE', z, '-inf', cutoff)\n"                               \
    "  for _, m in ipairs(old) do\n"                                                               \
    "    local bang = string.find(m, '!', 1, true)\n"                                              \
    "    if bang then\n"                                                                           \
    "      local p = string.sub(m, 1, bang - 1)\n"                                                 \
    "      if redis.call('HINCRBY', h, p, -1) <= 0 then\n"                                         \
    "        redis.call('HDEL', h, p)\n"                                                           \
    "        redis.call('SREM', prefix .. 'pgroups:' .. p, group)\n"                               \
    "      end\n"                                                                                  \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  if #old > 0 then redis.call('ZREMRANGEBYSCORE', z, '-inf', cutoff) end\n"                   \
    "end\n"

/* With several shards: the processes with members of one group (ARGV[3]),
 * after the stale members when asked (ARGV[1] is the group expiry, or 0),
 * for the sender to push a copy to each on their own shards (mpush). The
 * work grows with processes, not members. */
static const char gsend_lua[] = CHL__SWEEP
    "if ARGV[1] ~= '0' then sweep(KEYS[1], KEYS[2], ARGV[1], ARGV[3], ARGV[2]) end\n"
    "local procs = redis.call('HKEYS', KEYS[2])\n"
    "local r = {0, #procs}\n"
    "for i, p in ipairs(procs) do r[i + 2] = p end\n"
    "return r\n";

/* With one shard: the messages of a batch, in order, in one step. Each
 * goes to every process with members of its group, named messages once
 * (a name set already was pushed before: nothing then). What one process
 * list gets goes in one push (above), in the batch's order; those past its
 * capacity or its bytes are the newest it was given, dropped for it. Per
 * message i (KEYS zset, hash at 2i-1, 2i; ARGV at 4i + 1: expiry or 0,
 * group, name or "", frame): copies dropped, or -1 when its name was set
 * already. A batch of one, the usual one at low rates, goes straight to
 * its processes, without the tables that order a batch's pushes. */
static const char gsendn_lua[] = CHL__SWEEP CHL__PUSH
    "local prefix, cap, nttl, max = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])\n"
    "if #KEYS == 2 then\n"
    "  if ARGV[5] ~= '0' then sweep(KEYS[1], KEYS[2], ARGV[5], ARGV[6], prefix) end\n"
    "  if ARGV[7] ~= '' and not redis.call('SET', ARGV[7], '1', 'NX', 'PX', nttl) then\n"
    "    return {-1}\n"
    "  end\n"
    "  local frames, dropped = {ARGV[8]}, 0\n"
    "  for _, p in ipairs(redis.call('HKEYS', KEYS[2])) do\n"
    "    dropped = dropped + 1 - push(prefix .. p .. '!', frames, cap, prefix .. 'bytes:' .. p, max)\n"
    "  end\n"
    "  return {dropped}\n"
    "end\n"
    "local out, lists, order, procs_of = {}, {}, {}, {}\n"
    "for i = 1, #KEYS / 2 do\n"
    "  local z, h, a = KEYS[2 * i - 1], KEYS[2 * i], 4 * i + 1\n"
    "  if ARGV[a] ~= '0' then\n"
    "    sweep(z, h, ARGV[a], ARGV[a + 1], prefix)\n"
    "    procs_of[h] = nil\n"
    "  end\n"
    "  local procs = procs_of[h]\n"
    "  if not procs then\n"
    "    procs = redis.call('HKEYS', h)\n"
    "    procs_of[h] = procs\n"
    "  end\n"
    "  out[i] = 0\n"
    "  if ARGV[a + 2] ~= '' and\n"
    "     not redis.call('SET', ARGV[a + 2], '1', 'NX', 'PX', nttl) then\n"
    "    out[i] = -1\n"
    "  else\n"
    "    for _, p in ipairs(procs) do\n"
    "      local l = lists[p]\n"
    "      if not l then\n"
    "        l = {}\n"
    "        lists[p] = l\n"
    "        order[#order + 1] = p\n"
    "      end\n"
    "      l[#l + 1] = i\n"
    "    end\n"
    "  end\n"
    "end\n"
    "for _, p in ipairs(order) do\n"
    "  local those, frames = lists[p], {}\n"
    "  for j, i in ipairs(those) do frames[j] = ARGV[4 * i + 4] end\n"
    "  local fit = push(prefix .. p .. '!', frames, cap, prefix .. 'bytes:' .. p, max)\n"
    "  for j = fit + 1, #those do out[those[j]] = out[those[j]] + 1 end\n"
    "end\n"
    "return out\n";

/* In-flight lists hold the newest element on the left; pushing them back on
 * the right of the queue in that order puts the oldest next in line. Each
 * goes back to the queue its frame names, marked as having more behind it
 * ('M') or not: a mark that is stale now costs a worker one look. */
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
                                  "      local q = string.match(el, '^[mM]%d+|([%w%._%-]+)\\n')\n"
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
                                 "redis.call('DEL', prefix .. pre, prefix .. 'bytes:' .. p)\n"
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

/* A batch: up to n elements, oldest first, moved into the in-flight list
 * in two commands however many wait (one when none does), and left there
 * newest on the left, as one LMOVE RIGHT LEFT after another would. */
static const char moven_lua[] = "local moved = redis.call('RPOP', KEYS[1], ARGV[1])\n"
                                "if not moved then return {} end\n"
                                "redis.call('LPUSH', KEYS[2], unpack(moved))\n"
                                "return moved\n";

/* clang-format on */

const char *chl__script(enum chl__script_id id)
{
    static const char *const scripts[CHL__S_COUNT] = {
        [CHL__S_SEND] = send_lua,     [CHL__S_MPUSH] = mpush_lua,   [CHL__S_GADD] = gadd_lua,
        [CHL__S_GDISC] = gdisc_lua,   [CHL__S_GSEND] = gsend_lua,   [CHL__S_REQUEUE] = requeue_lua,
        [CHL__S_FORGET] = forget_lua, [CHL__S_RATE] = rate_lua,     [CHL__S_REAP] = reap_lua,
        [CHL__S_MOVEN] = moven_lua,   [CHL__S_GSENDN] = gsendn_lua,
    };
    return (unsigned)id < CHL__S_COUNT ? scripts[id] : "";
}
