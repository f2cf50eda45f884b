-- flows/main.lua: every message is understood, and the reply is what was
-- understood, as JSON, for tests/e2e/test_understand_llm.py:
--   {"source": "parser" | "llm", "intent", "items": [{"sku", "qty",
--    "options", "without", "price"}], "without": [sku], "yes", "number", "code"}
-- where price is the catalog product's (never the model's).
--
-- Through c:understand: the parser, then the language model when the
-- parser is not confident.
local json = require "json"

local function understand(c, said) return c:understand(said) end

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
