-- parley.understand_llm's pure parts, without a model: the schema made
-- from a catalog and intents, the checks every answer goes through, and
-- the redaction of what is sent. The requests themselves, the budgets and
-- the cache are tests/e2e/test_understand_llm.py's (against a fake server).
local llm = require "parley.understand_llm"

-- A catalog view as flows see one (parley.products), made by hand.
local function product(sku, title, price, options)
  local p = { sku = sku, title = title, price = price, options = options }
  function p:option(name, value)
    for _, choice in ipairs(self.options and self.options[name] or {}) do
      if choice.value == value then return choice end
    end
  end
  return p
end

local function choices(list, multiple)
  local out = { multiple = multiple == true }
  for i, v in ipairs(list) do out[i] = { value = v[1], title = v[2] } end
  return out
end

local products = {
  product("latte", "Latte", 350, {
    size = choices({ { "small", "Small" }, { "large", "Large" } }),
    extras = choices({ { "vanilla", "Vanilla syrup" }, { "caramel", "Caramel syrup" } }, true),
  }),
  product("pizza", "Pizza", 900, {
    size = choices({ { "regular", "Regular" }, { "family", "Family" } }),
    toppings = choices({ { "onion", "Onion" }, { "olives", "Olives" } }, true),
  }),
  product("croissant", "Croissant", 250),
}

local view = {}
function view:all() return products end
function view:get(sku)
  for _, p in ipairs(products) do if p.sku == sku then return p end end
end

local world = {
  locale = "en", view = view, bot = "spec", catalog_version = "v1", codes = { "WELCOME10" },
  intents = { { name = "order_status", phrases = { "order status" } }, { name = "help" } },
}

describe("the schema", function()
  local known = llm.known(world)
  local schema = llm.schema(known)
  local item = schema.properties.items.items.properties

  it("lists the bot's intents and skus", function()
    assert.same({ "help", "order_status" }, { table.unpack(schema.properties.intent.enum) })
    assert.same({ "latte", "pizza", "croissant" }, { table.unpack(item.sku.enum) })
    assert.same({ type = "integer", minimum = 1, description = item.qty.description }, item.qty)
    assert.equal("boolean", schema.properties.yes.type)
    assert.equal("integer", schema.properties.number.type)
    assert.equal("string", schema.properties.code.type)
  end)

  it("gives each option its values, and a list for options that take several", function()
    local options = item.options.properties
    assert.same({ "small", "large", "regular", "family" }, { table.unpack(options.size.enum) })
    assert.equal("array", options.toppings.type)
    assert.same({ "onion", "olives" }, { table.unpack(options.toppings.items.enum) })
    assert.equal("array", options.extras.type)
    assert.truthy(options.extras.description:find("vanilla (Vanilla syrup)", 1, true))
    assert.is_false(item.options.additionalProperties)
  end)

  it("names no intent when the bot has none, and nothing of prices", function()
    local bare = llm.schema(llm.known({ view = view }))
    assert.is_nil(bare.properties.intent)
    assert.is_nil(require("json").encode(schema):find("price"))
  end)
end)

describe("an answer", function()
  local known = llm.known(world)

  it("keeps what the catalog has and drops the rest", function()
    local plain = llm.check({
      intent = "refund",
      items = {
        { sku = "latte", qty = 2, price = 1, options = { size = "large", extras = { "vanilla", "gold" }, milk = "oat" } },
        { sku = "unicorn" },
        { sku = "pizza", qty = 1000, options = { size = "small", toppings = "olives" }, without = { "onion", "size" } },
        { sku = "croissant", qty = 0 },
        { sku = "croissant", qty = "two" },
      },
      without = { "croissant", "dragon" },
      code = "welcome10", yes = "yes", number = 2.0,
    }, known)
    assert.same({
      items = {
        { sku = "latte", qty = 2, options = { size = "large", extras = { "vanilla" } } },
        { sku = "pizza", qty = 99, options = { toppings = { "olives" } }, without = { toppings = { "onion" }, size = true } },
        { sku = "croissant", qty = 1, options = {} },
        { sku = "croissant", qty = 1, options = {} },
      },
      without = { "croissant" },
      code = "WELCOME10",
      number = 2,
    }, plain)
  end)

  it("of nothing the bot knows is nothing, and says the model had spoken", function()
    local plain, said = llm.check({ intent = "refund", items = { { sku = "pizza2" } }, code = "FREE", number = -1 }, known)
    assert.is_nil(plain)
    assert.is_true(said)
    plain, said = llm.check({}, known)
    assert.is_nil(plain)
    assert.is_false(said)
    assert.is_nil((llm.check("latte", known)))
  end)
end)

describe("what is sent", function()
  local both = { phone = true, email = true }

  it("has phone numbers and e-mail addresses taken out", function()
    assert.equal("call [phone] or [email] please",
                 llm.redact("call +44 (0)20 7946-0958 or jo.smith+shop@mail.example.com please", both))
    assert.equal("ring [phone]", llm.redact("ring 555.123.4567", both))
  end)

  it("keeps quantities, short numbers and what the bot does not ask to take out", function()
    assert.equal("2 lattes and 3 croissants, order 12345", llm.redact("2 lattes and 3 croissants, order 12345", both))
    assert.equal("mail me at jo@example.com", llm.redact("mail me at jo@example.com", { phone = true }))
    assert.equal("[email] 0044 7700 900123", llm.redact("jo@example.com 0044 7700 900123", { email = true }))
  end)
end)

describe("ask", function()
  -- busted's own state is not a bot's: it has no manifest's settings (the
  -- bot's states do: the e2e test asks through them)
  it("is off in a state without the manifest's settings", function()
    assert.is_false(llm.enabled())
    assert.same({ nil, "off" }, { llm.ask("two of the milky ones", { confident = false }, world) })
  end)
end)
