/**
 * The part of the counters script every step runs: check and reserve (see countersLua for the arguments). The usual
 * step costs few Redis commands: a check reads the workflow and each subject once (one HMGET each) and writes nothing;
 * a reservation gives back lapsed holds, reads the same and writes each hash once. Lapsed holds only add to what is
 * counted, so a check that passes without giving them back would pass after it too: a check sweeps only when it
 * would refuse, then looks again. A window whose head is not the current bucket (the first step of a second, or a new
 * subject) moves up first, which renews the subject's expiry; a workflow a check passes is created by its reservation,
 * starting at the check's time (decision 0039).
 */
export const COUNTERS_STEP_LUA = `
local NW = #win
local M = #dims
local reserve = op == 'reserve'
local wfKey = wfKeyOf(ARGV[3])
local amt, adds = {}, {}
for m = 1, M do
  local v = ARGV[5 + m]
  if v ~= '' then
    local n = tonumber(v)
    amt[dims[m]] = n
    if n ~= 0 then adds[#adds + 1] = { dims[m], n } end
  end
end
local L = tonumber(ARGV[6 + M])
local lims = {}
for j = 1, L do
  local o = 6 + M + 6 * (j - 1)
  local mode = 'spent'
  if ARGV[o + 5] == 'r' then mode = 'reserve' end
  lims[j] = { ARGV[o + 1], tonumber(ARGV[o + 2]), ARGV[o + 3], tonumber(ARGV[o + 4]), mode, tonumber(ARGV[o + 6]) }
end
local HB = 6 + M + 6 * L
local start = tonumber(ARGV[HB + 1]) or now

-- A subject's heads, the totals its limits read and, for a reservation, the fields it adds to, in one HMGET while
-- every window's head is the current bucket (the usual case); otherwise its windows move up first, then a second read.
local function subjectRead(code, name)
  local mine = {}
  for j, l in ipairs(lims) do
    if l[1] == code and l[2] > 0 then mine[#mine + 1] = j end
  end
  local key = P .. 'c:' .. code .. ':' .. name
  local heads = {}
  for i = 1, NW do heads[i] = math.floor(now / win[i][2]) end
  local function fieldsOf(f)
    for _, j in ipairs(mine) do f[#f + 1] = WP[lims[j][2]] .. '|t:' .. lims[j][3] end
    if reserve then
      for i = 1, NW do
        local sp = WP[i] .. '|' .. (heads[i] % win[i][3]) .. ':'
        local tp = WP[i] .. '|t:'
        for _, a in ipairs(adds) do
          f[#f + 1] = sp .. a[1]
          f[#f + 1] = tp .. a[1]
        end
      end
    end
    return f
  end
  local f = {}
  for i = 1, NW do f[i] = WP[i] .. '|h' end
  fieldsOf(f)
  local got = redis.call('HMGET', key, unpack(f))
  local off = NW
  local s
  local same = true
  for i = 1, NW do if tonumber(got[i]) ~= heads[i] then same = false end end
  if same then
    s = { key = key, w = {} }
    for i = 1, NW do s.w[win[i][1]] = { i = WP[i], bms = win[i][2], n = win[i][3], head = heads[i] } end
  else
    s = subjectOf(code, name, true)
    for i = 1, NW do heads[i] = s.w[win[i][1]].head end
    f = fieldsOf({})
    got = {}
    if #f > 0 then got = redis.call('HMGET', key, unpack(f)) end
    off = 0
  end
  s.used = {}
  for k, j in ipairs(mine) do s.used[j] = num(got[off + k]) end
  s.f, s.got, s.off = f, got, off + #mine
  return s
end

local wfv, startedAt, agent, team

-- Read everything the limits need; answers the first limit that does not hold as { index, used, freesAt or ''
-- ('x': a workflow total) }, or nil.
local function evaluate()
  local wff = { '@s' }
  if reserve then for _, a in ipairs(adds) do wff[#wff + 1] = a[1] end end
  local wfAt = {}
  for j, l in ipairs(lims) do
    if l[1] == 'w' and l[3] ~= 'ageSeconds' then
      wff[#wff + 1] = l[3]
      wfAt[j] = #wff
    end
  end
  wfv = redis.call('HMGET', wfKey, unpack(wff))
  startedAt = tonumber(wfv[1])
  agent = subjectRead('a', ARGV[4])
  if ARGV[5] ~= '' then team = subjectRead('t', string.sub(ARGV[5], 2)) end
  for j, l in ipairs(lims) do
    local subj, wi, d, max, mode, thr = l[1], l[2], l[3], l[4], l[5], l[6]
    local need = amt[d] or 0
    if subj == 'w' then
      local used
      if d == 'ageSeconds' then used = (now - (startedAt or start)) / 1000 else used = num(wfv[wfAt[j]]) end
      if breaks(mode, used, max, need) then return { tostring(j), fmt(used), 'x' } end
    else
      local s = agent
      if subj == 't' then s = team end
      if s and wi > 0 then
        local used = s.used[j]
        if breaks(mode, used, max, need) then
          local fa = freesAt(s, s.w[win[wi][1]], d, used, thr)
          if fa then return { tostring(j), fmt(used), fmt(fa) } end
          return { tostring(j), fmt(used), '' }
        end
      end
    end
  end
  return nil
end

if reserve then sweep() end
local breach = evaluate()
if breach and not reserve and sweep() > 0 then breach = evaluate() end
if breach or not reserve then
  -- A refused step leaves its workflow behind (as the embedded stores do); a passed check leaves nothing.
  if breach and not startedAt then
    redis.call('HSET', wfKey, '@s', start)
    redis.call('PEXPIRE', wfKey, RETAIN)
  end
  return breach or false
end

-- Count: one write per hash, from the values read above (Redis writes a Lua number with 17 digits).
local set = {}
if not startedAt then set[1], set[2] = '@s', start end
for k, a in ipairs(adds) do
  set[#set + 1] = a[1]
  set[#set + 1] = num(wfv[1 + k]) + a[2]
end
if #set > 0 then redis.call('HSET', wfKey, unpack(set)) end
redis.call('PEXPIRE', wfKey, RETAIN)
local subjects = { agent }
if team then subjects[2] = team end
if #adds > 0 then
  for _, s in ipairs(subjects) do
    local out = {}
    local k = s.off
    for i = 1, 2 * NW * #adds do
      out[#out + 1] = s.f[k + i]
      out[#out + 1] = num(s.got[k + i]) + adds[(math.floor((i - 1) / 2) % #adds) + 1][2]
    end
    redis.call('HSET', s.key, unpack(out))
  end
end
if ARGV[HB + 2] then
  local id = ARGV[HB + 2]
  local hk = P .. 'c:hold:' .. id
  local args = { 'r', ARGV[HB + 5] }
  for _, s in ipairs(subjects) do
    for _, w in pairs(s.w) do
      args[#args + 1] = 'h:' .. s.key .. ':' .. w.i
      args[#args + 1] = w.head
    end
  end
  redis.call('HSET', hk, unpack(args))
  redis.call('PEXPIRE', hk, tonumber(ARGV[HB + 3]) * 2 + 3600000)
  redis.call('ZADD', holdsKey, ARGV[HB + 4], id)
end
return false
`;
