-- flows/main.lua: every message is understood, and the reply is what was
-- understood, as JSON, for tests/e2e/test_understand_llm.py:
--   {"source": "parser" | "llm", "intent", "items": [{"sku", "qty",
--    "options", "without", "price"}], "without": [sku], "yes", "number", "code"}
-- where price is the catalog product's (never the model's).
--
-- Through c:understand when the runtime has it (the parser, then the
-- language model when the parser is not confident); before it, through
-- parley.understand_llm directly, after a stand-in parser that is confident
-- only about a message that is exactly a product's title or sku.
local json = require "json"
local text = require "parley.text"
local llm = require "parley.understand_llm"

local function codes(c)
  local list = {}
  for code in pairs(c.bot.discounts or {}) do list[#list + 1] = code end
  table.sort(list)
  return list
end

local function stand_in_parse(c, said)
  local folded = text.fold(said) or said
  for _, p in ipairs(c.catalog:all({ all = true })) do
    if folded == text.fold(p.title) or folded == p.sku then
      return { items = { { product = p, sku = p.sku, qty = 1, options = {}, confidence = 1 } }, rest = "",
               confidence = { items = 1 }, confident = true, source = "parser" }
    end
  end
  return { rest = folded, confidence = {}, confident = false, source = "parser" }
end

local function understand(c, said)
  if c.understand then return c:understand(said) end
  local parsed = stand_in_parse(c, said)
  local world = { locale = c.locale, view = c.catalog, intents = c.bot.intents, codes = codes(c),
                  catalog_version = "fixture", bot = "llmshop" }
  return llm.ask(said, parsed, world) or parsed
end

local function described(r)
  local out = { source = r.source, intent = r.intent, yes = r.yes, number = r.number, code = r.code }
  if r.items and #r.items > 0 then
    out.items = json.array()
    for _, item in ipairs(r.items) do
      out.items[#out.items + 1] = { sku = item.sku, qty = item.qty, options = item.options, without = item.without,
                                    price = item.product and item.product.price }
    end
  end
  if r.without and #r.without > 0 then
    out.without = json.array()
    for _, w in ipairs(r.without) do out.without[#out.without + 1] = w.sku end
  end
  return json.encode(out)
end

return {
  start = function(c)
    c:say "hello"
    return "listen"
  end,

  listen = {
    answer = function(c, msg)
      c:say_text(described(understand(c, msg.text or "")))
      return "listen"
    end,
  },
}
