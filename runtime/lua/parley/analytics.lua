-- parley.analytics: the events a turn records for the shop's figures
-- (docs/analytics.md). A turn collects its events here; the engine
-- returns them with the session, and the C commit writes them in the same
-- transaction as the turn, so an event is never lost or counted twice.
--
-- A turn's events are kept cheaply, as every turn has some. The four that
-- most turns have are marks (bits): conversation_started and message come
-- first in a turn, step and reply last. The others are named in order
-- (names), and those that carry props are also {name =, props =} (events).
-- C writes the row's names from both (turn.c). The built-in names are the
-- ones below; c:track(name, props) adds the bot's own.
--
-- What a turn recorded is kept here, by its c, out of the scripts' reach
-- (c is theirs: a script could change a field of it past every limit).
local STARTED <const>, MESSAGE <const>, STEP <const>, REPLY <const> = 1, 2, 4, 8
local json = require "json"
local text = require "parley.text"

local analytics = {}

-- c -> what the turns running recorded by name: the names in order, a list
-- (C reads it as it is), whose fields are events (those that carry props,
-- {name =, props =} each) and not_understood (true once that event is in).
-- Most turns have only marks, which the engine keeps in a local of the turn
-- and hands to analytics.results.
local turns = setmetatable({}, { __mode = "k" })

local function state_of(c)
  local st = turns[c]
  if not st then
    st = { nil, nil, events = nil, not_understood = nil } -- (made with room: nil fields are not set)
    turns[c] = st
  end
  return st
end

-- The limits of what a script may record per turn.
analytics.MAX_EVENTS = 32
analytics.MAX_PROPS_BYTES = 2048
analytics.MAX_NAME = 64
local MAX_TEXT <const> = 200 -- of a not-understood message, folded

-- Template keys that mean "the bot did not understand", unless the manifest's
-- analytics.not_understood names others; "didnt_catch*" is every key that
-- begins so.
local NOT_UNDERSTOOD = { "fallback", "not_understood", "didnt_understand", "didnt_catch*" }

