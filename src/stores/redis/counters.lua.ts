/**
 * The Lua script behind RedisCounterStore: one request (JSON in ARGV[1]) runs atomically inside Redis, so a check and
 * its reservation, a window rolling over and a lapsed hold given back can never interleave with another replica's.
 * Windows mirror src/limits/window.ts RollingWindow: a hash per subject and window with `h` (head bucket index),
 * `t:<dim>` (totals) and `<slot>:<dim>` (bucket counts); numbers are written with 17 digits so doubles round-trip.
 */
export const COUNTERS_LUA = `
local req = cjson.decode(ARGV[1])
local now = req.now
local P = req.p
local dims = req.dims
local holdsKey = P .. 'c:holds'

local function fmt(x) return string.format('%.17g', x) end
local function num(v) if v then return tonumber(v) end return 0 end

local function winKey(kind, name, win) return P .. 'c:' .. kind .. ':' .. name .. ':' .. win end

-- Drop the buckets that slid out since the last call; returns the head, or nil when the window does not exist.
local function advance(key, bms, n, create)
  local idx = math.floor(now / bms)
  local h = redis.call('HGET', key, 'h')
  if not h then
    if not create then return nil end
    redis.call('HSET', key, 'h', idx)
    return idx
  end
  local head = tonumber(h)
  if idx <= head then return head end
  if idx - head >= n then
    redis.call('DEL', key)
    redis.call('HSET', key, 'h', idx)
    return idx
  end
  for b = head + 1, idx do
    local slot = b % n
    for _, d in ipairs(dims) do
      local f = slot .. ':' .. d
      local v = redis.call('HGET', key, f)
      if v then
        redis.call('HSET', key, 't:' .. d, fmt(num(redis.call('HGET', key, 't:' .. d)) - tonumber(v)))
        redis.call('HDEL', key, f)
      end
    end
  end
  redis.call('HSET', key, 'h', idx)
  return idx
end

local function windowsOf(kind, name, create, win)
  local out = {}
  local any = false
  for _, w in ipairs(win) do
    local key = winKey(kind, name, w[1])
    local head = advance(key, w[2], w[3], create)
    if head then any = true end
    out[w[1]] = { key = key, bms = w[2], n = w[3], head = head }
  end
  if any then return out end
  return nil
end

local function touch(key, w)
  redis.call('PEXPIRE', key, w.bms * (w.n + 1))
end

-- Add amt (times sign) to the workflow and to the newest bucket of every window given.
local function count(wfKey, subjects, amt, sign)
  for d, n in pairs(amt) do
    if n ~= 0 then
      redis.call('HSET', wfKey, d, fmt(num(redis.call('HGET', wfKey, d)) + sign * n))
      for _, ws in ipairs(subjects) do
        for _, w in pairs(ws) do
          if w.head then
            local f = (w.head % w.n) .. ':' .. d
            redis.call('HSET', w.key, f, fmt(num(redis.call('HGET', w.key, f)) + sign * n))
            redis.call('HSET', w.key, 't:' .. d, fmt(num(redis.call('HGET', w.key, 't:' .. d)) + sign * n))
          end
        end
      end
    end
  end
  redis.call('PEXPIRE', wfKey, req.retain)
  for _, ws in ipairs(subjects) do for _, w in pairs(ws) do touch(w.key, w) end end
end

local function wfKeyOf(id) return P .. 'c:wf:' .. id end

local function ensureWorkflow(key)
  redis.call('HSETNX', key, '@s', fmt(now))
  redis.call('PEXPIRE', key, req.retain)
  return tonumber(redis.call('HGET', key, '@s'))
end

-- Give a hold back where it was counted: the workflow always, each window only while its bucket is still inside.
local function giveBack(hk)
  local raw = redis.call('HGET', hk, 'r')
  if raw then
    local h = cjson.decode(raw)
    local wfKey = wfKeyOf(h.wf)
    if redis.call('EXISTS', wfKey) == 1 then
      for d, n in pairs(h.amt) do
        if n ~= 0 then redis.call('HSET', wfKey, d, fmt(num(redis.call('HGET', wfKey, d)) - n)) end
      end
    end
    local subjects = { { 'a', h.agent } }
    if h.team then subjects[2] = { 't', h.team } end
    for _, s in ipairs(subjects) do
      for _, w in ipairs(h.win) do
        local key = winKey(s[1], s[2], w[1])
        local at = redis.call('HGET', hk, 'h:' .. key)
        local head = advance(key, w[2], w[3], false)
        if at and head and tonumber(at) > head - w[3] then
          local slot = tonumber(at) % w[3]
          for d, n in pairs(h.amt) do
            if n ~= 0 then
              local f = slot .. ':' .. d
              redis.call('HSET', key, f, fmt(num(redis.call('HGET', key, f)) - n))
              redis.call('HSET', key, 't:' .. d, fmt(num(redis.call('HGET', key, 't:' .. d)) - n))
            end
          end
        end
      end
    end
  end
  redis.call('DEL', hk)
end

local function sweep()
  local ids = redis.call('ZRANGEBYSCORE', holdsKey, '-inf', now, 'LIMIT', 0, req.sweep)
  for _, id in ipairs(ids) do
    giveBack(P .. 'c:hold:' .. id)
    redis.call('ZREM', holdsKey, id)
  end
end

local function breaks(mode, used, max, need)
  if mode == 'spent' then return used >= max end
  return used + need > max
end

local function freesAt(w, d, thr)
  if not (thr > 0) then return nil end
  local left = num(redis.call('HGET', w.key, 't:' .. d))
  if left < thr then return now end
  for b = w.head - w.n + 1, w.head do
    if b >= 0 then
      left = left - num(redis.call('HGET', w.key, (b % w.n) .. ':' .. d))
      if left < thr then return (b + w.n) * w.bms end
    end
  end
  return (w.head + w.n) * w.bms
end

local op = req.op

if op == 'windows' then
  local ws = windowsOf(req.kind, req.name, false, req.win)
  if not ws then return false end
  local out = {}
  for _, w in ipairs(req.win) do
    local key = ws[w[1]].key
    for _, d in ipairs(dims) do out[#out + 1] = fmt(num(redis.call('HGET', key, 't:' .. d))) end
  end
  return out
end

if op == 'begin' then
  local key = wfKeyOf(req.wf)
  local s = redis.call('HGET', key, '@s')
  if (not s) or tonumber(s) > req.at then redis.call('HSET', key, '@s', fmt(req.at)) end
  redis.call('PEXPIRE', key, req.retain)
  return false
end

if op == 'check' or op == 'reserve' then sweep() end

local wfKey = wfKeyOf(req.wf)
local startedAt = ensureWorkflow(wfKey)
local agent = windowsOf('a', req.agent, true, req.win)
local team = nil
if req.team then team = windowsOf('t', req.team, true, req.win) end
local subjects = { agent }
if team then subjects[2] = team end

if op == 'touch' then return false end

if op == 'add' then
  count(wfKey, subjects, req.amt, 1)
  return false
end

if op == 'release' then
  if req.hold then
    local hk = P .. 'c:hold:' .. req.hold.id
    if redis.call('EXISTS', hk) == 1 then
      giveBack(hk)
      redis.call('ZREM', holdsKey, req.hold.id)
    end
    return false
  end
  count(wfKey, subjects, req.amt, -1)
  return false
end

if op == 'settle' then
  -- Alive: count the difference from what was reserved; lapsed (already given back): count all of it again.
  local alive = false
  if req.hold then
    local hk = P .. 'c:hold:' .. req.hold.id
    alive = redis.call('EXISTS', hk) == 1
    redis.call('DEL', hk)
    redis.call('ZREM', holdsKey, req.hold.id)
  else
    alive = true
  end
  local delta = {}
  for d, n in pairs(req.amt) do
    local final = n
    if req.used[d] ~= nil then final = req.used[d] end
    if alive then delta[d] = final - n else delta[d] = final end
  end
  count(wfKey, subjects, delta, 1)
  return false
end

-- check / reserve: the first limit that does not hold, as { index, used, freesAt or '' }.
for i, l in ipairs(req.lim) do
  local subj, win, d, max, mode, thr = l[1], l[2], l[3], l[4], l[5], l[6]
  local need = req.amt[d] or 0
  if subj == 'workflow' then
    local used
    if d == 'ageSeconds' then used = (now - startedAt) / 1000 else used = num(redis.call('HGET', wfKey, d)) end
    if breaks(mode, used, max, need) then return { tostring(i), fmt(used), 'x' } end
  else
    local ws = agent
    if subj == 'team' then ws = team end
    if ws and win ~= 'total' then
      local w = ws[win]
      local used = num(redis.call('HGET', w.key, 't:' .. d))
      if breaks(mode, used, max, need) then
        local fa = freesAt(w, d, thr)
        if fa then return { tostring(i), fmt(used), fmt(fa) } end
        return { tostring(i), fmt(used), '' }
      end
    end
  end
end

if op == 'reserve' then
  count(wfKey, subjects, req.amt, 1)
  if req.hold then
    local hk = P .. 'c:hold:' .. req.hold.id
    redis.call('HSET', hk, 'r', ARGV[2])
    for _, ws in ipairs(subjects) do
      for _, w in pairs(ws) do redis.call('HSET', hk, 'h:' .. w.key, w.head) end
    end
    redis.call('PEXPIRE', hk, req.hold.ms * 2 + 3600000)
    redis.call('ZADD', holdsKey, req.hold.exp, req.hold.id)
  end
end
return false
`;
