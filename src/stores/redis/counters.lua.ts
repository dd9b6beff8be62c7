/**
 * The Lua script behind RedisCounterStore: one request runs atomically inside Redis, so a check and its reservation, a
 * window rolling over and a lapsed hold given back can never interleave with another replica's.
 * Windows mirror src/limits/window.ts RollingWindow. One hash per agent or team holds its four windows, window i
 * (1..4) as fields `i|h` (head bucket index), `i|t:<dim>` (totals) and `i|<slot>:<dim>` (bucket counts); a workflow is
 * a hash of `@s` (start) and its totals. Numbers are written with 17 digits so doubles round-trip exactly (Redis
 * formats a Lua number argument with %.17g itself).
 *
 * What is constant per store (key prefix, dimensions, windows, retention) is written into the script's text, so a run
 * decodes nothing it already knows (decision 0039). check and reserve, run on every step, take positional arguments:
 *   ARGV: op, now, workflow, agent, team ('' none, else '=' .. name), one amount per dimension ('' none),
 *         limit count L, then per limit: subject (w|a|t), window index (0: total), dimension, max, mode (r|s), threshold,
 *         start (epoch ms of the step's check, '' none: a workflow not yet counted starts then),
 *         then for a held reservation: hold id, hold ms, expiry, hold record (JSON)
 * Every other op takes its request as JSON in ARGV[2] (and nothing else).
 */
import { COUNTERS_STEP_LUA } from './counters-step.lua.js';

export interface CountersScriptConfig {
  prefix: string;
  dimensions: readonly string[];
  /** [name, bucket ms, buckets] per window, in WINDOW_NAMES order. */
  windows: ReadonlyArray<readonly [string, number, number]>;
  retainMs: number;
  sweepPerCall: number;
}

