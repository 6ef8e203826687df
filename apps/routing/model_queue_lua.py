"""The Lua scripts of the fair model queue (apps/routing/model_queue.py, whose docstring
names the keys they keep): each change to the queue is one of them, run atomically by
Redis.
"""

# Shared by every script: P is the key prefix (ARGV[1]).
LUA_COMMON = """
local P = ARGV[1]
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function forget(t)
  local uid = redis.call('HGET', P .. 'owner', t)
  if uid then
    local mine = P .. 'user:' .. uid
    redis.call('LREM', mine, 0, t)
    if redis.call('LLEN', mine) == 0 then redis.call('LREM', P .. 'rotation', 0, uid) end
    redis.call('HDEL', P .. 'owner', t)
  end
  redis.call('ZREM', P .. 'waiting', t)
end
-- Drop what outlived its deadline, then give each free slot to the next in turn: the
-- first ticket of the user at the head of the rotation, who goes to its tail if more of
-- their tickets wait.
local function tidy(now, slots, ttl)
  redis.call('ZREMRANGEBYSCORE', P .. 'slots', '-inf', now)
  for _, t in ipairs(redis.call('ZRANGEBYSCORE', P .. 'waiting', '-inf', now)) do
    forget(t)
  end
  while redis.call('ZCARD', P .. 'slots') < slots do
    local uid = redis.call('LPOP', P .. 'rotation')
    if not uid then break end
    local mine = P .. 'user:' .. uid
    local t = redis.call('LPOP', mine)
    if redis.call('LLEN', mine) > 0 then redis.call('RPUSH', P .. 'rotation', uid) end
    if t then
      redis.call('HDEL', P .. 'owner', t)
      redis.call('ZREM', P .. 'waiting', t)
      redis.call('ZADD', P .. 'slots', now + ttl, t)
    end
  end
end
-- Tickets served before t: for the i-th ticket (from 0) of its user, each user's first
-- i tickets, plus the (i+1)-th of each user ahead of its user in the rotation.
local function ahead(t)
  local uid = redis.call('HGET', P .. 'owner', t)
  if not uid then return nil end
  local i = redis.call('LPOS', P .. 'user:' .. uid, t)
  if not i then return nil end
  local n, before = 0, true
  for _, v in ipairs(redis.call('LRANGE', P .. 'rotation', 0, -1)) do
    if v == uid then before = false end
    local len = redis.call('LLEN', P .. 'user:' .. v)
    n = n + math.min(len, i)
    if before and len > i then n = n + 1 end
  end
  return n
end
"""

# ARGV: prefix, slots, ttl, max_length, ticket, user key → -1 admitted, -2 full, else ahead.
JOIN = (
    LUA_COMMON
    + """
local slots, ttl, longest = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local t, uid = ARGV[5], ARGV[6]
local now = clock()
tidy(now, slots, ttl)
if redis.call('ZCARD', P .. 'slots') < slots then
  redis.call('ZADD', P .. 'slots', now + ttl, t)
  return -1
end
if redis.call('ZCARD', P .. 'waiting') >= longest then return -2 end
if redis.call('RPUSH', P .. 'user:' .. uid, t) == 1 then
  redis.call('RPUSH', P .. 'rotation', uid)
end
redis.call('HSET', P .. 'owner', t, uid)
redis.call('ZADD', P .. 'waiting', now + ttl, t)
return ahead(t)
"""
)

# ARGV: prefix, slots, ttl, ticket → -1 admitted, -3 lost (past its deadline), else ahead.
POLL = (
    LUA_COMMON
    + """
local slots, ttl, t = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local now = clock()
tidy(now, slots, ttl)
if redis.call('ZSCORE', P .. 'slots', t) then
  redis.call('ZADD', P .. 'slots', now + ttl, t)
  return -1
end
if not redis.call('ZSCORE', P .. 'waiting', t) then return -3 end
redis.call('ZADD', P .. 'waiting', now + ttl, t)
return ahead(t)
"""
)

# ARGV: prefix, ttl, ticket → 1 its slot, 2 its place, within their deadline, pushed on;
# 0 it holds neither (not yet tidied away counts as neither: nothing past it is revived).
HOLD = (
    LUA_COMMON
    + """
local ttl, t = tonumber(ARGV[2]), ARGV[3]
local now = clock()
for i, key in ipairs({'slots', 'waiting'}) do
  local deadline = redis.call('ZSCORE', P .. key, t)
  if deadline and tonumber(deadline) > now then
    redis.call('ZADD', P .. key, now + ttl, t)
    return i
  end
end
return 0
"""
)

# ARGV: prefix, slots, ttl, ticket: gives up its slot or its place; the next in turn
# gets the slot at once.
LEAVE = (
    LUA_COMMON
    + """
local slots, ttl, t = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREM', P .. 'slots', t)
forget(t)
tidy(clock(), slots, ttl)
return 0
"""
)

# ARGV: prefix → {waiting, slots held}, counting only what is within its deadline.
STATE = (
    LUA_COMMON
    + """
local now = clock()
return {redis.call('ZCOUNT', P .. 'waiting', '(' .. now, '+inf'),
        redis.call('ZCOUNT', P .. 'slots', '(' .. now, '+inf')}
"""
)
