-- tests/bench/wrk_lib.lua: what the bench's wrk scripts (shoppers.lua,
-- checkout.lua) share. wrk runs a script in a Lua state per thread; each
-- loads this file with
--   local lib = assert(loadfile(<the script's folder> .. "wrk_lib.lua"))()
-- wrk's Lua is LuaJIT: the clock comes through ffi.
local ffi = require "ffi"
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1 -- Linux
local ts = ffi.new "bench_timespec"

local lib = {}

-- CLOCK_MONOTONIC in ms, to time each request from request() to response().
function lib.now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1e3 + tonumber(ts.tv_nsec) / 1e6
end

-- A first-in first-out queue of ready shoppers: returns push(x) and pop()
-- (nil when empty).
function lib.queue()
  local items, head, tail = {}, 1, 0
  local function push(x)
    tail = tail + 1
    items[tail] = x
  end
  local function pop()
    if head > tail then
      head, tail = 1, 0
      return nil
    end
    local x = items[head]
    items[head] = nil
    head = head + 1
    return x
  end
  return push, pop
end

-- The Host header's value for wrk's target: host[:port], an IPv6 address
-- in brackets. Call it once wrk.host is set (in init or later).
function lib.host()
  local host = wrk.host
  if host:find(":", 1, true) then host = "[" .. host .. "]" end
  if wrk.port then host = host .. ":" .. wrk.port end
  return host
end

-- A new shopper's user id: PREFIX-THREAD-N (N counts the thread's shoppers).
function lib.user_id(prefix, thread_id, n)
  return prefix .. "-" .. tostring(thread_id or "m") .. "-" .. n
end

-- wrk (4.1) calls request() once on the first thread's state before the
-- run, only to check that it is valid HTTP, and never sends it: true for
-- that call (the first on thread 1), which a script answers with a health
-- check so that no shopper is lost to it.
local checked = false
function lib.is_check_call(thread_id)
  if checked then return false end
  checked = true
  return thread_id == 1
end

-- The p-th percentile of a sorted list (0 when empty).
function lib.percentile(sorted, p)
  if #sorted == 0 then return 0 end
  local i = math.ceil(p / 100 * #sorted)
  return sorted[math.max(1, math.min(#sorted, i))]
end

return lib
