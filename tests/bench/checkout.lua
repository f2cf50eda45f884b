-- tests/bench/checkout.lua: a wrk script in which many distinct shoppers
-- each order and pay through the test provider (the checkout run of
-- `make bench`, tests/bench/checkout.sh):
--   POST /v1/bots/barista/messages
--     hi -> latte -> large -> croissant -> done -> pay
--     (the last reply has a "link" to parley's own test payment page,
--      .../payments/test/{order id}?token=...)
--   POST /v1/bots/barista/payments/test/{order id}
--     token=...&action=pay   (the page's form, x-www-form-urlencoded)
--     the page answers "Payment received." for the order
--
--   wrk -t1 -c64 -d10s -s checkout.lua http://HOST:PORT/v1/bots/barista/messages -- PREFIX
--
-- Built like shoppers.lua: a shopper's next request is only sent after
-- the answer to the previous one; each wrk thread keeps a ready queue that
-- response() fills with the user echoed in the reply (for the payment page,
-- the user whose order the page names), or a new shopper once one has paid.
-- User ids are PREFIX-THREAD-N. Every answer is checked for what that step
-- should say.
--
-- Latency is timed here per request (CLOCK_MONOTONIC through LuaJIT's ffi),
-- separately for the chat messages and the payments. done() prints
-- messages/s, orders paid/s, p50/p99/max of both, the counts, and a last
-- line starting with RESULT that checkout.sh reads. Each thread also writes
-- the ids of the orders it saw paid, one "PAID <id>" line each, before the
-- summary, so checkout.sh can compare them with the store.

local here = debug.getinfo(1, "S").source:match "^@(.*/)" or ""
local lib = assert(loadfile(here .. "wrk_lib.lua"))()
local now_ms = lib.now_ms

-- The chat: the field and value each message sends, and a piece of each
-- reply that shows the bot understood (the tone varies its sentences).
local STEPS = {
  { "text", "hi", '"payload":"latte"' },       -- greeting + the drink choices
  { "payload", "latte", '"payload":"large"' }, -- which size
  { "payload", "large", "Large Latte" },       -- added, + the pairing offer
  { "payload", "croissant", "€7.20" },         -- added, 2 items so far
  { "payload", "done", '"payload":"pay"' },    -- the summary, "Pay now"
  { "payload", "pay", '"link"' },              -- the payment link
}
local PAY = #STEPS + 1 -- the step that posts the payment page's form

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_id", #threads)
end

-- per-thread state (globals, so done() can read them with thread:get)
msg_samples = {}  -- latency of each answered chat message, ms
pay_samples = {}  -- latency of each answered payment, ms
messages = 0      -- chat messages answered 200
payments = 0      -- payment pages answered 200 "Payment received"
linked = 0        -- "pay" replies with a payment link
non200 = 0        -- answers with another status
unexpected = 0    -- 200 answers that did not say what the step expects
started = 0       -- shoppers started
paid_ids = {}     -- the order ids this thread saw paid

local prefix = "checkout"
local host_header, messages_path
local step_of = {}    -- user -> index of the request in flight / next (PAY: the payment)
local sent_at = {}    -- user -> now_ms() when its request was handed to wrk
local order_of = {}   -- user -> {id, token} once the link came
local user_of = {}    -- order id (string) -> user
local push, pop = lib.queue() -- shoppers ready for their next request

local function new_user()
  started = started + 1
  local user = lib.user_id(prefix, thread_id, started)
  step_of[user] = 1
  return user
end

local function prepare()
  host_header = lib.host()
  messages_path = wrk.path
end

function init(args)
  prefix = args[1] or prefix
  prepare()
end

local function post(path, content_type, body)
  return "POST " .. path .. " HTTP/1.1\r\nHost: " .. host_header .. "\r\nContent-Type: " .. content_type ..
         "\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
end

function request()
  if not host_header then prepare() end
  if lib.is_check_call(thread_id) then return "GET /v1/health HTTP/1.1\r\nHost: " .. host_header .. "\r\n\r\n" end
  local user = pop() or new_user()
  local step = step_of[user]
  sent_at[user] = now_ms()
  if step == PAY then
    local order = order_of[user]
    local path = messages_path:gsub("/messages$", "/payments/test/" .. order.id)
    return post(path, "application/x-www-form-urlencoded", "token=" .. order.token .. "&action=pay")
  end
  local s = STEPS[step]
  return post(messages_path, "application/json", '{"user":"' .. user .. '","' .. s[1] .. '":"' .. s[2] .. '"}')
end

-- A shopper whose answer was not what the step expects cannot go on:
-- replace them to keep the load level.
local function give_up(user)
  if user then
    step_of[user] = nil
    order_of[user] = nil
  end
  push(new_user())
end

function response(status, headers, body)
  local t = now_ms()
  local user = body:match '"user":"([^"]+)"'
  local paying = false
  if not user then
    local id = body:match "<h1>Order #(%d+)</h1>"
    user = id and user_of[id]
    if user then
      paying = true
      user_of[id] = nil
    elseif status == 200 and body:find('"bots"', 1, true) then
      return -- the health check
    end
  end
  local at = user and sent_at[user]
  if not at then
    non200 = non200 + 1 -- an answer that names no shopper of ours (an error body)
    give_up(nil)
    return
  end
  sent_at[user] = nil
  local step = step_of[user]
  if paying then
    pay_samples[#pay_samples + 1] = t - at
    if status ~= 200 then
      non200 = non200 + 1
    elseif body:find("Payment received", 1, true) then
      payments = payments + 1
      paid_ids[#paid_ids + 1] = order_of[user].id
    else
      unexpected = unexpected + 1
    end
    step_of[user] = nil
    order_of[user] = nil
    push(new_user())
    return
  end
  msg_samples[#msg_samples + 1] = t - at
  if status ~= 200 then
    non200 = non200 + 1
    give_up(user)
    return
  end
  messages = messages + 1
  if not body:find(STEPS[step][3], 1, true) then
    unexpected = unexpected + 1
    give_up(user)
    return
  end
  if step == #STEPS then
    local id, token = body:match "/payments/test/(%d+)%?token=(%w+)"
    if not id then
      unexpected = unexpected + 1
      give_up(user)
      return
    end
    linked = linked + 1
    order_of[user] = { id = id, token = token }
    user_of[id] = user
    step_of[user] = PAY
  else
    step_of[user] = step + 1
  end
  push(user)
end

local percentile = lib.percentile

function done(summary, latency, requests)
  local msg_all, pay_all = {}, {}
  local total = { messages = 0, payments = 0, linked = 0, non200 = 0, unexpected = 0, started = 0 }
  for _, thread in ipairs(threads) do
    for k in pairs(total) do total[k] = total[k] + (thread:get(k) or 0) end
    for _, v in ipairs(thread:get "msg_samples") do msg_all[#msg_all + 1] = v end
    for _, v in ipairs(thread:get "pay_samples") do pay_all[#pay_all + 1] = v end
    for _, id in ipairs(thread:get "paid_ids") do io.write("PAID ", id, "\n") end
  end
  table.sort(msg_all)
  table.sort(pay_all)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write
  local m50, m99, mmax = percentile(msg_all, 50), percentile(msg_all, 99), msg_all[#msg_all] or 0
  local p50, p99, pmax = percentile(pay_all, 50), percentile(pay_all, 99), pay_all[#pay_all] or 0
  io.write("-- timed by checkout.lua (per request, request() to response()) --\n")
  io.write(string.format("  %d orders paid in %.2f s: %.0f orders/s; %d chat messages answered 200: %.0f messages/s\n",
    total.payments, seconds, total.payments / seconds, total.messages, total.messages / seconds))
  io.write(string.format("  chat message latency ms: p50 %.3f  p99 %.3f  max %.3f  (%d samples)\n", m50, m99, mmax, #msg_all))
  io.write(string.format("  payment page latency ms: p50 %.3f  p99 %.3f  max %.3f  (%d samples)\n", p50, p99, pmax, #pay_all))
  io.write(string.format("  shoppers started %d, payment links %d\n", total.started, total.linked))
  io.write(string.format("  non-200 answers %d, unexpected answers %d, socket errors %d (connect %d, read %d, write %d), wrk timeouts %d\n",
    total.non200, total.unexpected, socket_errors, e.connect, e.read, e.write, e.timeout))
  io.write(string.format(
    "RESULT orders_per_s=%.1f messages_per_s=%.0f requests_per_s=%.0f msg_p50_ms=%.3f msg_p99_ms=%.3f msg_max_ms=%.3f pay_p50_ms=%.3f pay_p99_ms=%.3f pay_max_ms=%.3f paid=%d linked=%d non200=%d unexpected=%d socket_errors=%d timeouts=%d started=%d seconds=%.2f\n",
    total.payments / seconds, total.messages / seconds, (total.messages + #pay_all) / seconds, m50, m99, mmax, p50, p99,
    pmax, total.payments, total.linked, total.non200, total.unexpected, socket_errors, e.timeout,
    total.started, seconds))
end
