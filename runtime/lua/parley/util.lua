-- parley.util: small helpers shared by the runtime's Lua modules.
local json = require "json"

local util = {}

local function by_text(a, b) return tostring(a) < tostring(b) end

-- A sorted list of a table's keys (deterministic iteration).
function util.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  if #keys > 1 then table.sort(keys, by_text) end
  return keys
end

-- Whether v can be stored in a session (JSON: strings, numbers, booleans,
-- json.null and tables of them). Returns true, or false and the reason.
function util.storable(v, depth)
  depth = depth or 0
  local t = type(v)
  if t == "string" or t == "boolean" then return true end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return false, "NaN and infinity cannot be stored" end
    return true
  end
  if v == json.null then return true end
  if t == "table" then
    if depth > 32 then return false, "tables nested more than 32 levels (does it contain itself?)" end
    for k, item in pairs(v) do
      if type(k) ~= "string" and math.type(k) ~= "integer" then
        return false, "table keys must be strings or list indexes"
      end
      local ok, why = util.storable(item, depth + 1)
      if not ok then return false, why end
    end
    return true
  end
  return false, "a " .. t .. " cannot be stored (only strings, numbers, booleans and tables of them)"
end

-- A proxy's metatable holds its raw table (__index); its __newindex knows
-- it and what it is called in messages as upvalues.
local function proxy_pairs(p) return next, getmetatable(p).__index, nil end
local function proxy_len(p) return #getmetatable(p).__index end

-- A proxy over raw table `t` whose assignments are checked with
-- util.storable, so a flow storing a function fails at its own line.
-- A raw table keeps its proxy while it lives (sessions stay in memory
-- between turns, and so do their slots and profile): the turns after the
-- first make none. util.proxies[what] holds them, for looking one up
-- without a call.
local proxies = { slot = setmetatable({}, { __mode = "k" }), profile = setmetatable({}, { __mode = "k" }) }
util.proxies = proxies

function util.storable_proxy(t, what)
  local cache = proxies[what]
  local p = cache and cache[t]
  if p then return p end
  local function newindex(_, k, v)
    if type(k) ~= "string" and math.type(k) ~= "integer" then
      error(what .. " keys must be strings or list indexes", 2)
    end
    if v ~= nil then
      local kind = type(v)
      if kind ~= "string" and kind ~= "boolean" then -- (which util.storable passes at once)
        local ok, why = util.storable(v)
        if not ok then error(string.format("%s '%s': %s", what, tostring(k), why), 2) end
      end
    end
    t[k] = v
  end
  p = setmetatable({}, { __index = t, __newindex = newindex, __pairs = proxy_pairs, __len = proxy_len })
  if cache and t ~= nil then cache[t] = p end
  return p
end

-- The line where `name` is first defined as a table field in source (1 if
-- nowhere), for pointing a shape error at the right place.
function util.line_of(source, name)
  if type(source) ~= "string" or type(name) ~= "string" then return 1 end
  local n = 0
  local plain = name:gsub("%p", "%%%0")
  for line in (source .. "\n"):gmatch("(.-)\r?\n") do
    n = n + 1
    if line:match("^%s*" .. plain .. "%s*=") or line:match("[{,]%s*" .. plain .. "%s*=")
      or line:match("%[%s*[\"']" .. plain .. "[\"']%s*%]%s*=") then
      return n
    end
  end
  return 1
end

-- Shallow copy.
function util.copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

return util
