-- parley.understand_llm: the optional language model behind c:understand
-- (bot.json "understanding": {"llm": {...}}; docs/understanding-llm.md).
--
--   local llm = require "parley.understand_llm"
--   if llm.enabled() then
--     local result, reason = llm.ask(text, parsed, world)
--   end
--
-- world = { locale =, view = <catalog view>, intents = { {name =, phrases =, examples =} },
--           codes = { "WELCOME10" }, catalog_version =, bot = }
--
-- The model is asked (OpenAI chat completions with one tool, whose JSON
-- schema is made from the bot's intents and catalog) only when `parsed`, the
-- deterministic parse, is not confident. What it answers is never trusted:
-- an unknown intent, sku, option or value is dropped, a quantity is held to
-- 1..99, a price or any field the schema does not name is ignored, and the
-- products are the catalog's own. On a timeout, an HTTP error, an invalid
-- answer or an exhausted rate or token budget, ask returns nil and a short
-- reason, and the parser's result stands. The request itself, the bot's
-- key, its rate and token budget and the counts are parley.llm's (C),
-- shared by every thread's state of the bot; the cache of answers is this
-- state's.
local native = require "parley.llm"
local json = require "json"
local log = require "log"
local text = require "parley.text"

local llm = {}

local TOOL = "understood"
local CONFIDENCE = 0.8
local MAX_QTY = 99
local MAX_NUMBER = 9999
local MAX_EXAMPLES = 8 -- phrases and examples of an intent in the prompt
-- a part the parser was this sure of stands when the model leaves it out
local SURE = 0.9

local settings_cache -- false: off
local function settings()
  if settings_cache == nil then settings_cache = native.settings() or false end
  return settings_cache or nil
end

function llm.enabled() return settings() ~= nil end

-- --- what is sent -------------------------------------------------------------

-- text with e-mail addresses and phone numbers (7 digits or more, with
-- spaces, dots, dashes and brackets between) replaced by [email] / [phone]
-- as kinds ({email = true, phone = true}) says.
function llm.redact(s, kinds)
  if kinds.email then s = s:gsub("[%w%._%%%+%-]+@[%w%-]+%.[%w%.%-]*%w", "[email]") end
  if kinds.phone then
    s = s:gsub("[%+%(]?%d[%d%s%-%.%(%)/]*%d", function(run)
      local _, digits = run:gsub("%d", "")
      if digits >= 7 then return "[phone]" end
    end)
  end
  return s
end

-- A localized list of strings: a list, or locale -> list ("*" for all);
-- the items strings or {text =, locale =} (the engine's router phrases).
local function strings_of(v, locale)
  if type(v) ~= "table" then return {} end
  local lang = locale and locale:match("^(%a+)")
  if v[1] == nil then v = v[locale] or v[lang] or v["*"] or {} end
  local out = {}
  for _, s in ipairs(v) do
    if type(s) == "string" then
      out[#out + 1] = s
    elseif type(s) == "table" and type(s.text) == "string" and (s.locale == nil or s.locale == locale
                                                                 or s.locale == lang) then
      out[#out + 1] = s.text
    end
  end
  return out
end

local function sorted(list)
  table.sort(list)
  return list
end

-- The bot's world as the schema and the checks see it: products by sku,
-- every option name with its values (and whether any product lets several
-- be chosen), intents by name, codes by their upper case.
function llm.known(world)
  local known = { products = {}, skus = {}, options = {}, option_names = {}, intents = {}, intent_names = {},
                  codes = {} }
  for _, p in ipairs(world.view:all({ all = true })) do
    known.products[p.sku] = p
    known.skus[#known.skus + 1] = p.sku
    for name, list in pairs(p.options or {}) do
      local o = known.options[name]
      if not o then
        o = { values = {}, seen = {}, multiple = false, titles = {} }
        known.options[name] = o
        known.option_names[#known.option_names + 1] = name
      end
      o.multiple = o.multiple or list.multiple == true
      for _, choice in ipairs(list) do
        if not o.seen[choice.value] then
          o.seen[choice.value] = true
          o.values[#o.values + 1] = choice.value
          o.titles[#o.titles + 1] = choice.title ~= choice.value and (choice.value .. " (" .. choice.title .. ")")
                                    or choice.value
        end
      end
    end
  end
  for _, intent in ipairs(world.intents or {}) do
    if type(intent.name) == "string" and not known.intents[intent.name] then
      known.intents[intent.name] = intent
      known.intent_names[#known.intent_names + 1] = intent.name
    end
  end
  for _, code in ipairs(world.codes or {}) do known.codes[tostring(code):upper()] = code end
  sorted(known.option_names)
  sorted(known.intent_names)
  return known
end

local function enum(list)
  local copy = json.array()
  for i = 1, #list do copy[i] = list[i] end
  return copy
end

-- The JSON schema of the tool's arguments, made from the bot's own intents
-- and catalog.
function llm.schema(known)
  local props = {
    yes = { type = "boolean", description = "the shopper said yes (true) or no (false)" },
    number = { type = "integer", minimum = 0,
               description = "a number that is not a quantity: a choice (\"the second one\" is 2)" },
    code = { type = "string", description = "a discount code the shopper typed" },
  }
  if #known.intent_names > 0 then
    props.intent = { type = "string", enum = enum(known.intent_names), description = "what the shopper wants" }
  end
  if #known.skus > 0 then
    local options = {}
    for _, name in ipairs(known.option_names) do
      local o = known.options[name]
      local value = { type = "string", enum = enum(o.values) }
      options[name] = o.multiple and { type = "array", items = value } or value
      options[name].description = "choices: " .. table.concat(o.titles, ", ")
    end
    local item = {
      type = "object",
      properties = {
        sku = { type = "string", enum = enum(known.skus) },
        qty = { type = "integer", minimum = 1, description = "how many (1 when not said)" },
      },
      required = json.array({ "sku" }),
      additionalProperties = false,
    }
    if #known.option_names > 0 then
      item.properties.options = { type = "object", properties = options, additionalProperties = false }
      item.properties.without = { type = "array", items = { type = "string" },
                                  description = "options or choices the shopper does not want (\"no milk\": milk)" }
    end
    props.items = { type = "array", items = item, description = "the products the shopper names, in order" }
    props.without = { type = "array", items = { type = "string", enum = enum(known.skus) },
                      description = "products the shopper does not want" }
  end
  return { type = "object", properties = props, additionalProperties = false }
end

local function system_prompt(world, known)
  local lines = {
    string.format("You read one message a shopper wrote to the shop %q (locale %s). Call %s with what it says, "
                  .. "using only the intents, SKUs, options and values its schema allows; leave out what the "
                  .. "message does not say. Never give prices.", tostring(world.bot or ""),
                  tostring(world.locale or "en"), TOOL),
  }
  if #known.skus > 0 then
    local products = {}
    for _, sku in ipairs(known.skus) do products[#products + 1] = sku .. ": " .. tostring(known.products[sku].title) end
    lines[#lines + 1] = "Products (sku: name): " .. table.concat(products, "; ")
  end
  for _, name in ipairs(known.intent_names) do
    local intent = known.intents[name]
    local said = {}
    for _, list in ipairs({ strings_of(intent.phrases, world.locale), strings_of(intent.examples, world.locale) }) do
      for _, s in ipairs(list) do
        if #said < MAX_EXAMPLES then said[#said + 1] = s end
      end
    end
    lines[#lines + 1] = "Intent " .. name .. (#said > 0 and (": e.g. " .. table.concat(said, " | ")) or "")
  end
  return table.concat(lines, "\n")
end

-- The body of the chat-completions request for the (redacted) text.
function llm.request(s, world, known, said)
  known.schema = known.schema or llm.schema(known)
  return {
    model = s.model,
    temperature = 0,
    messages = json.array({
      { role = "system", content = system_prompt(world, known) },
      { role = "user", content = said },
    }),
    tools = json.array({ { type = "function", ["function"] = {
      name = TOOL, description = "Record what the shopper's message says", parameters = known.schema } } }),
    tool_choice = { type = "function", ["function"] = { name = TOOL } },
  }
end

-- --- what is believed -----------------------------------------------------------

local function whole(v)
  if math.type(v) == "integer" then return v end
  if type(v) == "number" and v == math.floor(v) and v > -1e15 and v < 1e15 then return math.tointeger(v) end
end

-- The choices of option `name` of product p the answer names (a value or a
-- list of them), only those the catalog has: a value, a list, or nil.
local function checked_choice(p, name, given)
  local list = p.options and p.options[name]
  if not list then return nil end
  local values = type(given) == "table" and given or { given }
  local out = {}
  for _, v in ipairs(values) do
    if type(v) == "string" and p:option(name, v) then out[#out + 1] = v end
  end
  if #out == 0 then return nil end
  if list.multiple then return out end
  return out[1]
end

-- item.without: option names ("milk") and choices of multiple options ("onion").
local function checked_without(p, given)
  if type(given) ~= "table" or not p.options then return nil end
  local out
  for _, w in ipairs(given) do
    if type(w) == "string" then
      if p.options[w] then
        out = out or {}
        out[w] = true
      else
        for name, list in pairs(p.options) do
          if list.multiple and p:option(name, w) then
            out = out or {}
            if type(out[name]) ~= "table" then out[name] = {} end
            table.insert(out[name], w)
          end
        end
      end
    end
  end
  return out
end

local function checked_item(raw, known)
  if type(raw) ~= "table" or type(raw.sku) ~= "string" then return nil end
  local p = known.products[raw.sku]
  if not p then return nil end
  local qty = whole(raw.qty) or 1
  if qty < 1 then qty = 1 elseif qty > MAX_QTY then qty = MAX_QTY end
  local item = { sku = p.sku, qty = qty, options = {} }
  if type(raw.options) == "table" then
    for name, given in pairs(raw.options) do
      if type(name) == "string" then item.options[name] = checked_choice(p, name, given) end
    end
  end
  item.without = checked_without(p, raw.without)
  return item
end

-- The plain answer (skus, no products) of the tool's arguments: only what
-- the catalog, the intents and the codes have; nil when nothing is left.
-- Also says whether the model had said anything at all.
function llm.check(args, known)
  if type(args) ~= "table" then return nil, false end
  local out, said = {}, false
  if args.intent ~= nil then
    said = true
    if known.intents[args.intent] then out.intent = args.intent end
  end
  if type(args.items) == "table" then
    for _, raw in ipairs(args.items) do
      said = true
      local item = checked_item(raw, known)
      if item then
        out.items = out.items or {}
        out.items[#out.items + 1] = item
      end
    end
  end
  if type(args.without) == "table" then
    for _, sku in ipairs(args.without) do
      said = true
      if known.products[sku] then
        out.without = out.without or {}
        out.without[#out.without + 1] = sku
      end
    end
  end
  if args.yes ~= nil then
    said = true
    if type(args.yes) == "boolean" then out.yes = args.yes end
  end
  if args.number ~= nil then
    said = true
    local n = whole(args.number)
    if n and n >= 0 and n <= MAX_NUMBER then out.number = n end
  end
  if args.code ~= nil then
    said = true
    if type(args.code) == "string" then out.code = known.codes[args.code:upper()] end
  end
  if next(out) == nil then return nil, said end
  return out, said
end

-- The tool call's arguments in an OpenAI answer's body, or nil.
local function arguments_of(body)
  local answer = json.decode(body)
  local message = type(answer) == "table" and type(answer.choices) == "table" and type(answer.choices[1]) == "table"
                  and answer.choices[1].message
  if type(message) ~= "table" then return nil end
  local call = type(message.tool_calls) == "table" and message.tool_calls[1]
  local fn = type(call) == "table" and call["function"]
  local args = type(fn) == "table" and fn.arguments
  if type(args) == "table" then return args end
  if type(args) ~= "string" and type(message.content) == "string" then args = message.content end
  if type(args) ~= "string" then return nil end
  local decoded = json.decode(args)
  if type(decoded) == "table" then return decoded end
end

-- The contract's result of a plain answer (copied: a flow may change what
-- it gets, never the cache): products from the view (their prices are the
-- catalog's), the parser's sure parts where the model said nothing of them.
local function result_of(plain, view, parsed)
  local r = { rest = "", confidence = {}, confident = true, source = "llm" }
  if plain.items then
    r.items = {}
    for _, item in ipairs(plain.items) do
      local options = {}
      for k, v in pairs(item.options) do options[k] = type(v) == "table" and { table.unpack(v) } or v end
      local without
      for k, v in pairs(item.without or {}) do
        without = without or {}
        without[k] = type(v) == "table" and { table.unpack(v) } or v
      end
      r.items[#r.items + 1] = { product = view:get(item.sku), sku = item.sku, qty = item.qty, options = options,
                                without = without, confidence = CONFIDENCE }
    end
    r.confidence.items = CONFIDENCE
  end
  if plain.without then
    r.without = {}
    for _, sku in ipairs(plain.without) do r.without[#r.without + 1] = { product = view:get(sku), sku = sku } end
  end
  for _, part in ipairs({ "intent", "yes", "number", "code" }) do
    if plain[part] ~= nil then
      r[part] = plain[part]
      r.confidence[part] = CONFIDENCE
    end
  end
  local pc = type(parsed) == "table" and type(parsed.confidence) == "table" and parsed.confidence or {}
  for _, part in ipairs({ "intent", "items", "yes", "number", "code" }) do
    if r[part] == nil and parsed and parsed[part] ~= nil and (pc[part] or 0) >= SURE then
      r[part] = parsed[part]
      r.confidence[part] = pc[part]
    end
  end
  return r
end

-- --- the cache: this state's, first in first out --------------------------------

local cache = { map = {}, keys = {}, first = 1, last = 0 }

local function cache_get(key) return cache.map[key] end

local function cache_put(key, plain, size)
  if size <= 0 then return end
  if cache.map[key] == nil then
    cache.last = cache.last + 1
    cache.keys[cache.last] = key
  end
  cache.map[key] = plain
  while cache.last - cache.first + 1 > size do
    cache.map[cache.keys[cache.first]] = nil
    cache.keys[cache.first] = nil
    cache.first = cache.first + 1
  end
end

-- --- asking ----------------------------------------------------------------------

local known_by_version = {} -- catalog version .. locale -> known (the catalog of a state does not change)

local function known_for(world)
  local key = tostring(world.catalog_version or "") .. "\0" .. tostring(world.locale or "")
  if world.catalog_version ~= nil and known_by_version[key] then return known_by_version[key] end
  local known = llm.known(world)
  if world.catalog_version ~= nil then known_by_version[key] = known end
  return known
end

local QUIET = { rate = true, budget = true } -- expected, not the model's fault: info, not warn

local function failed(reason, detail)
  native.count(reason)
  local say = QUIET[reason] and log.info or log.warn
  say("understanding.llm: no answer (" .. reason .. (detail and ("; " .. detail) or "")
      .. "): the parser's result stands")
  return nil, reason
end

-- ask(text, parsed, world) -> result | nil, reason
-- reason: "off", "confident" (the model is not needed), "no-text", "rate",
-- "budget", "no-key", "timeout", "unreachable", "refused", "too-large",
-- "http-error", "invalid" (no tool call, malformed, or nothing of it
-- known), "empty" (the model understood nothing).
function llm.ask(said, parsed, world)
  local s = settings()
  if not s then return nil, "off" end
  if type(parsed) == "table" and parsed.confident then return nil, "confident" end
  if type(said) ~= "string" or not said:find("%S") then return nil, "no-text" end
  if type(world) ~= "table" or type(world.view) ~= "table" then
    error("understand_llm.ask(text, parsed, world): world.view must be the catalog view", 2)
  end
  local sent = llm.redact(said, s.redact)
  local folded = (text.fold(sent) or sent):gsub("%s+", " "):match("^ ?(.-) ?$")
  local key = table.concat({ tostring(world.bot or ""), tostring(world.catalog_version or ""),
                             tostring(world.locale or ""), folded }, "\0")
  local known = known_for(world)
  local hit = cache_get(key)
  if hit ~= nil then
    native.cache_hit()
    if not hit then return nil, "empty" end
    return result_of(hit, world.view, parsed)
  end
  local res, why = native.complete(json.encode(llm.request(s, world, known, sent)))
  if not res then return failed(why) end
  if res.status < 200 or res.status > 299 then return failed("http-error", "status " .. res.status) end
  local ok, args = pcall(arguments_of, res.body)
  if not ok or not args then return failed("invalid", "no tool call in the answer") end
  local plain, model_said = llm.check(args, known)
  if not plain then
    if model_said then return failed("invalid", "nothing it named is the bot's") end
    native.count("empty")
    cache_put(key, false, s.cache_entries)
    return nil, "empty"
  end
  native.count("ok")
  cache_put(key, plain, s.cache_entries)
  return result_of(plain, world.view, parsed)
end

return llm