/** A Lua string literal for any text: every byte outside a safe set as a decimal escape. */
function luaString(s: string): string {
  let out = '"';
  for (const b of Buffer.from(s, 'utf8')) out += /[A-Za-z0-9_:.@|-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `\\${b}`;
  return out + '"';
}

function luaNumber(n: number): string {
  if (!Number.isFinite(n)) throw new RangeError(`counter script constant must be a finite number, got ${n}`);
  return String(n);
}

export function countersLua(c: CountersScriptConfig): string {
  const dims = `{ ${c.dimensions.map(luaString).join(', ')} }`;
  const win = `{ ${c.windows.map(([w, bms, n]) => `{ ${luaString(w)}, ${luaNumber(bms)}, ${luaNumber(n)} }`).join(', ')} }`;
  return `
local P = ${luaString(c.prefix)}
local dims = ${dims}
local win = ${win}
local RETAIN = ${luaNumber(c.retainMs)}
local SWEEP = ${luaNumber(c.sweepPerCall)}
${COUNTERS_BODY}`;
}

const COUNTERS_BODY = `
local op = ARGV[1]
local req
local now
if op == 'check' or op == 'reserve' then
  now = tonumber(ARGV[2])
else
  req = cjson.decode(ARGV[2])
  now = req.now
end
local holdsKey = P .. 'c:holds'
local monthMs = win[#win][2] * (win[#win][3] + 1)

local function fmt(x) return string.format('%.17g', x) end
-- Field prefixes of the four windows: letters, since number-to-string conversions are what costs most in Redis Lua.
local WP = { 'm', 'h', 'd', 'M' }
local function num(v) if v then return tonumber(v) end return 0 end

-- The subject's windows moved up to now (buckets that slid out dropped from the totals); nil when it has none.
local function subjectOf(kind, name, create)
  local key = P .. 'c:' .. kind .. ':' .. name
  local hf = {}
  for i = 1, #win do hf[i] = WP[i] .. '|h' end
  local heads = redis.call('HMGET', key, unpack(hf))
  local s = { key = key, w = {} }
  local any = false
  local set = {}
  for i, w in ipairs(win) do
    local bms, n = w[2], w[3]
    local idx = math.floor(now / bms)
    local head = heads[i] and tonumber(heads[i])
    if head then any = true end
    if not head then
      if create then
        head = idx
        set[#set + 1] = WP[i] .. '|h'
        set[#set + 1] = idx
      end
    elseif idx > head then
      local gone = {}
      local first = head + 1
      if idx - head >= n then first = idx - n + 1 end
      for b = first, idx do
        local slot = b % n
        local sp = WP[i] .. '|' .. slot .. ':'
        for _, d in ipairs(dims) do gone[#gone + 1] = sp .. d end
      end
      local tf = {}
      for m, d in ipairs(dims) do tf[m] = WP[i] .. '|t:' .. d end
      local totals = redis.call('HMGET', key, unpack(tf))
      local counts = redis.call('HMGET', key, unpack(gone))
      local M = #dims
      for m = 1, M do
        local t = num(totals[m])
        for j = m, #gone, M do if counts[j] then t = t - tonumber(counts[j]) end end
        -- A window all of whose buckets slid out is exactly empty.
        if idx - head >= n then t = 0 end
        set[#set + 1] = tf[m]
        set[#set + 1] = fmt(t)
      end
      redis.call('HDEL', key, unpack(gone))
      head = idx
      set[#set + 1] = WP[i] .. '|h'
      set[#set + 1] = idx
    end
    s.w[w[1]] = { i = WP[i], bms = bms, n = n, head = head }
  end
  if #set > 0 then
    redis.call('HSET', key, unpack(set))
    -- Heads move at most once a second: the subject's expiry is renewed then, not on every count.
    redis.call('PEXPIRE', key, monthMs)
  end
  if not any and not create then return nil end
  return s
end

-- Add deltas to fields of one hash: one read, one write.
local function bump(key, fields, deltas)
  if #fields == 0 then return end
  local cur = redis.call('HMGET', key, unpack(fields))
  local args = {}
  for i, f in ipairs(fields) do
    args[#args + 1] = f
    args[#args + 1] = fmt(num(cur[i]) + deltas[i])
  end
  redis.call('HSET', key, unpack(args))
end


-- Add amounts (a list of { dim, number }) to the workflow and to the newest bucket of every window of every subject
-- given: one read and one write per hash, in double arithmetic as the embedded stores count.
local function count(wfKey, subjects, adds)
  local ds, ns = {}, {}
  for j, a in ipairs(adds) do
    ds[j] = a[1]
    ns[j] = a[2]
  end
  bump(wfKey, ds, ns)
  redis.call('PEXPIRE', wfKey, RETAIN)
  for _, s in ipairs(subjects) do
    local fields, deltas = {}, {}
    for _, w in pairs(s.w) do
      local slot = w.i .. '|' .. (w.head % w.n) .. ':'
      local tp = w.i .. '|t:'
      for j, d in ipairs(ds) do
        fields[#fields + 1] = slot .. d
        deltas[#deltas + 1] = ns[j]
        fields[#fields + 1] = tp .. d
        deltas[#deltas + 1] = ns[j]
      end
    end
    bump(s.key, fields, deltas)
    redis.call('PEXPIRE', s.key, monthMs)
  end
end

local function addsOf(amt, negate)
  local out = {}
  for d, v in pairs(amt) do
    local n = tonumber(v)
    if n ~= 0 then
      if negate then n = -n end
      out[#out + 1] = { d, n }
    end
  end
  return out
end

local function wfKeyOf(id) return P .. 'c:wf:' .. id end

local function ensureWorkflow(key)
  redis.call('HSETNX', key, '@s', fmt(now))
  return tonumber(redis.call('HGET', key, '@s'))
end

-- Give a hold back where it was counted: the workflow always, each window only while its bucket is still inside.
local function giveBack(hk)
  local raw = redis.call('HGET', hk, 'r')
  if raw then
    local h = cjson.decode(raw)
    local wfKey = wfKeyOf(h.wf)
    if redis.call('EXISTS', wfKey) == 1 then
      local ds, ns = {}, {}
      for d, n in pairs(h.amt) do if tonumber(n) ~= 0 then ds[#ds + 1] = d; ns[#ns + 1] = -tonumber(n) end end
      bump(wfKey, ds, ns)
    end
    local names = { { 'a', h.agent } }
    if h.team then names[2] = { 't', h.team } end
    for _, nm in ipairs(names) do
      local s = subjectOf(nm[1], nm[2], false)
      if s then
        local fields, deltas = {}, {}
        for _, w in pairs(s.w) do
          local at = redis.call('HGET', hk, 'h:' .. s.key .. ':' .. w.i)
          if at and w.head and tonumber(at) > w.head - w.n then
            local slot = w.i .. '|' .. (tonumber(at) % w.n) .. ':'
            for d, n in pairs(h.amt) do
              n = tonumber(n)
              if n ~= 0 then
                fields[#fields + 1] = slot .. d
                deltas[#deltas + 1] = -n
                fields[#fields + 1] = w.i .. '|t:' .. d
                deltas[#deltas + 1] = -n
              end
            end
          end
        end
        bump(s.key, fields, deltas)
      end
    end
  end
  redis.call('DEL', hk)
end

-- Give back lapsed holds (at most SWEEP of them); answers how many.
local function sweep()
  local ids = redis.call('ZRANGEBYSCORE', holdsKey, '-inf', now, 'LIMIT', 0, SWEEP)
  for _, id in ipairs(ids) do
    giveBack(P .. 'c:hold:' .. id)
    redis.call('ZREM', holdsKey, id)
  end
  return #ids
end

local function breaks(mode, used, max, need)
  if mode == 'spent' then return used >= max end
  return used + need > max
end

local function freesAt(s, w, d, used, thr)
  if not (thr > 0) then return nil end
  local left = used
  if left < thr then return now end
  local fields = {}
  for b = w.head - w.n + 1, w.head do
    if b >= 0 then fields[#fields + 1] = w.i .. '|' .. (b % w.n) .. ':' .. d end
  end
  local counts = redis.call('HMGET', s.key, unpack(fields))
  local j = 0
  for b = w.head - w.n + 1, w.head do
    if b >= 0 then
      j = j + 1
      left = left - num(counts[j])
      if left < thr then return (b + w.n) * w.bms end
    end
  end
  return (w.head + w.n) * w.bms
end

if req then
if op == 'windows' then
  local s = subjectOf(req.kind, req.name, false)
  if not s then return false end
  local fields = {}
  for i = 1, #win do
    for _, d in ipairs(dims) do fields[#fields + 1] = WP[i] .. '|t:' .. d end
  end
  local out = redis.call('HMGET', s.key, unpack(fields))
  for j = 1, #fields do out[j] = out[j] or '0' end
  return out
end

if op == 'begin' then
  local key = wfKeyOf(req.wf)
  local s = redis.call('HGET', key, '@s')
  if (not s) or tonumber(s) > req.at then redis.call('HSET', key, '@s', fmt(req.at)) end
  redis.call('PEXPIRE', key, RETAIN)
  return false
end

local wfKey = wfKeyOf(req.wf)
local startedAt = ensureWorkflow(wfKey)
local agent = subjectOf('a', req.agent, true)
local team = nil
if req.team then team = subjectOf('t', req.team, true) end
local subjects = { agent }
if team then subjects[2] = team end

if op == 'touch' then
  redis.call('PEXPIRE', wfKey, RETAIN)
  return false
end

if op == 'add' then
  count(wfKey, subjects, addsOf(req.amt, false))
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
  count(wfKey, subjects, addsOf(req.amt, true))
  return false
end

if op == 'settle' then
  -- Alive: count the difference from what was reserved; lapsed (already given back): count all of it again.
  local alive = true
  if req.hold then
    local hk = P .. 'c:hold:' .. req.hold.id
    alive = redis.call('EXISTS', hk) == 1
    redis.call('DEL', hk)
    redis.call('ZREM', holdsKey, req.hold.id)
  end
  local adds = {}
  for d, v in pairs(req.amt) do
    local n = tonumber(v)
    local final = n
    if req.used[d] ~= nil then final = req.used[d] end
    local delta = final
    if alive then delta = final - n end
    if delta ~= 0 then adds[#adds + 1] = { d, delta } end
  end
  count(wfKey, subjects, adds)
  return false
end
return redis.error_reply('unknown counters op ' .. tostring(op))
end

${COUNTERS_STEP_LUA}`;