-- The set of keys: exact ones, and prefixes whose answer is kept per key
-- the first time a key is said (template keys are few).
local function key_set(list)
  local prefixes = {}
  local set = setmetatable({}, { __index = function(t, key)
    local found = false
    if type(key) == "string" then
      for _, prefix in ipairs(prefixes) do
        if key:sub(1, #prefix) == prefix then found = true; break end
      end
      rawset(t, key, found)
    end
    return found
  end })
  for _, key in ipairs(list) do
    if type(key) ~= "string" or key == "" then error("bot.json:1: analytics.not_understood lists template keys", 0) end
    if key:sub(-1) == "*" then prefixes[#prefixes + 1] = key:sub(1, -2) else rawset(set, key, true) end
  end
  return set
end

-- configure(bot, manifest): reads the manifest's "analytics" object.
function analytics.configure(bot, manifest)
  local conf = manifest.analytics
  if conf ~= nil and type(conf) ~= "table" then
    error("bot.json:1: \"analytics\" is an object {enabled =, quiet_minutes =, not_understood = [...]}", 0)
  end
  conf = conf or {}
  bot.analytics_on = conf.enabled ~= false
  local quiet = conf.quiet_minutes or 30
  if math.type(quiet) ~= "integer" or quiet < 1 then
    error("bot.json:1: analytics.quiet_minutes is a whole number of minutes, at least 1", 0)
  end
  bot.quiet_s = quiet * 60
  local keys = conf.not_understood or NOT_UNDERSTOOD
  if type(keys) ~= "table" then error("bot.json:1: analytics.not_understood lists template keys", 0) end
  bot.not_understood_keys = key_set(keys)
end

-- Records an event of this turn (nothing when the bot has analytics off).
function analytics.record(c, name, props)
  if not c.bot.analytics_on then return end
  local names = state_of(c)
  local n = #names
  if n >= analytics.MAX_EVENTS then return end
  names[n + 1] = name
  if props == nil then return end
  local list = names.events
  if not list then
    names.events = { { name = name, props = props } }
  else
    list[#list + 1] = { name = name, props = props }
  end
end

-- The shopper's words as a merchant reads them in "not understood": folded,
-- cut to MAX_TEXT bytes at a character boundary.
local function folded_words(msg)
  local words = type(msg.text) == "string" and text.fold(msg.text) or nil
  if not words or words == "" then return nil end
  if #words > MAX_TEXT then
    local cut = MAX_TEXT
    while cut > 0 and (words:byte(cut + 1) or 0) & 0xC0 == 0x80 do cut = cut - 1 end
    words = words:sub(1, cut)
  end
  return words
end

-- c:say(key) of a key that means "not understood" (c:say asks
-- bot.not_understood_keys): once per turn.
function analytics.said(c, key)
  local st = state_of(c)
  if st.not_understood then return end
  st.not_understood = true
  analytics.record(c, "not_understood", { key = key, text = folded_words(c.msg) })
end

-- c:track(name [, props]): the bot's own event. The name is a word of
-- letters, digits and _ (the built-in names are the bot's too); props a
-- table of JSON values, at most MAX_PROPS_BYTES when written.
function analytics.track(c, name, props)
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") or #name > analytics.MAX_NAME then
    error("c:track(name [, props]): name is a word of letters, digits and _ (at most 64)", 3)
  end
  if props ~= nil then
    if type(props) ~= "table" then error("c:track: props must be a table of JSON values", 3) end
    local ok, written = pcall(json.encode, props)
    if not ok then error("c:track: props must be JSON values: " .. tostring(written), 3) end
    if #written > analytics.MAX_PROPS_BYTES then
      error(string.format("c:track: props are %d bytes written as JSON; at most %d", #written,
        analytics.MAX_PROPS_BYTES), 3)
    end
    props = json.decode(written) -- a copy: later changes to the table do not reach the event
  end
  if name == "not_understood" then
    props = props or {}
    if props.text == nil then props.text = folded_words(c.msg) end
    state_of(c).not_understood = true
  end
  analytics.record(c, name, props)
end

-- n products of list shown (products, or recommendations {product =}):
-- how many; the skus of a recommendation's, which the session keeps a
-- while, so that taking one counts as a recommendation taken. (Every
-- greeting shows the menu: a plain list is counted, not listed.)
function analytics.shown(c, list, n, recommended)
  if not recommended then
    analytics.record(c, "product_shown", { count = n })
    return
  end
  local skus = json.array()
  for i = 1, math.min(n, 20) do -- (the first 20: a list may be long)
    local item = list[i]
    skus[i] = (item.product or item).sku
  end
  analytics.record(c, "product_shown", { count = n, skus = skus, recommended = true })
  do
    local s = c.session
    local kept = s.recommended_skus or json.array()
    for _, sku in ipairs(skus) do
      local seen = false
      for _, k in ipairs(kept) do seen = seen or k == sku end
      if not seen then table.insert(kept, sku) end
    end
    while #kept > 20 do table.remove(kept, 1) end
    s.recommended_skus = kept
  end
end

-- Whether sku was among the products recommended to this shopper lately.
function analytics.was_recommended(c, sku)
  local kept = c.session.recommended_skus
  if kept == nil then return false end
  for _, k in ipairs(kept) do
    if k == sku then return true end
  end
  return false
end

-- A shopper's message: a new conversation when they had none, or their
-- last one went quiet (bot.quiet_s without a word from either side: a
-- shopper who answers a reminder goes on with the conversation it was
-- about). Returns the turn's marks so far, for analytics.results: message,
-- and conversation_started when it began (0 when the bot has analytics off).
function analytics.heard(c, s, now)
  local bot = c.bot
  if not bot.analytics_on then return 0 end
  local heard, spoke = s.heard_at or 0, s.spoke_at or 0
  local last = heard > spoke and heard or spoke -- (math.max, without the call)
  if s.conv == nil or last == 0 or now - last >= bot.quiet_s then
    s.conv = (s.conv or 0) + 1
    s.recommended_skus = nil
    return STARTED | MESSAGE
  end
  return MESSAGE
end

-- What the turn returns for the commit: {conv =, flow =, step =, marks =,
-- names = {...} or false, list = {...} or false}, or nil when nothing was
-- recorded. marks: what analytics.heard returned (0 for an event). A step
-- the conversation waits at that it did not wait at before (frame and
-- step: the top frame and its step when the turn began) is an event of
-- its own ("step"; the row says which: C writes flow.step).
--
-- The table is one for every turn of the state, its fields overwritten
-- (flow, step, names and list false when absent, so that no key is ever
-- added again): C reads it as soon as the turn's coroutine returns, before
-- any other Lua of the state runs (turn.c, read_events), and no script
-- ever sees it.
local RESULTS = { conv = 0, flow = false, step = false, marks = 0, names = false, list = false }

function analytics.results(c, frame, step, marks)
  local s = c.session
  c.cart.owner = false -- (the session's cart outlives the turn: it must not keep the turn alive)
  if c.out[1] ~= nil then
    marks = marks | REPLY
    -- the bot spoke on its own (a reminder, a payment's news, an agent)
    if c.msg.event then s.spoke_at = s.updated_at end
  end
  local stack = s.stack
  local top = stack[#stack]
  -- (a conversation whose flows all ended waits at no step: a step event
  -- too, with no step, so that it is not counted as dropped where it was)
  if (top and (top ~= frame or top.step ~= step)) or (not top and frame) then marks = marks | STEP end
  local names = turns[c]
  if names ~= nil and names[1] == nil then names = nil end
  if marks == 0 and not names then return nil end
  local r = RESULTS
  r.conv, r.marks, r.names, r.list = s.conv or 0, marks, names or false, names and names.events or false
  if top then
    r.flow, r.step = top.flow, top.step
  else
    r.flow, r.step = false, false
  end
  return r
end

return analytics
