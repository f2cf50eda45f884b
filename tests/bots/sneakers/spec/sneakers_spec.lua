-- spec/sneakers_spec.lua: a shoe with a required size and a colour whose
-- stock runs out between the cart and the checkout, in two locales (no
-- emoji in Spanish) — run by `parley test tests/bots/sneakers`.
--
-- The live stock is the bot's, shared by the specs of a run: each spec sets
-- the counts it needs with testing.stock.
local testing = require "parley.testing"

local function shop(opts)
  local chat = testing.conversation(opts)
  chat:send "hi"
  assert.equal("main.shop", chat:step())
  testing.errors()
  return chat
end

describe("checkout names the option choice that ran short", function()
  before_each(function()
    testing.stock("runner/colour=red", 2)
    testing.stock("runner/colour=blue", 5)
    testing.stock("trail", 10)
  end)

  it("returns the product, option, value, choice title, units wanted and left, and the lines", function()
    local chat = shop()
    chat:send "runner 42 red"
    assert.equal("Added: Runner (EU 42, Red) ✅", chat:text())
    chat:send "trail 43"
    chat:send "runner 43 red"
    chat:send "runner 42 blue"
    testing.stock("runner/colour=red", 1) -- another shopper bought a red pair meanwhile
    chat:send "pay"
    assert.equal("Sorry, the Runner in Red has just sold out 😢 I've taken it out of your order.\n" ..
      "In your order: 2 pair(s), €278.00.", chat:text())
    local cart = chat:cart().lines
    assert.same({ "trail", "runner" }, { cart[1].sku, cart[2].sku })
    assert.equal("blue", cart[2].options.colour)
    chat:send "pay"
    assert.matches("^Order #%d+: €278.00 → pay below 💳$", chat:text())
  end)

  it("names a product that ran short as a product, with no option", function()
    local chat = shop()
    chat:send "trail 42"
    testing.stock("trail", 0)
    chat:send "pay"
    assert.equal("Sorry, the Trail has just sold out 😢 I've taken it out of your order.\n" ..
      "In your order: 0 pair(s), -.", chat:text())
  end)

  it("says it in the shopper's language, without emoji in Spanish (the arrow stays)", function()
    local chat = shop { locale = "es" }
    assert.equal("Hola, soy Sol ¿Qué zapatilla, talla y color?", chat:texts()[1] or "")
    chat:send "corredora 42 roja"
    assert.equal("Añadido: Corredora (EU 42, Roja)", chat:text())
    testing.stock("runner/colour=red", 0)
    chat:send "pagar"
    assert.equal("Lo siento, la Corredora en Roja se acaba de agotar La he quitado de tu pedido.\n" ..
      "En tu pedido: 0 par(es), -.", chat:text())
    chat:send "corredora 43 azul"
    chat:send "pagar"
    assert.matches("^Pedido #%d+: 129,00 € → paga abajo$", chat:text())
  end)
end)

describe("adding to the cart", function()
  it("names a choice that has too few pairs left as checkout does: the shoe, the colour, the pairs left", function()
    testing.stock("runner/colour=red", 1)
    testing.stock("runner/colour=blue", 5)
    testing.stock("trail", 1)
    local chat = shop()
    chat:send "runner 42 red"
    chat:send "runner 43 red"
    assert.equal("Sorry, only 1 of the Runner in Red left.", chat:text())
    chat:send "trail 42"
    chat:send "trail 43"
    assert.equal("Sorry, no Trail left.", chat:text())
    testing.stock("runner/colour=red", 0)
    local es = shop { locale = "es" }
    es:send "corredora 42 roja"
    assert.equal("Lo siento, solo quedan 0 de la Corredora en Roja.", es:text())
  end)
end)

describe("a finished conversation", function()
  it("answers 'where is my order?' after paying, without greeting again", function()
    testing.stock("runner/colour=blue", 5)
    local chat = shop()
    chat:send "runner 43 blue"
    chat:send "pay"
    local id = chat:last_order().id
    chat:pay()
    assert.is_nil(chat:step())
    chat:send "where is my order?"
    local texts = chat:texts()
    assert.equal("Order #" .. id .. ": paid.", texts[#texts])
    assert.falsy(chat:says "Sol")
    assert.is_nil(chat:step())
  end)
end)
