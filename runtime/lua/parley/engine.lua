-- parley.engine: a bot's definition (manifest, flows, tone, rules, router)
-- and the turn: one shopper message in, the new session and the replies out.
--
-- The C loader (bot.c) builds a fresh state per load: it calls configure,
-- then add_flow / set_script for each file, then finish. The turn runs in a
-- coroutine under the instruction budget (run.c), and returns plain tables
-- that C stores as JSON.
local _, internal = ...
local json = require "json"
local text = require "parley.text"
local util = require "parley.util"
local conversation = require "parley.conversation"
local analytics = require "parley.analytics"
local tone = require "parley.tone"
local rules = require "parley.rules"
local products = require "parley.products"
local understand = require "parley.understand"
local log = require "log"

local engine = {}
local MAX_HOPS <const> = 50
local start_handoff -- defined with the events, further down

-- step_kinds: type() of every step of the flows, found without a call
local bot = { flows = {}, scripts = {}, warnings = {}, step_kinds = {} }
engine.bot = bot
-- (the turn's own names for tables the bot keeps for good)
local flows, step_kinds = bot.flows, bot.step_kinds
-- The real table of steps behind a flow's table that `parley test
-- --coverage` replaced with one counting the steps entered
-- (runtime/lua/parley/coverage.lua): proxy -> steps.
local counted = setmetatable({}, { __mode = "k" })
engine.counted = counted
local locale_set -- bot.locale_set, once configured

local function fail(where, msg) error(where .. ": " .. msg, 0) end

local intent_by_phrase -- (below: the router's phrases matched)

local line_of = util.line_of

-- configure(manifest): the bot's name, locales and start flow.
function engine.configure(manifest)
  bot.manifest = manifest
  bot.name = manifest.name
  bot.locales = manifest.locales
  bot.locale_set = {}
  for _, l in ipairs(bot.locales) do bot.locale_set[l] = true end
  locale_set = bot.locale_set
  bot.start_flow = manifest.start_flow or "main"
  bot.catalog = products.new(bot.locales[1])
  bot.discounts = {}
  for code, rule in pairs(manifest.discounts or {}) do
    if type(rule) ~= "table" or (rule.percent == nil) == (rule.amount == nil) then
      fail("bot.json:1", string.format("discount %s needs either percent or amount (minor units)", code))
    end
    bot.discounts[code:upper()] = rule
  end
  bot.abandoned = manifest.abandoned_cart
  analytics.configure(bot, manifest)
end

local step_fields = { ask = "function", answer = "function", intents = "boolean" }

local function check_step(flow, name, step, where, source)
  local at = where .. ":" .. line_of(source, name)
  if type(name) ~= "string" then fail(at, "step names must be strings") end
  if type(step) == "function" then
    bot.step_kinds[step] = "function"
    return
  end
  if type(step) ~= "table" then
    fail(at, string.format("step '%s' must be a function(c, msg) or a table {ask =, answer =}", name))
  end
  for field, value in pairs(step) do
    local want = step_fields[field]
    if not want then
      fail(at, string.format("step '%s' has an unknown field '%s' (a step has ask, answer and intents)", name, tostring(field)))
    end
    if type(value) ~= want then fail(at, string.format("step '%s': %s must be a %s", name, field, want)) end
  end
  if not step.answer then fail(at, string.format("step '%s' waits for the shopper, so it needs answer = function(c, msg)", name)) end
  bot.step_kinds[step] = "table"
end

-- add_flow(name, chunk, where, source): runs the flow file and checks its shape.
function engine.add_flow(name, chunk, where, source)
  local def = chunk()
  if type(def) ~= "table" then fail(where .. ":1", "a flow file must return a table of steps") end
  for step_name, step in pairs(def) do check_step(name, step_name, step, where, source) end
  if not def.start then fail(where .. ":1", string.format("flow '%s' needs a 'start' step", name)) end
  bot.flows[name] = def
end

-- An intent's phrases or examples: a list for every locale, or lists by
-- locale, as {locale, folded, text} (folded by fold; false when the text is
-- not UTF-8: matching raises then).
local function texts_of(name, at, lists, what, fold)
  local out = {}
  local function add(locale, list)
    if type(list) ~= "table" then fail(at, string.format("intent '%s': %s (by locale or for all)", name, what)) end
    for _, s in ipairs(list) do
      if type(s) ~= "string" then fail(at, string.format("intent '%s': %s must be strings", name, what:match("%a+$"))) end
      out[#out + 1] = { locale = locale, folded = fold(s), text = s }
    end
  end
  if lists == nil then return out end
  add(nil, lists)
  for locale, list in pairs(lists) do
    if type(locale) == "string" then add(locale, list) end
  end
  return out
end

local function check_router(def, where, source)
  if type(def) ~= "table" then fail(where .. ":1", "the router must return a table of intents") end
  local intents = {}
  for name, intent in pairs(def) do
    local at = where .. ":" .. line_of(source, name)
    if type(intent) ~= "table" or type(intent.run) ~= "function" then
      fail(at, string.format("intent '%s' must be a table {match = {...}, run = function(c, msg)}", tostring(name)))
    end
    local phrases = texts_of(name, at, intent.match, "match lists phrases", text.fold)
    -- examples: sentences matched as c:understand matches words (typos
    -- forgiven), over a threshold of likeness
    local examples = texts_of(name, at, intent.examples, "examples lists sentences", understand.fold_sentence)
    local threshold = intent.threshold
    if threshold ~= nil and (type(threshold) ~= "number" or threshold <= 0 or threshold > 1) then
      fail(at, string.format("intent '%s': threshold is a number above 0 and at most 1 (default 0.8)", name))
    end
    for field in pairs(intent) do
      if field ~= "match" and field ~= "examples" and field ~= "threshold" and field ~= "run" then
        fail(at, string.format("intent '%s' has an unknown field '%s' (an intent has match, examples, threshold and run)", name, tostring(field)))
      end
    end
    intents[#intents + 1] = { name = name, phrases = phrases, examples = examples, threshold = threshold, run = intent.run }
  end
  table.sort(intents, function(a, b) return a.name < b.name end)
  return intents
end

-- set_script(kind, chunk, where, source) for scripts/tone.lua, rules.lua
-- and router.lua.
function engine.set_script(kind, chunk, where, source)
  local def = chunk()
  if kind == "tone" then
    bot.tone = tone.new(def, where, bot.locales, source)
    for _, w in ipairs(bot.tone.warnings) do bot.warnings[#bot.warnings + 1] = w end
  elseif kind == "rules" then
    bot.rules = rules.new(def, where, source)
  elseif kind == "router" then
    bot.intents = check_router(def, where, source)
  elseif kind == "hooks" or kind == "jobs" then
    if type(def) ~= "table" then fail(where .. ":1", "must return a table of functions") end
    for name, fn in pairs(def) do
      if type(fn) ~= "function" then
        fail(where .. ":" .. line_of(source, name), string.format("'%s' must be a function", tostring(name)))
      end
    end
    bot.scripts[kind] = def
  else
    bot.scripts[kind] = def
  end
end

-- finish() -> warnings: cross-checks once every file is in.
function engine.finish()
  if not bot.tone then fail("scripts/tone.lua:1", "is missing: every bot needs a tone with a 'fallback' template") end
  if not bot.flows[bot.start_flow] then
    fail("flows/" .. bot.start_flow .. ".lua:1", "is missing: the manifest's start flow '" .. bot.start_flow .. "'")
  end
  bot.rules = bot.rules or rules.none()
  bot.intents = bot.intents or {}
  -- the phrases each locale listens for, intents in name order
  -- (and, for matching, the folded phrases alone in a list beside them)
  bot.phrases, bot.phrase_texts = {}, {}
  for _, locale in ipairs(bot.locales) do
    local list, texts = {}, {}
    for _, intent in ipairs(bot.intents) do
      for _, phrase in ipairs(intent.phrases) do
        if phrase.locale == nil or phrase.locale == locale then
          list[#list + 1] = { folded = phrase.folded, intent = intent }
          texts[#list] = phrase.folded or false -- (not UTF-8: matching raises)
        end
      end
    end
    bot.phrases[locale], bot.phrase_texts[locale] = list, texts
  end
  bot.has_intents = bot.intents[1] ~= nil
  bot.has_examples = false
  for _, intent in ipairs(bot.intents) do
    if intent.examples[1] then bot.has_examples = true end
  end
  bot.intent_by_phrase = intent_by_phrase
  -- built at load, so that no shopper's turn waits for them: the small
  -- lexicons of c:understand (the catalog's is C's, built on first use)
  understand.prepare(bot)
  -- the intent a tapped "intent:<name>" payload names
  bot.intent_payloads = {}
  for _, intent in ipairs(bot.intents) do
    if type(intent.name) == "string" and intent.name ~= "" then
      bot.intent_payloads["intent:" .. intent.name] = intent
    end
  end
  return bot.warnings
end

-- describe() -> {start_flow =, flows = {name = {step, ...}}}: what an agent
-- can hand a conversation back to.
function engine.describe()
  local flows = {}
  for name, def in pairs(bot.flows) do
    local steps = json.array()
    for step in pairs(def) do steps[#steps + 1] = step end
    table.sort(steps)
    flows[name] = steps
  end
  return { start_flow = bot.start_flow, flows = flows }
end

-- facts() -> what `parley check`'s static checks compare the scripts with
-- (runtime/lua/parley/check.lua): the flows and their steps, the tone's
-- templates per locale, each locale's router phrases in the order they are
-- matched, and each product's option names and values.
function engine.facts()
  return require("parley.facts").of(bot)
end

-- understand({text =, locale =}) -> what c:understand makes of the text in
-- that locale (the parser's answer; a language model is asked only inside
-- a turn), as JSON: skus instead of products. For `parley understand` and
-- testing.understand.
function engine.understand(arg)
  local locale = arg and arg.locale or bot.locales[1]
  if not bot.locale_set[locale] then error("understand: '" .. tostring(locale) .. "' is not one of this bot's locales", 0) end
  local r = understand.parse(bot, bot.catalog:view(locale), arg and arg.text or "", locale, bot.intent_by_phrase)
  return understand.plain(r)
end

-- totals(cart) -> {subtotal, discount, total, currency, code} of a stored cart.
function engine.totals(raw)
  local cart = require "parley.cart"
  local c = cart.new(raw or {}, bot.catalog:view(bot.locales[1]), bot.discounts)
  local t = c:totals()
  -- the lines as a person reads them: titles, option titles, line totals
  t.lines = json.array()
  for i, line in ipairs(c:lines()) do t.lines[i] = line end
  return t
end

-- The turn ---------------------------------------------------------------

-- The bot's locale for a requested tag ("ja", "en-GB"), or nil.
local function supported(tag)
  if tag == nil then return nil end
  if bot.locale_set[tag] then return tag end -- (the manifest's locales are strings)
  if type(tag) ~= "string" then return nil end
  local lang = tag:match("^(%a+)")
  return lang and bot.locale_set[lang] and lang or nil
end

-- A locale the shopper chose in the conversation (c:set_locale) outlasts
-- the one their channel reports; otherwise the channel's wins.
local function pick_locale(requested, current, chosen)
  if chosen then return supported(current) or supported(requested) or bot.locales[1] end
  return supported(requested) or supported(current) or bot.locales[1]
end

local function new_session()
  return { turn = 0, stack = json.array(), cart = { lines = json.array() }, profile = {} }
end

local function top(c) return c.session.stack[#c.session.stack] end

-- Whether flow `name` has step `step`: a look that enters nothing, so
-- coverage does not count it as reaching the step.
local function has_step(name, step)
  local steps = flows[name]
  if steps == nil then return false end
  return (counted[steps] or steps)[step] ~= nil
end

-- (a flow that starts again means the conversation has not ended; its
-- slots, when it is given none, are a table with room for four without
-- growing: the fields given nil reserve it and are not set)
local function push(c, flow, args, step)
  local s = c.session
  s.ended = nil
  table.insert(s.stack, { flow = flow, step = step or "start", slots = args or { a = nil, b = nil, c = nil, d = nil } })
end

-- c:resume() where no step waits (the dialog stack is empty), and an
-- intent's c:call(...) there, whose flow then returns to the same place. A
-- conversation that has not begun (its first message was an intent, "help")
-- begins at the start flow. One that has ended (its start flow finished, or
-- an agent closed it) does not greet again: it goes on at the start flow's
-- step named "resume" when the bot has one, and otherwise stays ended and
-- says nothing more (the shopper's next message begins the start flow, as
-- any message does where no step waits). Returns whether it pushed a frame.
local function resume_empty(c)
  if not c.session.ended then
    push(c, bot.start_flow)
    return true
  end
  if not has_step(bot.start_flow, "resume") then return false end
  push(c, bot.start_flow, nil, "resume")
  return true
end

local function step_of(frame)
  return bot.flows[frame.flow][frame.step]
end

-- Makes sure the frame still exists after a reload: the session keeps flow
-- and step by name; a name the new scripts no longer have restarts there.
-- Returns the top frame then (nil when the stack is empty).
local function repair(c)
  local stack = c.session.stack
  local frame = stack[#stack]
  if frame then
    if has_step(frame.flow, frame.step) then return frame end -- (as it nearly always is)
  end
  while frame and not bot.flows[frame.flow] do
    log.warn(string.format("flow '%s' no longer exists; its conversation starts over", frame.flow))
    table.remove(stack)
    frame = stack[#stack]
  end
  if frame and not has_step(frame.flow, frame.step) then
    log.warn(string.format("flow '%s' has no step '%s' any more; it restarts at 'start'", frame.flow, frame.step))
    frame.step = "start"
  end
  return frame
end

-- Runs the step at the top of the stack: an action step runs at once and
-- returns its outcome; a step with ask/answer asks and then waits.
local function enter(c)
  local stack = c.session.stack
  local frame = stack[#stack]
  if frame ~= c.frame then conversation.refresh(c) end -- c.frame is the top frame now
  local step = flows[frame.flow][frame.step]
  if (step_kinds[step] or type(step)) == "function" then return step(c, c.msg), step, true end
  local ask = step.ask
  if ask then ask(c, c.msg) end
  return nil, ask, false
end

local function describe(fn)
  return fn and internal.where(fn) or "a step"
end

-- Follows what steps return until the conversation waits for the shopper.
-- The steps it went through are named only if it never waits: the error
-- shows the last TRAIL of them, so only those are noted.
local TRAIL <const> = 9
local function drive(c, outcome, source, is_action)
  local trail
  local stack = c.session.stack
  local frame = stack[#stack]
  for hop = 1, MAX_HOPS do
    if outcome == nil then
      if not is_action then return end
      outcome = c:done()
    end
    -- the step to enter next: a step's name (only strings name steps) is
    -- looked up once, for the check and for entering it
    local step = frame and flows[frame.flow][outcome]
    if step ~= nil then
      frame.step = outcome
    else
      if type(outcome) == "string" then
        error(string.format("%s: returned '%s', but flow '%s' has no step '%s'",
          describe(source), outcome, frame.flow, outcome), 0)
      elseif getmetatable(outcome) ~= conversation.transition then
        error(string.format("%s: returned a %s; a step returns a step name, c:call(...), c:done() or nothing",
          describe(source), type(outcome)), 0)
      elseif outcome.kind == "call" then
        -- (an intent's call where no step waits returns where c:resume() would go)
        if frame or resume_empty(c) then top(c).resume = outcome.resume end
        push(c, outcome.flow, outcome.args)
      elseif outcome.kind == "done" then
        table.remove(c.session.stack)
        rawset(c, "result", outcome.value)
        local parent = top(c)
        if not parent then
          c.session.ended = true
          return
        end
        if parent.resume then parent.step, parent.resume = parent.resume, nil end
      elseif outcome.kind == "restart" then
        c.session.stack = json.array()
        push(c, bot.start_flow)
        -- the start flow begins afresh: it does not see the message that
        -- caused the restart ("cancel"), only that it restarted
        c.msg = { user = c.msg.user, channel = c.msg.channel, locale = c.msg.locale, restarted = true }
      elseif outcome.kind == "resume" then
        if not top(c) and not resume_empty(c) then return end
      elseif outcome.kind == "handoff" then
        return start_handoff(c, outcome.reason)
      end
      -- the frame a finished flow returns to may be one a reload took away
      frame = repair(c)
      if not frame then
        push(c, bot.start_flow)
        frame = top(c)
      end
      stack = c.session.stack
      step = flows[frame.flow][frame.step]
    end
    if hop > MAX_HOPS - TRAIL then
      trail = trail or {}
      trail[#trail + 1] = frame.flow .. "." .. frame.step
    end
    -- enter(c), written out: a step that asks is where the drive ends
    -- (on the next hop, of which there is none after the last)
    if frame ~= c.frame then conversation.refresh(c) end
    if (step_kinds[step] or type(step)) == "function" then
      outcome, source, is_action = step(c, c.msg), step, true
      stack = c.session.stack -- (read again on each hop, as it always was)
      frame = stack[#stack]
    else
      local ask = step.ask
      if ask then ask(c, c.msg) end
      if hop < MAX_HOPS then return end
      outcome, source, is_action = nil, ask, false
    end
  end
  error("the flow moves from step to step without ever waiting for the shopper: " ..
    table.concat(trail, " -> "), 0)
end

-- A typed number or a typed choice title (typed: the text folded) counts
-- as tapping that choice of the last turn's.
local function resolve_choice(msg, offered, typed)
  local n = math.tointeger(tonumber(msg.text:match("^%s*(%d+)%s*$")))
  local choice = n and offered[n]
  if not choice then
    for _, o in ipairs(offered) do
      if text.fold(o.title) == typed then choice = o; break end
    end
  end
  if choice then
    msg.payload = choice.payload
    msg.choice = choice
  end
end

-- The intent one of whose phrases the folded text holds (the first, in
-- intent name order), or nil.
intent_by_phrase = function(locale, typed)
  local texts = bot.phrase_texts[locale]
  if not texts or texts[1] == nil then return nil end
  local i = internal.first_phrase(typed, texts) -- text.has_phrase over the list, in one call
  return i and bot.phrases[locale][i].intent
end

-- The router's intent the message names, or nil, for a bot that has a
-- router and a step that lets it in. typed is the text folded, false when
-- it is not folded yet (it is only when a phrase is compared).
local function match_intent(s, msg, typed)
  local payload = msg.payload
  if payload ~= nil and type(payload) == "string" then return bot.intent_payloads[payload] end
  local locale = s.locale
  local texts = bot.phrase_texts[locale]
  if not bot.has_examples and (not texts or texts[1] == nil) then return nil end
  if typed == false then typed = type(msg.text) == "string" and text.fold(msg.text) or nil end
  if not typed then return nil end
  return intent_by_phrase(locale, typed) or (bot.has_examples and understand.intent_by_examples(bot, locale, msg.text)) or nil
end

-- The message goes to the step waiting for it (step: the top frame's, when
-- it has one), or starts the conversation.
local function answer(c, msg, step)
  if step == nil then
    local frame = repair(c)
    if not frame then
      push(c, bot.start_flow)
      return drive(c, enter(c))
    end
    step = flows[frame.flow][frame.step]
    if frame ~= c.frame then conversation.refresh(c) end
  end
  if (step_kinds[step] or type(step)) == "function" then return drive(c, enter(c)) end
  local answer_ = step.answer
  return drive(c, answer_(c, msg), answer_, false)
end

-- The choices offered in this turn, remembered for the next message:
-- every reply's in one list, or nil.
local function offered(c) return internal.offered(c.out) end

-- Events: what happens to a session without the shopper writing ----------

-- Runs a hook from scripts/hooks.lua; a failing hook is logged (with its
-- file:line) and does not stop the rest of the turn. Returns whether there
-- is such a hook, and what it returned.
local function run_hook_result(c, name, ...)
  local fn = (bot.scripts.hooks or {})[name]
  if not fn then return false end
  local ok, result = pcall(fn, c, ...)
  if not ok then
    log.error(string.format("scripts/hooks.lua %s failed: %s", name, tostring(result)))
    return true
  end
  return true, result
end

local function run_hook(c, name, ...)
  return (run_hook_result(c, name, ...))
end

-- Says a template when the tone has it (events have sensible defaults that
-- a bot may leave out); returns whether it said something.
local function say_if(c, key, vars)
  if not bot.tone:has(key, c.locale) then return false end
  c:say(key, vars)
  return true
end

-- Human handoff -------------------------------------------------------------

-- The session waits for a person; the flow stays where it was (an agent
-- may hand back there).
function start_handoff(c, reason)
  local s = c.session
  s.handoff = { state = "waiting", reason = reason, since = os.time() * 1000,
                display_name = c.msg.channel.display_name }
  conversation.effects(c).handoff = s.handoff
  analytics.record(c, "handoff_requested", { reason = reason })
  if bot.tone:has("handoff", c.locale) then c:say "handoff" end
end

-- What an agent does reaches the session as an event, in order with the
-- shopper's messages: claim, reply, handback (to a flow and step), close.
local function on_agent(c, ev)
  local s = c.session
  local h = s.handoff
  if not h then return end
  if ev.action == "claim" then
    if h.agent ~= nil and h.agent ~= ev.agent then return end -- the first claim wins
    local first = h.agent == nil
    h.agent, h.state = ev.agent, "active"
    conversation.effects(c).handoff = h
    if first then
      h.claimed_at = os.time() * 1000
      analytics.record(c, "handoff_claimed", { wait_s = (h.claimed_at - (h.since or h.claimed_at)) // 1000 })
    end
    if first and bot.tone:has("agent_joined", c.locale) then c:say("agent_joined", { agent = ev.agent }) end
  elseif ev.action == "reply" then
    -- a person's words go out as written: no template, no style hook
    c.out[#c.out + 1] = { text = ev.text, agent = { name = ev.agent } }
  elseif ev.action == "handback" then
    analytics.record(c, "handoff_closed", { how = "handback", duration_s = (os.time() * 1000 - (h.since or 0)) // 1000 })
    s.handoff = nil
    -- the store keeps it among the agents' closed conversations
    conversation.effects(c).handoff = { state = "closed", how = "handback", agent = ev.agent }
    if ev.flow and has_step(ev.flow, ev.step or "start") then
      local frame = top(c)
      if not (frame and frame.flow == ev.flow) then
        s.stack = json.array()
        push(c, ev.flow)
      end
      top(c).step = ev.step or "start"
    end
    -- no flow named: where the conversation was, by c:resume()'s rules
    -- (where no step waits: the start flow if it has not begun, its
    -- 'resume' step if it ended, or nothing said)
    repair(c)
    drive(c, c:resume())
  elseif ev.action == "close" then
    analytics.record(c, "handoff_closed", { how = "close", duration_s = (os.time() * 1000 - (h.since or 0)) // 1000 })
    s.handoff = nil
    s.stack = json.array()
    s.ended = true
    conversation.effects(c).handoff = { state = "closed", how = "close", agent = ev.agent }
    if bot.tone:has("closed", c.locale) then c:say "closed" end
  end
end

-- A page event from the web chat widget: the bot may greet first. The
-- bot's hooks.on_page(c, page) decides; without it, a shopper who has not
-- started a conversation gets the tone's "proactive" template, once a day.
local GREET_AGAIN_AFTER = 24 * 3600

local function on_page(c, ev)
  if run_hook_result(c, "on_page", ev) then return end
  local s = c.session
  if top(c) or (s.greeted_at and os.time() - s.greeted_at < GREET_AGAIN_AFTER) then return end
  if bot.tone:has("proactive", c.locale) then
    s.greeted_at = os.time()
    c:say("proactive", { title = ev.title or "", url = ev.url or "" })
  end
end

-- Whether opening the web chat panel starts session s's conversation: once
-- per conversation, not after the shopper has written, not while a flow
-- waits or a person has it, not twice.
local function opening_starts(s)
  return not (s.opened_at or s.heard_at or (s.stack and s.stack[#s.stack]) or s.handoff)
end

-- The web chat panel was opened: a conversation that has not begun starts
-- here, as if the shopper had written (the start flow runs on a message
-- without text: msg.text is nil, msg.event.type == "open").
local function on_open(c)
  local s = c.session
  if not opening_starts(s) then return end
  s.opened_at = os.time()
  push(c, bot.start_flow)
  drive(c, enter(c))
end

local function order_vars(c, order, extra)
  local vars = { order = order.id, total = c:price(order.total, order.currency), status = order.state }
  for k, v in pairs(extra or {}) do vars[k] = v end
  return vars
end

-- A provider's confirmation: the hooks run, the paid cart is emptied, and
-- the flow step waiting for this order gets msg.payment; a shopper who
-- moved on is told anyway.
-- The payment's events: paid, failed or refunded, and a cart recovered when
-- the paid order's cart had its abandoned-cart reminder.
local function record_payment(c, order, status)
  local props = { order = order.id, total = order.total, currency = order.currency }
  analytics.record(c, "payment_" .. status, props)
  if status ~= "paid" then return end
  local s = c.session
  local was = (s.pending_order and s.pending_order.id == order.id and s.pending_order)
    or (s.unpaid_order and s.unpaid_order.id == order.id and s.unpaid_order)
  if was and (s.reminded_cart == was.cart or (s.cart.reminded and s.cart.id == was.cart)) then
    analytics.record(c, "cart_recovered", props)
  end
end

local function on_payment(c, ev)
  local s, order, status = c.session, ev.order, ev.status
  record_payment(c, order, status)
  run_hook(c, "on_" .. status, order)
  local waiting = s.pending_order
  if status == "paid" and s.unpaid_order and s.unpaid_order.id == order.id then
    -- paid on the provider's page after all (a retry after a decline)
    if s.cart.id == s.unpaid_order.cart then c.cart:clear() end
    s.unpaid_order = nil
  end
  if waiting and waiting.id == order.id then
    s.pending_order = nil
    s.unpaid_order = status ~= "paid" and waiting or nil -- its page may still take the money
    if status == "paid" and s.cart.id == waiting.cart then c.cart:clear() end
    local frame = top(c)
    local step = frame and bot.flows[frame.flow] and step_of(frame)
    if frame and frame.flow == waiting.flow and #s.stack == waiting.depth and type(step) == "table" then
      c.msg.payment = { status = status, order = order }
      conversation.refresh(c)
      return drive(c, step.answer(c, c.msg), step.answer, false)
    end
  end
  if #c.out == 0 then say_if(c, "order_" .. status, order_vars(c, order)) end
end

local function on_order_status(c, ev)
  analytics.record(c, "order_status", { order = ev.order.id, status = ev.status })
  run_hook(c, "on_order_status", ev.order, ev.status, ev.tracking_url)
  if #c.out > 0 then return end
  local vars = order_vars(c, ev.order, { status = ev.status, tracking_url = ev.tracking_url or "" })
  if not say_if(c, "order_" .. ev.status, vars) and not say_if(c, "order_status", vars) then
    log.warn("no template order_" .. ev.status .. " or order_status to tell the shopper about order " .. ev.order.id)
  end
end

-- The reminder's discount code, when it makes the cart cheaper than the
-- shopper's own code does and this shopper may still use it; otherwise the
-- cart keeps the code it had and the reminder offers none.
local function reminder_code(c, code)
  if not code then return nil end
  local before, previous = c.cart:totals().discount, c.session.cart.code
  if not c.cart:apply_code(code) then return nil end
  if c.cart:totals().discount > before then return code end
  if previous then c.cart:apply_code(previous) else c.cart:remove_code() end
  return nil
end

-- A checkout left unpaid: the same payment link again, no new code (the
-- order's amount is fixed).
local function remind_checkout(c, order)
  local vars = { order = order.id, total = c:price(order.total, order.currency) }
  if not bot.tone:has("abandoned_checkout", c.locale) then return end
  analytics.record(c, "reminder_sent", { kind = "checkout", order = order.id })
  c:say("abandoned_checkout", vars, {
    link = { title = bot.tone:has("pay_button", c.locale) and c:t("pay_button", vars) or vars.total,
             url = order.payment_url },
  })
end

-- The built-in abandoned-cart reminder: once per cart, only if the cart is
-- still the one that was left and no person has the conversation.
local function remind_cart(c, data)
  local raw, s = c.session.cart, c.session
  if c.cart:is_empty() or raw.id ~= (data and data.cart) or raw.reminded or s.handoff then return end
  raw.reminded = true
  s.reminded_cart = raw.id
  s.reminder = nil
  local pending = s.pending_order and c:order(s.pending_order.id)
  if pending and pending.state == "pending" then return remind_checkout(c, pending) end
  local offered = (bot.abandoned or {}).discount_code
  local owner = c.cart.owner
  c.cart.owner = nil -- (trying the code is not the shopper applying one)
  local code = reminder_code(c, offered)
  c.cart.owner = owner
  local vars = { count = c.cart:count(), total = c:price(c.cart:total()), code = code or "" }
  if code or not offered then
    analytics.record(c, "reminder_sent", { kind = "cart", code = code })
    return c:say("abandoned_cart", vars)
  end
  -- the code cannot be given (used, or worth less than the shopper's own)
  if say_if(c, "abandoned_cart_no_code", vars) then
    analytics.record(c, "reminder_sent", { kind = "cart" })
  else
    log.warn("no template abandoned_cart_no_code: the reminder without a discount code was not sent")
  end
end

local function on_job(c, ev)
  local handler = (bot.scripts.jobs or {})[ev.name]
  if handler then return handler(c, ev.data) end
  if ev.name == "abandoned_cart" then return remind_cart(c, ev.data) end
  log.warn("no function '" .. tostring(ev.name) .. "' in scripts/jobs.lua for a job that fired")
end

local function handle_event(c, ev)
  repair(c)
  if ev.type == "payment" then on_payment(c, ev)
  elseif ev.type == "order_status" then on_order_status(c, ev)
  elseif ev.type == "job" then on_job(c, ev)
  elseif ev.type == "agent" then on_agent(c, ev)
  elseif ev.type == "page" then on_page(c, ev)
  elseif ev.type == "open" then on_open(c)
  else log.warn("an event of unknown type " .. tostring(ev.type)) end
end

-- After each message: a cart left with items gets its reminder scheduled
-- (again: the silence starts now), a cart emptied or checked out cancels it.
local function schedule_reminder(c)
  local rule, s = bot.abandoned, c.session
  if not rule then return end
  if not c.cart:is_empty() and not s.cart.reminded and not s.handoff then
    -- c:schedule("abandoned_cart", {after = ...}, {cart = id}) without its
    -- checks, which these values always pass
    local jobs = conversation.effects(c).jobs
    jobs[#jobs + 1] = { op = "put", name = "abandoned_cart", after = (rule.after_minutes or 60) * 60,
                        data = { cart = s.cart.id } }
    s.reminder = s.cart.id
  elseif s.reminder then
    c:cancel("abandoned_cart")
    s.reminder = nil
  end
end

-- What the platform said of the shopper's last message (msg.channel without
-- the name and push parley adds), kept so that what the bot says unasked (a
-- payment's result, a reminder, an agent's words) goes where the shopper
-- last wrote: the Slack DM, the email thread. nil when there is nothing.
local function channel_facts(channel)
  local facts
  for k, v in next, channel do -- (C made it: a table without __pairs)
    if k ~= "name" and k ~= "push" then
      facts = facts or {}
      facts[k] = v
    end
  end
  return facts
end

-- What a turn returns: the session, the replies (a list even when empty)
-- and the effects (nil when there are none).
local NO_REPLIES = json.array()
-- the effects of a turn that leaves no trace: nothing is stored of it
local IGNORED = { ignored = true }

local function results(c, frame, step, marks)
  local out = c.out
  if out[1] == nil then out = NO_REPLIES end
  return c.session, out, c.effects, bot.analytics_on and analytics.results(c, frame, step, marks) or nil
end

-- turn(session or nil, msg) -> session, replies, effects
-- msg = {user =, channel = {name =, ...}, text =, payload =, locale =, event =}
function engine.turn(session, msg)
  -- a panel opened again (a reload, another tab) is no activity of the
  -- conversation: the session, its transcript and its last activity stay
  if session and msg.event and msg.event.type == "open" and not opening_starts(session) then
    return session, NO_REPLIES, IGNORED
  end
  local s = session or new_session()
  s.turn = (s.turn or 0) + 1
  local requested, current = msg.locale, s.locale
  -- (pick_locale's answer, when the locale stays what it was)
  if not ((requested == nil or requested == current) and locale_set[current]) then
    s.locale = pick_locale(requested, current, s.locale_chosen)
  end
  s.updated_at = os.time()
  local c = conversation.new(bot, s, msg)
  -- where the conversation waited when the turn began (analytics: a step event when it moves)
  local frame_before = c.frame
  local step_before = frame_before and frame_before.step
  if msg.event then
    handle_event(c, msg.event)
    schedule_reminder(c) -- a declined payment leaves the cart; a paid one empties it
    s.offered = offered(c) or s.offered
    -- a channel that cannot carry a message the shopper did not ask for
    -- (HTTP API, console, voice): it waits and comes with the next answer
    if msg.channel.push == false and #c.out > 0 then
      s.unread = s.unread or json.array()
      for _, reply in ipairs(c.out) do s.unread[#s.unread + 1] = reply end
    end
    return results(c, frame_before, step_before, 0)
  end
  -- (the turn's analytics marks: message, and whether a conversation began)
  local marks = analytics.heard(c, s, s.updated_at)
  s.heard_at = s.updated_at -- the shopper wrote: a platform's messaging window opens again
  local facts = channel_facts(msg.channel)
  if facts ~= nil or s.heard_facts ~= nil then s.heard_facts = facts end
  if s.unread then
    for i, reply in ipairs(s.unread) do table.insert(c.out, i, reply) end
    conversation.effects(c).recorded = #s.unread -- the transcript has these already
    s.unread = nil
  end
  if s.handoff then
    -- a person has (or will have) this conversation: the bot keeps quiet
    s.offered = nil
    return results(c, frame_before, step_before, marks)
  end
  -- the text folded, when something compares it (false: not folded yet)
  local typed = false
  local before = s.offered
  if before ~= nil then
    s.offered = nil
    if msg.payload == nil and type(msg.text) == "string" then
      typed = text.fold(msg.text)
      if typed then resolve_choice(msg, before, typed) end
    end
  end
  -- the step waiting for this message, when its flow and step exist (a
  -- flow or step a reload took away leaves it nil: answer() repairs)
  local frame = c.frame -- (the top one)
  local step
  if frame then
    local flow = flows[frame.flow]
    step = flow and flow[frame.step]
  end
  -- a product's sku tapped (c.catalog:get(payload), which finds only
  -- string skus: the turn's view, before any script could change c)
  local payload = msg.payload
  if payload ~= nil and bot.analytics_on and c.catalog.index[payload] then
    analytics.record(c, "product_chosen", { sku = payload, recommended = analytics.was_recommended(c, payload) or nil })
  end
  local intent
  if bot.has_intents and not ((step_kinds[step] or type(step)) == "table" and step.intents == false) then
    intent = match_intent(s, msg, typed)
  end
  if msg.channel.resume and msg.text == nil and msg.payload == nil and frame then
    -- the channel reopened (a voice skill launched again): ask again
    repair(c)
    drive(c, c:resume())
  elseif intent then
    repair(c)
    conversation.refresh(c)
    drive(c, intent.run(c, msg), intent.run, false)
  else
    answer(c, msg, step)
  end
  -- offered(c), without the call when the turn said at most one thing
  -- and that without choices
  local out = c.out
  local first, offered_now = out[1], nil
  if first ~= nil and (first.choices ~= nil or out[2] ~= nil) then offered_now = internal.offered(out) end
  if offered_now ~= nil or s.offered ~= nil then s.offered = offered_now end
  if bot.abandoned then schedule_reminder(c) end
  out = c.out -- (results(c), written out)
  if out[1] == nil then out = NO_REPLIES end
  return s, out, c.effects, bot.analytics_on and analytics.results(c, frame_before, step_before, marks) or nil
end

-- fallback(session or nil, msg) -> replies: the tone's 'fallback' template,
-- sent when a turn failed. It must not fail itself: no style hook here.
function engine.fallback(session, msg)
  local locale = pick_locale(msg and msg.locale, session and session.locale)
  local seed = string.format("%s/%s/%s/", bot.name, msg and msg.user or "", session and session.turn or 0)
  local words = bot.tone:render("fallback", {}, locale, seed, 0)
  return json.array({ { text = words or "Sorry, something went wrong. Please try again." } })
end

return engine
