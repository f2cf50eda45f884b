-- parley.understand_cli: what `parley understand` (runtime/cli/understand.c)
-- runs inside a bot's own state. It makes the conversation of a made-up
-- shopper in a locale of the bot (an empty cart, no flow), calls its
-- c:understand(text) exactly as a step would, and hands back the parse as
-- plain values for JSON: skus where c:understand gives products. It also
-- checks a corpus label against the bot (skus, options and their values,
-- intents, discount codes), so that a label naming what the bot does not
-- have shows as a mistake of the corpus rather than a miss of the parser.
local engine = require "parley.engine"
local conversation = require "parley.conversation"
local json = require "json"

local cli = {}

local function shopper(locale, text)
  local session = {
    turn = 1, locale = locale, stack = json.array(), cart = { lines = json.array() }, profile = {},
  }
  local msg = { user = "parley-understand", channel = { name = "cli" }, text = text, locale = locale }
  return conversation.new(engine.bot, session, msg)
end

-- locales() -> the bot's locales, first the default
function cli.locales() return engine.bot.locales end

-- name() -> the bot's name (bot.json)
function cli.name() return engine.bot.name end

local function sku_of(thing)
  if type(thing) == "string" then return thing end
  if type(thing) ~= "table" then return nil end
  return thing.sku or (type(thing.product) == "table" and thing.product.sku) or nil
end

local function nonempty(t) return type(t) == "table" and next(t) ~= nil end

local function plain_item(item)
  local out = { sku = sku_of(item), qty = item.qty }
  if nonempty(item.options) then out.options = item.options end
  if nonempty(item.without) then out.without = item.without end
  out.confidence = item.confidence
  return out
end

-- parse(locale, text) -> c:understand(text) as plain values: intent, items
-- ({sku, qty, options, without, confidence}), without (skus), yes, number,
-- code, rest, confidence, confident, source.
function cli.parse(locale, text)
  local r = shopper(locale, text):understand(text)
  if type(r) ~= "table" then error("c:understand returned " .. type(r) .. ", not a table", 0) end
  local out = {
    intent = r.intent, yes = r.yes, number = r.number, code = r.code, rest = r.rest,
    confidence = r.confidence, confident = r.confident, source = r.source,
  }
  if nonempty(r.items) then
    out.items = json.array()
    for i, item in ipairs(r.items) do out.items[i] = plain_item(item) end
  end
  if nonempty(r.without) then
    out.without = json.array()
    for i, w in ipairs(r.without) do out.without[i] = sku_of(w) end
  end
  return out
end

-- call(locale, text): one c:understand, its result dropped (for timing;
-- a fresh conversation each time, as each turn has).
function cli.call(locale, text) shopper(locale, text):understand(text) end

-- What a label may name ------------------------------------------------

local function check_choice(problems, p, name, value, where)
  if type(value) ~= "string" then
    problems[#problems + 1] = string.format("%s: the value of option %s of %s is not a string", where, name, p.sku)
  elseif not p:option(name, value) then
    problems[#problems + 1] = string.format("%s: %s has no choice '%s' for option %s", where, p.sku, value, name)
  end
end

local function check_option(problems, p, name, value, where)
  local option = p.options and p.options[name]
  if not option then
    problems[#problems + 1] = string.format("%s: %s has no option '%s'", where, p.sku, tostring(name))
  elseif type(value) == "table" then
    for _, v in ipairs(value) do check_choice(problems, p, name, v, where) end
  elseif value ~= true then
    check_choice(problems, p, name, value, where)
  end
end

local function check_item(problems, view, item, where)
  local p = type(item) == "table" and view:get(item.sku)
  if not p then
    problems[#problems + 1] = string.format("%s: no product with sku '%s'", where, tostring(type(item) == "table" and item.sku))
    return
  end
  for name, value in pairs(item.options or {}) do check_option(problems, p, name, value, where .. ".options") end
  for name, value in pairs(item.without or {}) do check_option(problems, p, name, value, where .. ".without") end
end

local function has_intent(name)
  for _, intent in ipairs(engine.bot.intents or {}) do
    if intent.name == name then return true end
  end
  return false
end

-- problems(locale, expect) -> list of what the label names that the bot
-- does not have (empty when it is all there)
function cli.problems(locale, expect)
  local problems = json.array()
  local view = engine.bot.catalog:view(locale)
  for i, item in ipairs(expect.items or {}) do check_item(problems, view, item, "items[" .. i .. "]") end
  for i, sku in ipairs(expect.without or {}) do
    if not view:get(sku) then problems[#problems + 1] = string.format("without[%d]: no product with sku '%s'", i, tostring(sku)) end
  end
  if expect.intent ~= nil and not has_intent(expect.intent) then
    problems[#problems + 1] = string.format("intent: scripts/router.lua has no intent '%s'", tostring(expect.intent))
  end
  if expect.code ~= nil and not (type(expect.code) == "string" and engine.bot.discounts[expect.code:upper()]) then
    problems[#problems + 1] = string.format("code: bot.json has no discount '%s'", tostring(expect.code))
  end
  return problems
end

return cli
