-- parley.testing: the conversation helper for busted specs run by
-- `parley test`. Each conversation is a shopper talking to the bot through
-- the real pipeline (engine, sandbox, in-memory store):
--
--   local testing = require "parley.testing"
--   local chat = testing.conversation{ locale = "ja" }
--   chat:send "hi"
--   chat:tap "Latte"                -- a choice by title, payload or number
--   assert.truthy(chat:says "size")
--   assert.equal("order.size", chat:step())
--
-- Every `it` starts on a fresh bot (a new empty store, the catalog's stock,
-- parley's clock at now, no logged errors) unless a block around it calls
-- testing.share(). A turn that fails (a script error, a budget) makes the
-- call that sent it raise at the spec's line with the turn's file:line,
-- unless the spec sent it with chat:fails. docs/testing.md is the reference.
local native = require "parley.testing.native"

local testing = {}
local count = 0

-- This file, as debug.getinfo names it: the frames of the spec are the others.
local HERE = debug.getinfo(1, "S").source

-- Raises msg at the line of the spec that called into this module.
local function raise_in_spec(msg)
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if info == nil or info.source ~= HERE then break end
    level = level + 1
  end
  error(msg, level)
end

-- Isolation ------------------------------------------------------------------

-- The spec file and describe blocks running now (outermost first), and
-- those of them that called testing.share().
local blocks = {}
local shared = setmetatable({}, { __mode = "k" })
local in_test = false -- an `it` is running

local function sharing()
  for i = 1, #blocks do
    if shared[blocks[i]] then return true end
  end
  return false
end

-- testing.share(): the `it`s of the block that calls it (a describe, or a
-- whole spec file at its top) share one bot: it starts afresh once, before
-- the block's setup, and keeps what each `it` leaves for the next.
function testing.share()
  local block = blocks[#blocks]
  if block == nil or in_test then
    error("testing.share() belongs in a describe block or at the top of a spec file, not in an it", 2)
  end
  shared[block] = true
end

-- The conversations made so far (weakly: those a spec still holds).
local conversations = setmetatable({}, { __mode = "k" })

-- A fresh bot, and the conversations made before it forget what they saw
-- of the old one (the last turn's replies and error, the order they
-- confirmed, where chat:pushed() starts): each is the same shopper, new
-- to the fresh bot.
local function fresh_bot()
  native.reset()
  for chat in pairs(conversations) do
    chat.replies, chat.failed, chat.order_id, chat.pushed_since = {}, nil, nil, nil
  end
end

-- testing.reset(): the bot starts afresh now, as at the start of an `it`.
function testing.reset() fresh_bot() end

-- Called by `parley test` once, before any spec file loads (specs never
-- call it): a fresh bot at the start of every file and describe block and
-- before every `it` (before its before_each), except inside a shared block.
function testing.install_hooks(busted)
  local function enter(block)
    if not sharing() then fresh_bot() end
    blocks[#blocks + 1] = block
    return nil, true
  end
  local function leave()
    blocks[#blocks] = nil
    return nil, true
  end
  busted.subscribe({ "file", "start" }, enter)
  busted.subscribe({ "file", "end" }, leave)
  busted.subscribe({ "describe", "start" }, enter)
  busted.subscribe({ "describe", "end" }, leave)
  busted.subscribe({ "test", "start" }, function()
    in_test = true
    return nil, true
  end)
  busted.subscribe({ "test", "end" }, function()
    in_test = false
    return nil, true
  end)
  -- (a before_each of the root block runs before those of the spec's blocks)
  busted.before_each(function()
    if not sharing() then fresh_bot() end
  end)
end

-- The bot ----------------------------------------------------------------------

local Conversation = {}
Conversation.__index = Conversation

-- testing.conversation{user =, channel =, locale =, info =} -> a new shopper
-- (a fresh user id unless one is given, so specs do not share sessions).
-- One made outside an `it` (in a describe block) is the same shopper in
-- each `it`, new to that it's fresh bot.
function testing.conversation(opts)
  opts = opts or {}
  count = count + 1
  local chat = setmetatable({
    user = opts.user or ("spec-shopper-" .. count),
    channel = opts.channel or "rest",
    locale = opts.locale,
    info = opts.info,
    replies = {},
  }, Conversation)
  conversations[chat] = true
  return chat
end

-- What c:understand makes of the text in a locale (the bot's first when
-- not given): {intent, items = {{sku, qty, options, without}}, yes, number,
-- code, rest, ...}, with skus where a flow gets products. The parser's
-- answer: a language model is asked only inside a turn.
function testing.understand(words, locale) return native.understand(words, locale) end

-- The bot's name, and its load error (nil when its scripts loaded).
function testing.bot() return native.bot() end

-- The warnings and errors logged since the last call (a failed turn logs
-- "file:line: message"), oldest first.
function testing.errors() return native.errors() end

-- Moves parley's clock forward (seconds) and lets what fell due happen:
-- jobs fire and their turns run. No spec ever sleeps.
function testing.advance(seconds) native.advance(seconds) end

-- The merchant's orders API: a fulfilment status for an order (the shopper
-- is told). Returns the HTTP-like status (200, 404).
function testing.update_order(id, status, tracking_url) return native.update(id, status, tracking_url) end

-- Sets what is left of a stocked product ("latte") or option choice
-- ("latte/milk=oat"), as if other shoppers had bought the rest.
function testing.stock(key, n) native.stock(key, n) end

-- A stored order by number.
function testing.order(id) return native.order(id) end

-- Sends the message; returns the turn's replies and, when the turn failed,
-- its error ("file:line: message"; the replies are the bot's fallback then).
local function deliver(self, fields)
  fields.user, fields.channel, fields.locale, fields.info = self.user, self.channel, self.locale, self.info
  local replies, err = native.send(fields)
  self.replies, self.failed = replies, err
  return replies, err
end

-- Sends the message; a turn that failed raises at the spec's line.
function Conversation:post(fields)
  local replies, err = deliver(self, fields)
  if err then raise_in_spec("the turn failed: " .. err) end
  return replies
end

-- Sends text as the shopper; returns this turn's replies.
function Conversation:send(text)
  if type(text) ~= "string" then error("chat:send(text) needs a string", 2) end
  return self:post({ text = text })
end

-- Sends a payload directly, as a tapped button would.
function Conversation:press(payload)
  return self:post({ payload = payload })
end

-- All choices offered in the last turn, in order.
function Conversation:offered()
  local list = {}
  for _, reply in ipairs(self.replies) do
    for _, choice in ipairs(reply.choices or {}) do list[#list + 1] = choice end
  end
  return list
end

-- The choice of the last turn that `which` names (see chat:tap).
local function find_choice(self, which)
  local offered = self:offered()
  local choice
  if math.type(which) == "integer" then choice = offered[which] end
  for _, c in ipairs(offered) do
    if choice then break end
    if c.title == which or c.payload == which then choice = c end
  end
  for _, c in ipairs(offered) do
    if choice then break end
    if type(which) == "string" and c.title:sub(1, #which) == which then choice = c end
  end
  if not choice then
    local titles = {}
    for i, c in ipairs(offered) do titles[i] = string.format("%d) %s", i, c.title) end
    raise_in_spec(string.format("no choice '%s' in the last replies; offered: %s%s", tostring(which),
      #titles > 0 and table.concat(titles, ", ") or "none",
      self.failed and " (the last turn failed: " .. self.failed .. ")" or ""))
  end
  return choice
end

-- Taps a choice of the last turn: by number, by exact title or payload, or
-- by the start of its title ("Latte" for "Latte · €3.80").
function Conversation:tap(which)
  return self:press(find_choice(self, which).payload)
end

-- Sends the web chat panel's open event; returns its replies and, when
-- its turn failed, the error (chat.failed, as for a message).
local function send_open(self)
  self:watch()
  local status, err = native.event(self.user, self.channel, { type = "open" })
  self.replies, self.failed = self:pushed(), err
  if status ~= 200 and not err then
    raise_in_spec("the open event was not committed (status " .. tostring(status) .. ")")
  end
  return self.replies, err
end

-- Sends a message whose turn is meant to fail (a spec of the bot's error
-- path): text, {payload = ...}, {tap = ...} or {open = true} (the web chat
-- panel's opening, as chat:open). Returns the turn's error
-- ("file:line: message"); chat.replies are what the shopper got then (the
-- bot's fallback for a message). Raises when the turn did not fail.
function Conversation:fails(what)
  local fields
  if type(what) == "string" then
    fields = { text = what }
  elseif type(what) == "table" and what.tap ~= nil then
    fields = { payload = find_choice(self, what.tap).payload }
  elseif type(what) == "table" and type(what.payload) == "string" then
    fields = { payload = what.payload }
  elseif type(what) == "table" and what.open == true then
    fields = nil
  else
    error("chat:fails(text | {payload = ...} | {tap = ...} | {open = true})", 2)
  end
  local _, err
  if fields then
    _, err = deliver(self, fields)
  else
    _, err = send_open(self)
  end
  if not err then raise_in_spec("the turn was expected to fail, but it answered: " .. self:text()) end
  return err
end

-- The texts of the last turn's replies.
function Conversation:texts()
  local list = {}
  for _, reply in ipairs(self.replies) do
    if reply.text then list[#list + 1] = reply.text end
  end
  return list
end

-- The texts of the last turn joined by newlines.
function Conversation:text() return table.concat(self:texts(), "\n") end

-- Whether some text of the last turn contains `fragment` (plain text).
function Conversation:says(fragment)
  return self:text():find(fragment, 1, true) ~= nil
end

-- Titles of the choices of the last turn.
function Conversation:choices()
  local titles = {}
  for i, c in ipairs(self:offered()) do titles[i] = c.title end
  return titles
end

-- Product cards of the last turn.
function Conversation:cards()
  local list = {}
  for _, reply in ipairs(self.replies) do
    for _, card in ipairs(reply.cards or {}) do list[#list + 1] = card end
  end
  return list
end

-- The stored session (as committed), or nil.
function Conversation:session() return native.session(self.user, self.channel) end

-- "flow.step" where the conversation waits, or nil when no flow is open.
function Conversation:step()
  local s = self:session()
  local frame = s and s.stack[#s.stack]
  return frame and (frame.flow .. "." .. frame.step) or nil
end

-- The slots of the innermost flow.
function Conversation:slots()
  local s = self:session()
  local frame = s and s.stack[#s.stack]
  return frame and frame.slots or {}
end

-- The cart as stored: {currency =, lines = {{sku, qty, options, unit_price}}}.
function Conversation:cart()
  local s = self:session()
  return s and s.cart or { lines = {} }
end

-- Payments, as the provider would confirm them --------------------------------

-- The shopper's latest order (from the session's pending order or the
-- store), or nil.
function Conversation:last_order()
  local s = self:session()
  local id = s and s.pending_order and s.pending_order.id or self.order_id
  return id and native.order(id) or nil
end

-- Confirms the latest order (or order `id`) with a status ("paid",
-- "failed", "expired", "refunded") through parley's real confirmation path;
-- amount and currency default to the order's. Returns status, problems.
-- Afterwards, chat:pushed() holds what the shopper was told.
function Conversation:confirm(status, id, amount, currency)
  local order = id and native.order(id) or self:last_order()
  assert(order, "no order to confirm: did the flow call c:checkout()?")
  self.order_id = order.id
  local mark = #self:transcript()
  local code, problems = native.confirm(order.id, status, amount, currency)
  self.pushed_since = mark
  -- the shopper has what the bot said on its own in front of them now
  local pushed = self:pushed()
  if #pushed > 0 then self.replies = pushed end
  return code, problems
end

function Conversation:pay(id) return self:confirm("paid", id) end
function Conversation:decline(id) return self:confirm("failed", id) end

-- Replies the bot sent on its own (after a payment, a job, an order
-- update) since the last confirm or advance, as a flat list.
function Conversation:pushed()
  local lines = self:transcript()
  local out = {}
  for i = (self.pushed_since or 0) + 1, #lines do
    local line = lines[i]
    if line.direction == "out" then
      for _, reply in ipairs(line.body) do out[#out + 1] = reply end
    end
  end
  return out
end

-- The texts of chat:pushed() joined by newlines.
function Conversation:pushed_text()
  local texts = {}
  for _, reply in ipairs(self:pushed()) do
    if reply.text then texts[#texts + 1] = reply.text end
  end
  return table.concat(texts, "\n")
end

-- Marks now as the start of chat:pushed() (call before testing.advance).
function Conversation:watch() self.pushed_since = #self:transcript() end

-- Human handoff: what an agent does in the console, through the same
-- session events as the agent API. action is "claim", "reply", "handback"
-- or "close"; fields: agent (default "agent"), text (reply), flow and step
-- (handback). Returns what the shopper was told, as chat:pushed().
function Conversation:agent(action, fields)
  fields = fields or {}
  self:watch()
  local status, err = native.event(self.user, self.channel, {
    type = "agent", action = action, agent = fields.agent or "agent",
    text = fields.text, flow = fields.flow, step = fields.step,
  })
  if status ~= 200 then raise_in_spec("the agent's " .. action .. " was not committed (status " .. tostring(status) .. ")") end
  if err then raise_in_spec("the turn of the agent's " .. action .. " failed: " .. err) end
  return self:pushed()
end

-- The session's handoff ({state =, agent =, reason =}), or nil when the bot
-- has the conversation.
function Conversation:handoff()
  local s = self:session()
  return s and s.handoff or nil
end

-- The web chat widget's page event: the shopper is looking at a page
-- ({url =, title =}); the bot may greet first. Returns chat:pushed().
function Conversation:visit(page)
  self:watch()
  local ev = { type = "page" }
  for k, v in pairs(page or {}) do ev[k] = v end
  local status, err = native.event(self.user, self.channel, ev)
  if status ~= 200 then raise_in_spec("the page event was not committed (status " .. tostring(status) .. ")") end
  if err then raise_in_spec("the turn of the page visit failed: " .. err) end
  return self:pushed()
end

-- The web chat widget's panel opened (webchat.greet_on_open): a
-- conversation that has not begun starts with the bot's greeting; any other
-- is left as it is. Like a message, its replies are the last turn's
-- (chat:choices(), chat:tap() work on them); returns them.
function Conversation:open()
  local replies, err = send_open(self)
  if err then raise_in_spec("the turn failed: " .. err) end
  return replies
end

-- The session's pending jobs: {name, fire_at, data}.
function Conversation:jobs() return native.jobs(self.user, self.channel) end

-- Erases the shopper's session and transcript: the next message starts over.
function Conversation:reset()
  self.replies = {}
  return native.erase(self.user, self.channel)
end

-- The transcript of this shopper, oldest first: {direction =, body =, at =}
-- where an "in" body is the message and an "out" body the list of replies
-- the bot answered with.
function Conversation:transcript() return native.transcript(self.user, self.channel) end

-- The shopper's analytics events, oldest first: {name =, props =, step =,
-- conv =, at =} (docs/analytics.md; step: on the turns that moved the
-- conversation to it). With a name, only those events.
function Conversation:events(name)
  local out = {}
  for _, event in ipairs(native.events(self.user, self.channel)) do
    if name == nil or event.name == name then out[#out + 1] = event end
  end
  return out
end

-- The names of the shopper's events, oldest first, for a compact assert.
function Conversation:event_names()
  local names = {}
  for i, event in ipairs(self:events()) do names[i] = event.name end
  return names
end

return testing
