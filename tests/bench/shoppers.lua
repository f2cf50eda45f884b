-- tests/bench/shoppers.lua: the machinery of the bench's conversation wrk
-- scripts (conversation.lua, order.lua). Such a script defines its STEPS
-- and runs this file with them:
--
--   local here = debug.getinfo(1, "S").source:match "^@(.*/)" or ""
--   assert(loadfile(here .. "shoppers.lua"))(STEPS, "order.lua")
--
-- STEPS is the conversation, one entry per message, in order:
--   { field, value, expected }   sends {"user": U, field: value} and checks
--                                that the reply's body contains `expected`
--                                (plain text)
-- and the second argument is the script's name, for the summary.
--
-- Many distinct shoppers each hold the whole conversation, in order. A
-- shopper's next message is only sent after the reply to the previous one
-- (parley answers after the commit). wrk's request() is not told which
-- connection it fills, so each wrk thread keeps a ready queue: response()
-- reads the user echoed in the reply ("user":"...") and queues that user's
-- next message, or a brand-new shopper once the conversation is finished;
-- request() takes the head of the queue, or starts a new shopper when the
-- queue is empty (with one connection: one shopper at a time). User ids are
-- PREFIX-THREAD-N, so threads and runs never share a session. Every reply
-- is checked for what that step should say.
--
-- Latency is timed here, per message, from request() to response() with
-- CLOCK_MONOTONIC (wrk's Lua is LuaJIT: ffi), because wrk's own latency
-- statistics include synthetic samples (its correction for coordinated
-- omission). done() gathers every thread's samples and prints messages/s,
-- p50/p90/p99/max, the non-200 count, replies that did not say what the
-- conversation expects, and completed conversations; its last line starts
-- with RESULT and is read by run.sh.
--
-- The words after wrk's "--": PREFIX [seed N T].
-- Seed mode ("-- PREFIX seed N T", T = wrk's -t): every request is a new
-- shopper's first message (STEPS[1]), until N shoppers (split over the
-- threads) have been answered; then each thread stops and prints "seeded
-- <count>" (run.sh interrupts wrk once every thread has), so the database
-- gets N more sessions without running N whole conversations.

local STEPS, SCRIPT = ...
assert(type(STEPS) == "table" and #STEPS > 0, "shoppers.lua: run it with the conversation's STEPS")
SCRIPT = SCRIPT or "shoppers.lua"

local here = debug.getinfo(1, "S").source:match "^@(.*/)" or ""
local lib = assert(loadfile(here .. "wrk_lib.lua"))()
local now_ms = lib.now_ms

-- --- main state: one entry per thread, ids set before each thread's init ----

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_id", #threads)
end

-- --- per-thread state (globals, so done() can read them with thread:get) ----

samples = {}      -- latency of each answered message, ms
messages = 0      -- 200 answers
non200 = 0        -- answers with another status
unexpected = 0    -- 200 answers that did not say what this step expects
completed = 0     -- whole conversations answered with the "Total"
started = 0       -- shoppers started
seed_quota = 0    -- seed mode: shoppers this thread seeds (0: conversation mode)
seeded = 0        -- seed mode: first messages answered (any status)

local prefix = "bench"
local request_head, health_request
local step_of = {}    -- user -> index in STEPS of the message in flight / next
local sent_at = {}    -- user -> now_ms() when its message was handed to wrk
local push, pop = lib.queue() -- shoppers ready for their next request
local stopping = false

local function new_user()
  started = started + 1
  local user = lib.user_id(prefix, thread_id, started)
  step_of[user] = 1
  return user
end

local function prepare()
  local host = lib.host()
  request_head = "POST " .. wrk.path .. " HTTP/1.1\r\nHost: " .. host ..
                 "\r\nContent-Type: application/json\r\nContent-Length: "
  health_request = "GET /v1/health HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"
end

-- args[0] is wrk's URL; args[1], ... are the words after it ("--" PREFIX ...).
function init(args)
  prefix = args[1] or prefix
  if args[2] == "seed" then
    -- A thread's init runs before the next thread is set up, so the
    -- number of threads comes as an argument.
    local total = tonumber(args[3]) or 100000
    local n = tonumber(args[4]) or 1
    seed_quota = math.floor(total / n) + ((thread_id or 1) <= total % n and 1 or 0)
  end
  prepare()
end

function request()
  if not request_head then prepare() end
  if lib.is_check_call(thread_id) then return health_request end
  local user
  if seed_quota > 0 then
    if started >= seed_quota then return health_request end
    user = new_user()
  else
    user = pop() or new_user()
  end
  local step = STEPS[step_of[user]]
  local body = '{"user":"' .. user .. '","' .. step[1] .. '":"' .. step[2] .. '"}'
  sent_at[user] = now_ms()
  return request_head .. #body .. "\r\n\r\n" .. body
end

function response(status, headers, body)
  local t = now_ms()
  local user = body:match '"user":"([^"]+)"'
  if not user and status == 200 and body:find('"bots"', 1, true) then return end -- a health check
  local at = user and sent_at[user]
  if at then
    sent_at[user] = nil
    samples[#samples + 1] = t - at
  end
  if seed_quota > 0 then
    if status == 200 and at then messages = messages + 1 else non200 = non200 + 1 end
    if user then step_of[user] = nil end
    seeded = seeded + 1
    if seeded >= seed_quota and not stopping then
      stopping = true
      io.stdout:write("seeded ", seeded, "\n")
      io.stdout:flush()
      wrk.thread:stop()
    end
    return
  end
  if status ~= 200 or not at then
    -- parley's error bodies do not name the user, so that shopper's
    -- conversation cannot go on: replace them to keep the load level.
    non200 = non200 + 1
    push(new_user())
    return
  end
  messages = messages + 1
  local step = step_of[user]
  if not body:find(STEPS[step][3], 1, true) then unexpected = unexpected + 1 end
  if step == #STEPS then
    step_of[user] = nil
    completed = completed + 1
    push(new_user())
  else
    step_of[user] = step + 1
    push(user)
  end
end

-- --- main state, at the end ---------------------------------------------------

local percentile = lib.percentile

function done(summary, latency, requests)
  local all = {}
  local total = { messages = 0, non200 = 0, unexpected = 0, completed = 0, started = 0, seeded = 0 }
  for _, thread in ipairs(threads) do
    for k in pairs(total) do total[k] = total[k] + (thread:get(k) or 0) end
    for _, v in ipairs(thread:get "samples") do all[#all + 1] = v end
  end
  table.sort(all)
  local seconds = summary.duration / 1e6
  local rate = total.messages / seconds
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write
  local p50, p90, p99, max = percentile(all, 50), percentile(all, 90), percentile(all, 99), all[#all] or 0
  io.write("-- timed by ", SCRIPT, " (per message, request() to response()) --\n")
  io.write(string.format("  %d messages answered 200 in %.2f s: %.0f messages/s\n", total.messages, seconds, rate))
  io.write(string.format("  latency ms: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  (%d samples)\n", p50, p90, p99, max, #all))
  io.write(string.format("  non-200 answers %d, unexpected replies %d, socket errors %d (connect %d, read %d, write %d), wrk timeouts %d\n",
    total.non200, total.unexpected, socket_errors, e.connect, e.read, e.write, e.timeout))
  if total.seeded > 0 then
    io.write(string.format("  seeded %d shoppers with a first message\n", total.seeded))
  else
    io.write(string.format("  shoppers started %d, conversations completed %d\n", total.started, total.completed))
  end
  io.write(string.format(
    "RESULT messages_per_s=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f non200=%d unexpected=%d socket_errors=%d timeouts=%d completed=%d started=%d seeded=%d\n",
    rate, p50, p90, p99, max, total.non200, total.unexpected, socket_errors, e.timeout, total.completed,
    total.started, total.seeded))
end
